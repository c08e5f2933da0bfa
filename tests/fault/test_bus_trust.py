"""Trust on the bus, on the real broker with all four services running as processes.

The field case (issue 8, item 10): a client with broker credentials publishes `case.routed`
claiming `producer: routing` to mark a restricted harassment case `sensitivity: normal`,
which made it readable by an unrelated HR agent. Now it changes nothing: the consumers
dead-letter it with the reason, or the broker refuses it outright.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit
from uuid import UUID, uuid4

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aiormq.exceptions import ChannelAccessRefused, ChannelPreconditionFailed

from hrcase.services import QUEUES
from shared.broker_access import apply_definitions, settings_definitions
from shared.bus import build_message
from shared.events import EVENT_TYPES
from shared.settings import Settings
from shared.topology import EXCHANGE, PUBLISHES
from tests.support.auth import auth_headers
from tests.support.bus import (
    capture_events,
    connection_as,
    find_dead_letter,
    publish_raw,
    user_of,
)
from tests.support.infra import RUN_ID, wait_for
from tests.support.system import running_system

REPORTER = {"employee_id": "E-8801", "name": "Noor Haddad", "email": "noor.haddad@example.com"}
AS_REPORTER = auth_headers("u-noor", "employee", employee_id=REPORTER["employee_id"])
# An HR agent with no part in the case: may read normal cases, never a restricted one.
UNRELATED_AGENT = auth_headers("u-unrelated-agent", "hr_agent")


@pytest.fixture(scope="module")
def system(database_url: str, rabbitmq_url: str, logs_dir: Any) -> Iterator[Any]:
    with running_system(database_url, rabbitmq_url, logs_dir / "bus-trust") as running:
        yield running


async def _routed_restricted_case(system: Any, amqp: AbstractRobustConnection) -> dict[str, Any]:
    """A harassment case through the API; returns routing's real case.routed envelope."""
    async with capture_events(amqp) as capture:
        with system.client("intake", headers=AS_REPORTER) as client:
            response = client.post(
                "/api/v1/cases",
                json={
                    "subject": "Harassment at the warehouse",
                    "description": "A team lead keeps making inappropriate comments; I feel"
                    " intimidated.",
                    "reporter": REPORTER,
                },
                headers={"Idempotency-Key": f"bus-trust-{uuid4()}"},
            )
        assert response.status_code == 202, response.text
        case_id = response.json()["case_id"]
        routed = await capture.wait(
            lambda e: e["case_id"] == case_id and e["event_type"] == "case.routed", timeout=30
        )
        await capture.wait(
            lambda e: e["case_id"] == case_id and e["event_type"] == "case.assigned", timeout=30
        )
    assert routed["payload"]["sensitivity"] == "restricted"
    assert routed["producer"] == "routing"
    return routed


async def _state(pool: asyncpg.Pool, case_id: str) -> dict[str, Any]:
    """Everything intake and routing know of the case (their own tables)."""
    intake = await pool.fetchrow("SELECT * FROM intake.cases WHERE case_id = $1", UUID(case_id))
    routing = await pool.fetchrow("SELECT * FROM routing.cases WHERE case_id = $1", UUID(case_id))
    assert intake is not None and routing is not None
    return {"intake": dict(intake), "routing": dict(routing)}


def _unrelated_agent_reads(system: Any, case_id: str) -> int:
    with system.client("intake", headers=UNRELATED_AGENT) as client:
        return int(client.get(f"/api/v1/cases/{case_id}").status_code)


def _wait_intake_applied(system: Any, case_id: str) -> None:
    def assigned() -> bool:
        with system.client("intake", headers=AS_REPORTER) as client:
            return bool(client.get(f"/api/v1/cases/{case_id}").json()["status"] == "assigned")

    wait_for(assigned, timeout=30, what="intake applied routing's events")


def _forgery(routed: dict[str, Any], **payload_changes: Any) -> dict[str, Any]:
    forged = json.loads(json.dumps(routed))
    forged["event_id"] = str(uuid4())
    forged["occurred_at"] = datetime.now(UTC).isoformat()
    forged["causation_id"] = routed["event_id"]
    forged["payload"].update(payload_changes)
    return forged


async def _audit_has(pool: asyncpg.Pool, event_id: str) -> bool:
    found = await pool.fetchval("SELECT 1 FROM audit.log WHERE event_id = $1", UUID(event_id))
    return found is not None


