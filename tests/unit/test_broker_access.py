"""The broker users' declaration, its derived permissions and definitions, the producer check
and the inbox digest (pure: the broker-side proofs are in tests/fault/test_bus_trust.py)."""

from __future__ import annotations

import json
import re
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hrcase.services import QUEUES
from services.audit.application.ingest import AUDIT_RECORD_TYPES
from shared.broker_access import (
    DEFINITIONS_FILE,
    development_definitions,
    password_hash,
    render,
    topic_permissions,
    vhost_permissions,
)
from shared.consumer import envelope_digest, producer_refusal
from shared.envelope import Actor, Envelope, new_envelope
from shared.events import EVENT_TYPES
from shared.settings import Settings, dev_rabbitmq_password
from shared.topology import PUBLISHES

SERVICES_AND_FEEDS = sorted(PUBLISHES)


def test_committed_definitions_file_is_not_stale() -> None:
    """deploy/rabbitmq/definitions.json is exactly what the declaration generates
    (regenerate: `hrcase topology --write-definitions deploy/rabbitmq/definitions.json`)."""
    assert DEFINITIONS_FILE.read_text(encoding="utf-8") == render(development_definitions(QUEUES))


def test_every_declared_type_exists_and_has_exactly_one_publisher() -> None:
    publishers: dict[str, list[str]] = {}
    for publisher, types in PUBLISHES.items():
        for event_type in types:
            assert event_type in EVENT_TYPES, f"{publisher} declares unknown {event_type}"
            publishers.setdefault(event_type, []).append(publisher)
    assert {t: p for t, p in publishers.items() if len(p) != 1} == {}
    # Every event type on the bus has a publisher (audit's own records never travel on it),
    # and everything a queue binds is published.
    assert set(publishers) == set(EVENT_TYPES) - AUDIT_RECORD_TYPES
    for spec in QUEUES.values():
        assert set(spec.binding_keys) - {"#"} <= set(publishers), spec.name


@pytest.mark.parametrize("publisher", SERVICES_AND_FEEDS)
@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_topic_write_permission_matches_exactly_the_declared_types(
    publisher: str, event_type: str
) -> None:
    # RabbitMQ matches these regexes with PCRE; Python's re agrees for this subset.
    allowed = re.search(topic_permissions(publisher, QUEUES)["write"], event_type) is not None
    assert allowed == (event_type in PUBLISHES[publisher])


@pytest.mark.parametrize("publisher", SERVICES_AND_FEEDS)
def test_vhost_permissions_name_only_own_queues(publisher: str) -> None:
    perms = vhost_permissions(publisher, QUEUES)
    for spec in QUEUES.values():
        own = spec.service == publisher
        # Its queue, or every partition whatever the count (BUS_PARTITIONS 1..64), and a
        # partitioned service's own exchanges.
        names = [*spec.queue_names, *spec.with_partitions(64).queue_names]
        if spec.partitioned:
            names += [spec.exchange, spec.fallback_exchange]
            # The unpartitioned queue of before is nobody's.
            assert re.search(perms["read"], spec.name) is None
        for name in names:
            assert (re.search(perms["read"], name) is not None) == own, name
            assert (re.search(perms["configure"], name) is not None) == own, name
            assert (re.search(perms["write"], name) is not None) == own, name
        assert re.search(perms["read"], spec.partition_name(64)) is None
        # Nobody reads a dead-letter queue but operators.
        assert re.search(perms["read"], spec.dead_letter_queue) is None
    for exchange in ("hr.events", "hr.dlx"):
        assert re.search(perms["configure"], exchange) is None
        assert re.search(perms["write"], exchange) is not None
    # The default exchange ("amq.default") would let it write into any queue.
    assert re.search(perms["write"], "amq.default") is None


def test_password_hash_is_rabbitmqs_salted_sha256() -> None:
    # Vector: salt 908DC60A, password "test12" (RabbitMQ's passwords guide example).
    salt = bytes.fromhex("908DC60A")
    assert password_hash("test12", salt) == "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"


