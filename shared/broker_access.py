"""Broker users and their permissions, derived from the declaration in shared.topology.

Every publisher (each service, and the HR system's directory feed) connects to RabbitMQ as
its own user `<prefix><name>`. Its permissions in the vhost:

- configure: its own queue and dead-letter queue only (it declares them at start-up), or,
  partitioned by case, its partitions `<service>.events.p<n>` (any count: changing
  BUS_PARTITIONS needs no new permissions), its DLQ and its exchanges `hr.events.<service>`
  and `hr.events.<service>.unslotted`;
- write: `hr.events` and `hr.dlx` (publish, dead-letter), its own queues and exchanges
  (bindings);
- read: `hr.events`, `hr.dlx` (needed to bind), its own exchanges and its own queue or
  partitions (consume);
- topic permissions on `hr.events`: write = exactly the event types it is declared to
  publish (`PUBLISHES`), read = exactly the binding keys of its queue (its declared
  subscriptions, passed in as `queues`: hrcase.services.QUEUES).

The broker then refuses (channel closed, ACCESS_REFUSED) a publish of any other event
type, a consume of another service's queue and a binding to keys it does not handle;
it also validates the AMQP `user_id` a publisher sets against the connection's user.

The same definitions are applied by `hrcase topology` (management HTTP API when the
plugin answers, else `rabbitmqctl import_definitions`) and written to
deploy/rabbitmq/definitions.json.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from shared.topology import (
    DEAD_LETTER_EXCHANGE,
    EXCHANGE,
    PUBLISHES,
    ServiceQueue,
    partition_exchange_arguments,
    queue_arguments,
    slot_binding,
)

if TYPE_CHECKING:
    from shared.settings import Settings

DEFINITIONS_FILE = (
    Path(__file__).resolve().parent.parent / "deploy" / "rabbitmq" / "definitions.json"
)
HASHING_ALGORITHM = "rabbit_password_hashing_sha256"
MANAGEMENT_PORT = 15672


def _alternatives(names: Iterable[str], patterns: Iterable[str] = ()) -> str:
    """A regex matching exactly one of `names` or of the regexes `patterns`, or nothing at
    all when there are none."""
    choices = [re.escape(n) for n in sorted(names)] + sorted(patterns)
    if not choices:
        return "^$"  # RabbitMQ: the empty string matches no resource name
    return "^(" + "|".join(choices) + ")$"


def _own_queues(spec: ServiceQueue | None) -> list[str]:
    if spec is None:
        return []
    return [spec.dead_letter_queue] + ([] if spec.partitioned else [spec.name])


def _own_exchanges(spec: ServiceQueue | None) -> list[str]:
    return [spec.exchange, spec.fallback_exchange] if spec and spec.partitioned else []


def _partitions(spec: ServiceQueue | None) -> list[str]:
    """Every partition of the service, whatever the count (p0..p63)."""
    if spec is None or not spec.partitioned:
        return []
    return [re.escape(spec.name) + r"\.p([0-9]|[1-5][0-9]|6[0-3])"]


def vhost_permissions(publisher: str, queues: Mapping[str, ServiceQueue]) -> dict[str, str]:
    """configure/write/read regexes of one publisher's user in the vhost (`queues`: service
    name -> its declared subscriptions; a publisher without one has no queue)."""
    spec = queues.get(publisher)
    own = [*_own_queues(spec), *_own_exchanges(spec)]
    partitions = _partitions(spec)
    exchanges = [EXCHANGE, DEAD_LETTER_EXCHANGE]
    consumed = [*([] if spec is None or spec.partitioned else [spec.name]), *_own_exchanges(spec)]
    return {
        "configure": _alternatives(own, partitions),
        "write": _alternatives([*exchanges, *own], partitions),
        "read": _alternatives([*exchanges, *consumed], partitions),
    }


def topic_permissions(publisher: str, queues: Mapping[str, ServiceQueue]) -> dict[str, str]:
    """Topic permissions on hr.events: which routing keys it may publish and bind."""
    spec = queues.get(publisher)
    return {
        "exchange": EXCHANGE,
        "write": _alternatives(PUBLISHES[publisher]),
        "read": _alternatives(spec.binding_keys if spec else ()),
    }


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt(4) + sha256(salt + password))."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(
        salt + hashlib.sha256(salt + password.encode("utf-8")).digest()
    ).decode()


def _stable_salt(user: str) -> bytes:
    # Development passwords are published anyway; a salt derived from the user name keeps
    # the committed definitions file reproducible (the staleness test regenerates it).
    return hashlib.sha256(("hrcase-broker-salt:" + user).encode()).digest()[:4]


def definitions(
    queues: Mapping[str, ServiceQueue],
    *,
    vhost: str,
    passwords: Mapping[str, str],
    prefix: str = "hrcase-",
    topology: bool = True,
) -> dict[str, Any]:
    """RabbitMQ definitions (import format) for every publisher in PUBLISHES and every
    queue in `queues` (service name -> its declared subscriptions).

    `passwords` maps publisher name -> password (each must be present). With `topology`
    the exchanges, queues and bindings are included as well. A development default
    password is hashed with a salt derived from the user name (reproducible file); any
    other with a random salt.
    """
    from shared.settings import dev_rabbitmq_password

    users, permissions, topics = [], [], []
    for publisher in PUBLISHES:
        user = f"{prefix}{publisher}"
        password = passwords[publisher]
        salt = _stable_salt(user) if password == dev_rabbitmq_password(user) else None
        users.append(
            {
                "name": user,
                "password_hash": password_hash(password, salt),
                "hashing_algorithm": HASHING_ALGORITHM,
                "tags": [],
            }
        )
        permissions.append({"user": user, "vhost": vhost, **vhost_permissions(publisher, queues)})
        topics.append({"user": user, "vhost": vhost, **topic_permissions(publisher, queues)})
    result: dict[str, Any] = {
        "users": users,
        "vhosts": [{"name": vhost}],
        "permissions": permissions,
        "topic_permissions": topics,
    }
    if topology:
        result.update(_topology(vhost, queues))
    return result


def _topology(vhost: str, declared: Mapping[str, ServiceQueue]) -> dict[str, Any]:
    exchanges = [
        _exchange(vhost, EXCHANGE, "topic"),
        _exchange(vhost, DEAD_LETTER_EXCHANGE, "direct"),
    ]
    queues, bindings = [], []
    for spec in declared.values():
        queues.append(_queue(vhost, spec.dead_letter_queue, {"x-queue-type": "quorum"}))
        bindings.append(_binding(vhost, DEAD_LETTER_EXCHANGE, spec.dead_letter_queue, spec.name))
        if not spec.partitioned:
            queues.append(_queue(vhost, spec.name, queue_arguments(spec)))
            bindings.extend(_binding(vhost, EXCHANGE, spec.name, key) for key in spec.binding_keys)
            continue
        # Partitions by case (shared.topology.declare_partitions).
        exchanges.append(_exchange(vhost, spec.fallback_exchange, "fanout", internal=True))
        exchanges.append(
            _exchange(
                vhost,
                spec.exchange,
                "headers",
                internal=True,
                arguments=partition_exchange_arguments(spec),
            )
        )
        bindings.extend(
            _binding(vhost, EXCHANGE, spec.exchange, key, kind="exchange")
            for key in spec.binding_keys
        )
        for partition, name in enumerate(spec.queue_names):
            queues.append(_queue(vhost, name, queue_arguments(spec)))
            bindings.extend(
                _binding(vhost, spec.exchange, name, "", slot_binding(slot))
                for slot in spec.slots(partition)
            )
        bindings.append(_binding(vhost, spec.fallback_exchange, spec.partition_name(0), ""))
    return {"exchanges": exchanges, "queues": queues, "bindings": bindings}


def _exchange(
    vhost: str,
    name: str,
    kind: str,
    *,
    internal: bool = False,
    arguments: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "vhost": vhost,
        "type": kind,
        "durable": True,
        "auto_delete": False,
        "internal": internal,
        "arguments": dict(arguments or {}),
    }


def _queue(vhost: str, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "vhost": vhost,
        "durable": True,
        "auto_delete": False,
        "arguments": dict(arguments),
    }


def _binding(
    vhost: str,
    source: str,
    destination: str,
    key: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    kind: str = "queue",
) -> dict[str, Any]:
    return {
        "source": source,
        "vhost": vhost,
        "destination": destination,
        "destination_type": kind,
        "routing_key": key,
        "arguments": dict(arguments or {}),
    }


def development_definitions(queues: Mapping[str, ServiceQueue]) -> dict[str, Any]:
    """What deploy/rabbitmq/definitions.json holds: vhost "/", development passwords."""
    from shared.settings import dev_rabbitmq_password

    return definitions(
        queues, vhost="/", passwords={p: dev_rabbitmq_password(f"hrcase-{p}") for p in PUBLISHES}
    )


def settings_definitions(
    settings: Settings, queues: Mapping[str, ServiceQueue], *, topology: bool = True
) -> dict[str, Any]:
    """Definitions for the configured broker: RABBITMQ_URL's vhost, the user prefix and
    each publisher's password (`<NAME>_RABBITMQ_PASSWORD`, else the development default;
    ValueError in production when one is missing)."""
    return definitions(
        queues,
        vhost=vhost_of(settings.rabbitmq_url),
        passwords={p: settings.rabbitmq_password(p) for p in PUBLISHES},
        prefix=settings.rabbitmq_user_prefix,
        topology=topology,
    )


def render(defs: Mapping[str, Any]) -> str:
    return json.dumps(defs, indent=2, sort_keys=True) + "\n"


def vhost_of(url: str) -> str:
    path = urlsplit(url).path
    return unquote(path[1:]) if path not in ("", "/") else "/"


def apply_definitions(defs: Mapping[str, Any], admin_url: str) -> str:
    """Load definitions into the broker; returns how ("management API" or "rabbitmqctl").

    The management API (POST /api/definitions, credentials of `admin_url`) is used when the
    plugin answers on port 15672 of the broker's host; otherwise `rabbitmqctl
    import_definitions`, which must run on the broker's host. Raises RuntimeError when
    neither is available or the broker refuses the definitions.
    """
    parts = urlsplit(admin_url)
    body = json.dumps(defs)
    api = f"http://{parts.hostname or 'localhost'}:{MANAGEMENT_PORT}/api/definitions"
    try:
        response = httpx.post(
            api,
            content=body,
            headers={"content-type": "application/json"},
            auth=(unquote(parts.username or "guest"), unquote(parts.password or "guest")),
            timeout=httpx.Timeout(30, connect=3),
        )
    except httpx.TransportError:
        response = None
    if response is not None:
        if response.status_code >= 300:
            raise RuntimeError(f"management API refused the definitions: {response.text[:500]}")
        return "management API"
    ctl = shutil.which("rabbitmqctl")
    if ctl is None or parts.hostname not in ("localhost", "127.0.0.1", "::1", None):
        raise RuntimeError(
            "cannot create broker users: enable the management plugin"
            " (rabbitmq-plugins enable rabbitmq_management) or run on the broker's host"
            " with rabbitmqctl"
        )
    done = subprocess.run(
        [ctl, "-q", "import_definitions", "--format", "json"],
        input=body.encode(),
        capture_output=True,
    )
    if done.returncode != 0:
        raise RuntimeError(
            "rabbitmqctl import_definitions failed: "
            + (done.stderr or done.stdout).decode("utf-8", "replace")[:500]
        )
    return "rabbitmqctl"


def quote_vhost(vhost: str) -> str:
    return "/" + quote(vhost, safe="") if vhost != "/" else "/"