async def test_guest_forging_case_routed_as_routing_changes_nothing(
    system: Any, amqp: AbstractRobustConnection, admin_pool: asyncpg.Pool
) -> None:
    routed = await _routed_restricted_case(system, amqp)
    case_id = routed["case_id"]
    _wait_intake_applied(system, case_id)
    before = await _state(admin_pool, case_id)
    assert before["intake"]["sensitivity"] == "restricted"
    assert _unrelated_agent_reads(system, case_id) == 404

    # The recipe: the guest account, producer "routing", sensitivity downgraded.
    forged = _forgery(routed, sensitivity="normal", priority="P4")
    await publish_raw(
        amqp, json.dumps(forged).encode(), routing_key="case.routed", message_id=forged["event_id"]
    )

    for dlq in ("intake.events.dlq", "audit.events.dlq"):
        dead = await find_dead_letter(amqp, dlq, forged["event_id"], timeout=30)
        assert dead is not None, f"forged event not dead-lettered in {dlq}"
        headers = dead.headers or {}
        assert headers["x-error-type"] == "ProducerNotAuthenticated"
        assert "producer 'routing' not authenticated" in str(headers["x-error"])
        assert "no broker-validated user_id" in str(headers["x-error"])
        assert json.loads(dead.body) == forged  # the evidence, unchanged
    assert await _state(admin_pool, case_id) == before
    assert _unrelated_agent_reads(system, case_id) == 404
    # Audit never records a forgery as something routing said.
    assert not await _audit_has(admin_pool, forged["event_id"])


async def test_guest_cannot_claim_a_service_user_id(
    system: Any, amqp: AbstractRobustConnection
) -> None:
    forged = {"event_id": str(uuid4())}
    async with amqp.channel(publisher_confirms=True) as channel:
        exchange = await channel.get_exchange(EXCHANGE)
        with pytest.raises(ChannelPreconditionFailed, match="user_id property set to"):
            await exchange.publish(
                build_message(
                    json.dumps(forged).encode(),
                    event_id=forged["event_id"],
                    event_type="case.routed",
                    correlation_id=None,
                    user_id=user_of("routing"),
                ),
                routing_key="case.routed",
            )


async def test_a_service_user_cannot_publish_another_services_event_type(
    system: Any, amqp: AbstractRobustConnection, admin_pool: asyncpg.Pool
) -> None:
    """A compromised intake (its own credentials) tries the same downgrade."""
    routed = await _routed_restricted_case(system, amqp)
    case_id = routed["case_id"]
    _wait_intake_applied(system, case_id)
    before = await _state(admin_pool, case_id)
    for producer in ("routing", "intake"):
        forged = _forgery(routed, sensitivity="normal")
        forged["producer"] = producer
        intake = await connection_as(amqp, "intake")
        channel = await intake.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(EXCHANGE, ensure=False)
        with pytest.raises(ChannelAccessRefused, match=re.escape("access to topic 'case.routed'")):
            await exchange.publish(
                build_message(
                    json.dumps(forged).encode(),
                    event_id=forged["event_id"],
                    event_type="case.routed",
                    correlation_id=None,
                    user_id=user_of("intake"),
                ),
                routing_key="case.routed",
            )
        assert channel.is_closed
    assert await _state(admin_pool, case_id) == before
    assert _unrelated_agent_reads(system, case_id) == 404


async def test_a_service_claiming_another_producer_is_dead_lettered_by_every_consumer(
    system: Any, amqp: AbstractRobustConnection, admin_pool: asyncpg.Pool
) -> None:
    """Intake may publish case.submitted, but not as routing: routing, notifications and
    audit (every queue bound to it) refuse it, naming the mismatch."""
    event_id = str(uuid4())
    case_id = str(uuid4())
    envelope = {
        "event_id": event_id,
        "event_type": "case.submitted",
        "schema_version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "routing",
        "correlation_id": event_id,
        "causation_id": None,
        "case_id": case_id,
        "actor": {"type": "service", "id": "routing"},
        "payload": {
            "reference": "HR-FORGED-1",
            "channel": "api",
            "subject": "Forged",
            "description": "Not what intake says it is.",
            "reporter": REPORTER,
            "submitted_at": datetime.now(UTC).isoformat(),
        },
    }
    await publish_raw(
        amqp,
        json.dumps(envelope).encode(),
        routing_key="case.submitted",
        message_id=event_id,
        as_publisher="intake",
    )
    for queue in ("routing", "notifications", "audit"):
        dead = await find_dead_letter(amqp, f"{queue}.events.dlq", event_id, timeout=30)
        assert dead is not None, f"not dead-lettered by {queue}"
        headers = dead.headers or {}
        assert headers["x-error-type"] == "ProducerNotAuthenticated"
        assert f"does not match the broker user '{user_of('intake')}'" in str(headers["x-error"])
        assert headers["x-original-user-id"] == user_of("intake")
    assert (
        await admin_pool.fetchval(
            "SELECT count(*) FROM routing.cases WHERE case_id = $1", UUID(case_id)
        )
        == 0
    )
    assert not await _audit_has(admin_pool, event_id)


