"""The bus in AsyncAPI 3, generated from the declared FastStream subscribers and publishers.

`bus_document(QUEUES)` is the whole bus (QUEUES = hrcase.services.QUEUES, every service's
declared subscriptions; committed as docs/asyncapi.yaml by `hrcase asyncapi --write
docs/asyncapi.yaml`, `make asyncapi`); `bus_document({service: subscriptions}, [service])`
is one service's own channels, served by that service at GET /asyncapi.json, /asyncapi.yaml
and /asyncapi (a small HTML page with no external assets: FastStream's own page loads its
renderer from a CDN).

The declarations are the ones the services run with: `EventPublishers` (one publisher per
event type in shared.topology.PUBLISHES, payload = the typed envelope) and
`declare_subscriber` (one subscriber per declared queue passed in `queues`, payload = the
union of the envelopes its bindings let in). Audit's queue is consumed by its batching
aio-pika ingest (README "FastStream and aio-pika"); its subscriber is declared here for
the document only.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from faststream.rabbit import RabbitBroker
from faststream.specification import AsyncAPI

from shared.events import EVENT_TYPES
from shared.settings import rabbitmq_user
from shared.stream import EventPublishers, make_broker, service_queues
from shared.topology import PUBLISHES, ServiceQueue

TITLE = "hrcase bus"
VERSION = "1"
# Documentation only: the address operators know the broker by. Users are per service.
DOCUMENTED_URL = "amqp://rabbitmq:5672/hrcase"


def consumed_event_types(queue: ServiceQueue) -> list[str]:
    """Event types `queue` is bound to (`#` = every type), in EVENT_TYPES order."""
    keys = queue.binding_keys
    return [t for t in EVENT_TYPES if "#" in keys or t in keys]


def bus_broker(
    queues: Mapping[str, ServiceQueue], services: Iterable[str] | None = None
) -> RabbitBroker:
    """An unconnected broker with the declarations of `services` (default: every publisher
    and every queue in `queues`, service name -> its declared subscriptions)."""
    from shared.consumer import declare_subscriber  # consumer imports this module's peers

    wanted = set(services) if services is not None else set(PUBLISHES) | set(queues)
    broker = make_broker(DOCUMENTED_URL, name="hrcase-asyncapi", prefetch=1)
    for publisher in PUBLISHES:
        if publisher in wanted and PUBLISHES[publisher]:
            EventPublishers(broker, publisher, user_id=rabbitmq_user(publisher))
    for service, queue in queues.items():
        if service in wanted:

            async def never(body: bytes) -> None:  # documentation only, never started
                raise NotImplementedError

            # One subscriber per partition (README "Partitions by case"), as the service
            # runs them; the committed document has the default partition count.
            for consumed in service_queues(queue):
                declare_subscriber(
                    broker,
                    service,
                    consumed,
                    consumed_event_types(queue),
                    never,
                    dead_letters=queue.dead_letter_queue,
                )
    return broker


def bus_document(
    queues: Mapping[str, ServiceQueue], services: Iterable[str] | None = None
) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document (a JSON-able dict) of `services`, default the whole bus;
    `queues` maps service name -> its declared subscriptions."""
    names = sorted(services) if services is not None else None
    title = TITLE if names is None else f"hrcase {', '.join(names)}"
    spec = AsyncAPI(
        bus_broker(queues, names),
        title=title,
        version=VERSION,
        schema_version="3.0.0",
        description=(
            "Events on the topic exchange hr.events (routing key = event type), one quorum"
            " queue per service or, partitioned by case, N quorum queues <service>.events.p<n>"
            " (header hrcase-slot = a stable hash of the case id modulo 64, slot s to"
            " partition s mod N, each with a single active consumer), dead letters via hr.dlx"
            " to <service>.events.dlq. Every message is"
            " persistent, published with confirms and mandatory routing, and carries the"
            " AMQP user_id of its producer's broker user."
        ),
    )
    document: dict[str, Any] = json.loads(spec.to_specification().to_json())
    return document


def bus_yaml(queues: Mapping[str, ServiceQueue], services: Iterable[str] | None = None) -> str:
    return yaml.safe_dump(
        bus_document(queues, services), sort_keys=True, allow_unicode=True, width=100
    )


def asyncapi_html(document: dict[str, Any]) -> str:
    """A self-contained page: operations, channels and message payload schemas."""
    rows = []
    for name, operation in sorted(document.get("operations", {}).items()):
        channel_ref = operation["channel"]["$ref"].rsplit("/", 1)[-1]
        channel = document["channels"].get(channel_ref, {})
        rows.append(
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>".format(
                html.escape(operation["action"]),
                html.escape(name),
                html.escape(str(channel.get("address", ""))),
            )
        )
    schemas = json.dumps(document.get("components", {}).get("schemas", {}), indent=2)
    title = html.escape(document.get("info", {}).get("title", "AsyncAPI"))
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{title} (AsyncAPI)</title></head><body>"
        f"<h1>{title}</h1><p>AsyncAPI {html.escape(document.get('asyncapi', ''))}:"
        ' <a href="asyncapi.json">JSON</a> · <a href="asyncapi.yaml">YAML</a></p>'
        "<table border=1><tr><th>action</th><th>operation</th><th>address</th></tr>"
        + "".join(rows)
        + f"</table><h2>Payload schemas</h2><pre>{html.escape(schemas)}</pre></body></html>"
    )