def test_service_urls_derive_from_rabbitmq_url(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INTAKE_RABBITMQ_URL", "INTAKE_RABBITMQ_PASSWORD", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(
        rabbitmq_url="amqps://admin:secret@mq.internal:5671/hr%2Fprod?heartbeat=30",
        rabbitmq_user_prefix="hrcase-",
    )
    assert settings.service_rabbitmq_url("intake") == (
        "amqps://hrcase-intake:hrcase-intake-dev-password@mq.internal:5671/hr%2Fprod?heartbeat=30"
    )
    monkeypatch.setenv("INTAKE_RABBITMQ_PASSWORD", "p@ss/word:1")
    assert settings.service_rabbitmq_url("intake").startswith(
        "amqps://hrcase-intake:p%40ss%2Fword%3A1@mq.internal:5671/"
    )
    monkeypatch.setenv("INTAKE_RABBITMQ_URL", "amqp://someone-else:x@mq:5672/")
    with pytest.raises(ValueError, match="hrcase-intake"):
        settings.service_rabbitmq_url("intake")
    monkeypatch.setenv("INTAKE_RABBITMQ_URL", "amqp://hrcase-intake:x@other:5672/v")
    assert settings.service_rabbitmq_url("intake") == "amqp://hrcase-intake:x@other:5672/v"


def test_production_refuses_the_development_broker_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ROUTING_RABBITMQ_PASSWORD", raising=False)
    monkeypatch.delenv("ROUTING_RABBITMQ_URL", raising=False)
    settings = Settings(environment="production", rabbitmq_user_prefix="hrcase-")
    with pytest.raises(ValueError, match="ROUTING_RABBITMQ_PASSWORD"):
        settings.service_rabbitmq_url("routing")
    monkeypatch.setenv("ROUTING_RABBITMQ_PASSWORD", "from-the-vault")
    assert ":from-the-vault@" in settings.service_rabbitmq_url("routing")
    assert dev_rabbitmq_password("hrcase-routing") not in settings.service_rabbitmq_url("routing")


def _event(event_type: str, producer: str, payload: dict[str, Any] | None = None) -> Envelope:
    return new_envelope(
        event_type=event_type,
        schema_version=1,
        payload=payload or {},
        producer=producer,
        actor=Actor(type="service", id=producer),
        case_id=uuid4(),
    )


@pytest.mark.parametrize(
    ("user_id", "producer", "event_type", "refused_because"),
    [
        ("hrcase-routing", "routing", "case.routed", None),
        ("hrcase-intake", "intake", "case.submitted", None),
        ("hrcase-directory", "directory", "directory.employee_updated", None),
        # The field case: guest (or nobody) claiming to be routing.
        (None, "routing", "case.routed", "no broker-validated user_id"),
        ("", "routing", "case.routed", "no broker-validated user_id"),
        ("guest", "routing", "case.routed", "is no service's broker user"),
        ("hrcase-", "routing", "case.routed", "is no service's broker user"),
        ("hrcase-intake", "routing", "case.routed", "does not match the broker user"),
        ("hrcase-routing", "intake", "case.submitted", "does not match the broker user"),
        # A service saying something it is not declared to say (routing key aside).
        ("hrcase-intake", "intake", "case.routed", "not declared to publish 'case.routed'"),
        ("hrcase-audit", "audit", "audit.case_viewed", "not declared to publish"),
        ("hrcase-other", "other", "case.routed", "not declared to publish"),
    ],
)
def test_producer_must_be_the_broker_validated_user(
    user_id: str | None, producer: str, event_type: str, refused_because: str | None
) -> None:
    refusal = producer_refusal(user_id, _event(event_type, producer), user_prefix="hrcase-")
    if refused_because is None:
        assert refusal is None
    else:
        assert refusal is not None and refused_because in refusal


json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
payloads = st.dictionaries(st.text(min_size=1, max_size=8), json_scalars, max_size=5)


@settings(max_examples=150, deadline=None)
@given(payload=payloads, other=payloads, indent=st.sampled_from([None, 1, 4]))
def test_digest_is_equal_for_a_redelivery_and_differs_for_another_body(
    payload: dict[str, Any], other: dict[str, Any], indent: int | None
) -> None:
    event = _event("case.note_added", "intake", payload)
    # The same event serialised differently (member order, whitespace) is the same body.
    reordered = json.dumps(
        dict(reversed(list(json.loads(event.to_json_bytes()).items()))), indent=indent
    )
    assert envelope_digest(Envelope.from_json_bytes(reordered.encode())) == envelope_digest(event)
    changed = event.model_copy(update={"payload": other})
    assert (envelope_digest(changed) == envelope_digest(event)) == (other == event.payload)
    for field, value in (
        ("producer", "routing"),
        ("schema_version", 2),
        ("case_id", uuid4()),
        ("actor", Actor(type="agent", id="a-1")),
    ):
        assert envelope_digest(event.model_copy(update={field: value})) != envelope_digest(event)