async def test_audit_records_the_broker_user_that_published_each_event(
    system: Any, amqp: AbstractRobustConnection, admin_pool: asyncpg.Pool
) -> None:
    routed = await _routed_restricted_case(system, amqp)

    async def recorded() -> list[asyncpg.Record]:
        rows = await admin_pool.fetch(
            "SELECT event_type, producer, producer_user, entry_version FROM audit.log"
            " WHERE case_id = $1",
            UUID(routed["case_id"]),
        )
        types = {r["event_type"] for r in rows}
        return rows if {"case.submitted", "case.routed", "case.assigned"} <= types else []

    rows: list[asyncpg.Record] = []
    for _ in range(300):
        rows = await recorded()
        if rows:
            break
        await asyncio.sleep(0.1)
    assert rows, "the case's events never reached the audit log"
    for row in rows:
        assert row["entry_version"] == 2
        assert row["producer_user"] == user_of(row["producer"])


# --- the permission matrix, in a scratch vhost of its own (no service consumes there) ---


@pytest.fixture(scope="module")
async def scratch_vhost(rabbitmq_url: str) -> AsyncIterator[str]:
    """This run's broker users with the same permissions, in an empty vhost: what they may
    publish is routed into queues nobody consumes, then the vhost is deleted."""
    vhost = f"hrcase_test_{RUN_ID}_matrix"
    parts = urlsplit(rabbitmq_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))
    admin = urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
    definitions = settings_definitions(Settings(rabbitmq_url=url), QUEUES)
    await asyncio.to_thread(apply_definitions, definitions, admin)
    yield url
    await asyncio.to_thread(
        subprocess.run, ["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True
    )


async def _connect_as(url: str, publisher: str) -> AbstractRobustConnection:
    return await aio_pika.connect_robust(Settings(rabbitmq_url=url).service_rabbitmq_url(publisher))


async def test_each_user_may_publish_exactly_its_declared_event_types(scratch_vhost: str) -> None:
    outcomes: dict[tuple[str, str], bool] = {}
    for publisher in PUBLISHES:
        connection = await _connect_as(scratch_vhost, publisher)
        try:
            for event_type in sorted(EVENT_TYPES):
                channel = await connection.channel(publisher_confirms=True)
                exchange = await channel.get_exchange(EXCHANGE, ensure=False)
                try:
                    await exchange.publish(
                        build_message(
                            b"{}",
                            event_id=str(uuid4()),
                            event_type=event_type,
                            correlation_id=None,
                            user_id=user_of(publisher),
                        ),
                        routing_key=event_type,
                    )
                    outcomes[publisher, event_type] = True
                    await channel.close()
                except ChannelAccessRefused:
                    outcomes[publisher, event_type] = False
        finally:
            await connection.close()
    expected = {(p, t): t in PUBLISHES[p] for p in PUBLISHES for t in EVENT_TYPES}
    assert outcomes == expected


async def _leave(message: AbstractIncomingMessage) -> None:
    """Consumes nothing: unacked deliveries return to the queue when the channel closes."""


@pytest.mark.parametrize("service", sorted(QUEUES))
async def test_a_service_reads_only_its_own_queue(scratch_vhost: str, service: str) -> None:
    connection = await _connect_as(scratch_vhost, service)
    try:
        for spec in QUEUES.values():
            # Its queue or partitions (README "Partitions by case"), never a DLQ.
            for queue_name in (*spec.queue_names, spec.dead_letter_queue):
                channel = await connection.channel()
                queue = await channel.get_queue(queue_name, ensure=False)
                allowed = queue_name in QUEUES[service].queue_names
                if allowed:
                    tag = await queue.consume(_leave, no_ack=False)
                    await queue.cancel(tag)
                    await channel.close()
                    continue
                with pytest.raises(ChannelAccessRefused, match=re.escape(f"queue '{queue_name}'")):
                    await queue.consume(_leave, no_ack=False)
    finally:
        await connection.close()


# --- item 12: the same event_id with another body is a conflict in every service ---


async def _republish(amqp: AbstractRobustConnection, envelope: dict[str, Any]) -> None:
    """Publish a captured event again, as its producer (what a buggy or replaying relay does)."""
    await publish_raw(
        amqp,
        json.dumps(envelope).encode(),
        routing_key=envelope["event_type"],
        message_id=envelope["event_id"],
        as_publisher=envelope["producer"],
    )


async def _only_dead_letter(
    amqp: AbstractRobustConnection, dlq: str, event_id: str
) -> aio_pika.abc.AbstractIncomingMessage:
    dead = await find_dead_letter(amqp, dlq, event_id, timeout=30)
    assert dead is not None, f"{event_id} not dead-lettered in {dlq}"
    # The true duplicate published before it was acknowledged, not dead-lettered.
    assert await find_dead_letter(amqp, dlq, event_id, timeout=1) is None
    return dead


async def test_same_event_id_with_another_body_is_dead_lettered_by_every_service(
    system: Any, amqp: AbstractRobustConnection, admin_pool: asyncpg.Pool
) -> None:
    async with capture_events(amqp) as capture:
        routed = await _routed_restricted_case(system, amqp)
        case_id = routed["case_id"]

        def of(event_type: str) -> Any:
            return capture.wait(
                lambda e: e["case_id"] == case_id and e["event_type"] == event_type, timeout=30
            )

        submitted, assigned = await of("case.submitted"), await of("case.assigned")
        await of("case.routed")
        # Republished as they travelled (personal fields sealed, shared.privacy): a true
        # duplicate is the same bytes the broker would redeliver, not the opened copy.
        as_sent = {e["event_id"]: e for e in capture.sealed}
        submitted, assigned = as_sent[submitted["event_id"]], as_sent[assigned["event_id"]]
        routed = as_sent[routed["event_id"]]
    _wait_intake_applied(system, case_id)
    reference = routed["payload"]["reference"]

    def case_mails() -> list[Any]:
        return [m for m in system.mail.messages if reference in str(m["Subject"])]

    wait_for(lambda: len(case_mails()) >= 2, timeout=30, what="acknowledgement and assignment")
    before = await _state(admin_pool, case_id)
    ids = [UUID(e["event_id"]) for e in (submitted, routed, assigned)]
    log_query = (
        "SELECT event_id, payload::text AS payload FROM audit.log"
        " WHERE event_id = ANY($1::uuid[]) ORDER BY seq"
    )
    audited = [tuple(r) for r in await admin_pool.fetch(log_query, ids)]
    assert len(audited) == 3

    # Who consumes what: case.submitted -> routing, notifications, audit;
    # case.routed -> intake, audit; case.assigned -> intake, notifications, audit.
    conflicts = {
        "case.submitted": (submitted, {"subject": "A different statement entirely"}),
        "case.routed": (routed, {"sensitivity": "normal"}),
        "case.assigned": (assigned, {"priority": "P4"}),
    }
    for original, change in conflicts.values():
        await _republish(amqp, original)  # a true duplicate first: no effect, no dead letter
        other = json.loads(json.dumps(original))
        other["payload"].update(change)
        await _republish(amqp, other)

    consumers = {
        "case.submitted": ("routing", "notifications", "audit"),
        "case.routed": ("intake", "audit"),
        "case.assigned": ("intake", "notifications", "audit"),
    }
    for event_type, services in consumers.items():
        original, change = conflicts[event_type]
        for service in services:
            dead = await _only_dead_letter(amqp, f"{service}.events.dlq", original["event_id"])
            headers = dead.headers or {}
            assert headers["x-error-type"] == "EventIdConflict", (service, headers)
            assert original["event_id"] in str(headers["x-error"])
            assert headers["x-failed-service"] == service
            # The conflicting body is kept as evidence.
            assert json.loads(dead.body)["payload"].items() >= change.items()

    # Nothing changed: not the read model, not routing, not the log, no second mail.
    assert await _state(admin_pool, case_id) == before
    assert _unrelated_agent_reads(system, case_id) == 404
    assert [tuple(r) for r in await admin_pool.fetch(log_query, ids)] == audited
    assert len(case_mails()) == 2
