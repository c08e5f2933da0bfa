"""The audit service in process against the real broker and database.

Other tests share the database, the vhost and the audit queue (which binds '#'), so
every assertion filters by this test's own event ids and case ids.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from fastapi import FastAPI
from prometheus_client import REGISTRY

from services.audit.adapters.sql import AppendResult
from services.audit.app import SPEC
from services.audit.application.ingest import AuditIngest
from services.audit.domain.chain import PendingEntry, canonical_json, extend
from services.audit.entrypoints.cli import verify_log
from services.audit.entrypoints.http import router
from services.audit.tests.support import make_envelope, note_payload, wait_until
from shared.bus import Publisher, build_message
from shared.envelope import Envelope, utcnow
from shared.service import Runtime, start_runtime, stop_runtime
from shared.settings import Settings
from shared.topology import ServiceQueue, declare_exchanges, queue_arguments
from tests.support.auth import auth_headers
from tests.support.bus import (
    declare_topology,
    impersonator,
    publish_envelope,
    publish_raw,
    user_of,
)

AUDIT_DLQ = "audit.events.dlq"
AUDITOR = auth_headers("auditor-1", "auditor")


@pytest.fixture(scope="module")
async def runtime(
    database_url: str, rabbitmq_url: str, amqp: AbstractRobustConnection
) -> AsyncIterator[Runtime]:
    await declare_topology(amqp)
    settings = Settings(database_url=database_url, rabbitmq_url=rabbitmq_url)
    rt = await start_runtime(SPEC, settings)
    yield rt
    await stop_runtime(rt)


async def _rows_for_case(pool: asyncpg.Pool, case_id: UUID) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT seq, event_id, actor::text AS actor, payload::text AS payload"
            " FROM audit.log WHERE case_id = $1 ORDER BY seq",
            case_id,
        )
    )


async def _count_event(pool: asyncpg.Pool, event_id: UUID) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM audit.log WHERE event_id = $1", event_id))


async def _landed(pool: asyncpg.Pool, event_id: UUID) -> None:
    async def present() -> bool:
        return await _count_event(pool, event_id) > 0

    await wait_until(present, what=f"event {event_id} in audit.log")


async def take_dead_letter(
    amqp: AbstractRobustConnection, dlq: str, message_id: str, timeout: float = 20.0
) -> AbstractIncomingMessage:
    """Take our message from a DLQ; others' messages stay unacked and return on close."""
    async with amqp.channel() as channel:
        queue = await channel.get_queue(dlq)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                await asyncio.sleep(0.1)
                continue
            if message.message_id == message_id:
                await message.ack()
                return message
    raise AssertionError(f"{message_id} not dead-lettered to {dlq} within {timeout}s")


def _consumed(event_type: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "hrcase_events_consumed_total",
        {"service": "audit", "event_type": event_type, "outcome": outcome},
    )
    return value or 0.0


async def test_events_land_in_order_on_a_valid_chain(
    runtime: Runtime, admin_pool: asyncpg.Pool, database_url: str, amqp: AbstractRobustConnection
) -> None:
    case_id = uuid4()
    first = make_envelope(case_id=case_id)
    envelopes = [first]
    for i in range(24):
        # Notes and intake's audit-only reads, with text that must survive byte for byte.
        viewed = {
            "viewer": "agent-7", "roles": ["hr_agent"], "case_id": str(case_id),
            "client_ip": None, "user_agent": f"ünïcode ✓ {i}", "view": "case",
            "at": utcnow().isoformat(),
        }  # fmt: skip
        envelopes.append(
            make_envelope(
                case_id=case_id,
                event_type="audit.case_viewed" if i % 5 == 0 else "case.note_added",
                payload=viewed if i % 5 == 0 else note_payload(f'ünïcode ✓ "{i}"\n'),
                caused_by=envelopes[-1],
            )
        )
    for envelope in envelopes:
        await publish_envelope(amqp, envelope)

    async def all_there() -> bool:
        return len(await _rows_for_case(admin_pool, case_id)) == len(envelopes)

    await wait_until(all_there, what="25 entries for the case")
    rows = await _rows_for_case(admin_pool, case_id)
    assert [r["event_id"] for r in rows] == [e.event_id for e in envelopes]
    for row, envelope in zip(rows, envelopes, strict=True):
        assert row["payload"] == canonical_json(envelope.payload)
        assert row["actor"] == canonical_json(envelope.actor.model_dump(mode="json"))

    result = await verify_log(database_url)
    assert result.ok, result
    assert result.head_seq >= rows[-1]["seq"]

    # The HTTP view of the same case.
    app = FastAPI()
    app.include_router(router)
    app.state.runtime = runtime
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://audit"
    ) as client:
        assert (await client.get(f"/api/v1/audit/cases/{case_id}")).status_code == 401
        response = await client.get(
            f"/api/v1/audit/cases/{case_id}", params={"include_access": "true"}, headers=AUDITOR
        )
        assert response.status_code == 200
        body = response.json()
        assert body["case_id"] == str(case_id)
        # Ours, then the record of this very read (recorded before the answer).
        ids = [e["event_id"] for e in body["entries"]]
        assert ids[:-1] == [str(e.event_id) for e in envelopes]
        assert body["entries"][-1]["event_type"] == "audit.case_viewed"
        assert body["entries"][-1]["payload"]["viewer"] == "auditor-1"  # CaseViewed v2
        entry = body["entries"][3]
        assert entry["payload"] == envelopes[3].payload
        assert entry["actor"] == {"type": "agent", "id": "agent-7"}
        assert entry["causation_id"] == str(envelopes[2].event_id)
        assert entry["occurred_at"].endswith("Z") and len(entry["entry_hash"]) == 64
        missing = await client.get(f"/api/v1/audit/cases/{uuid4()}", headers=AUDITOR)
        assert missing.status_code == 404


async def test_redelivered_event_is_recorded_once(
    runtime: Runtime, admin_pool: asyncpg.Pool, amqp: AbstractRobustConnection
) -> None:
    envelope = make_envelope(event_type="case.note_added")
    duplicates_before = _consumed("case.note_added", "duplicate")
    await publish_envelope(amqp, envelope)
    await publish_envelope(amqp, envelope)
    await _landed(admin_pool, envelope.event_id)
    await publish_envelope(amqp, envelope)  # after it is committed, too
    marker = make_envelope()
    await publish_envelope(amqp, marker)
    await _landed(admin_pool, marker.event_id)
    assert await _count_event(admin_pool, envelope.event_id) == 1

    async def both_duplicates_counted() -> bool:
        return _consumed("case.note_added", "duplicate") - duplicates_before >= 2

    await wait_until(both_duplicates_counted, timeout=5, what="duplicate metric")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"this is not json", "invalid envelope"),
        (b'{"event_id": "not-a-uuid"}', "invalid envelope: event_id"),
        (
            make_envelope().to_json_bytes().replace(b'"payload":{', b'"payload":{"bad":NaN,'),
            "invalid envelope: not storable",
        ),
    ],
    ids=["not-json", "not-an-envelope", "nan-in-payload"],
)
async def test_invalid_message_is_dead_lettered_and_does_not_block(
    runtime: Runtime,
    admin_pool: asyncpg.Pool,
    amqp: AbstractRobustConnection,
    body: bytes,
    reason: str,
) -> None:
    message_id = str(uuid4())
    await publish_raw(amqp, body, routing_key="audittest.invalid", message_id=message_id)
    dead = await take_dead_letter(amqp, AUDIT_DLQ, message_id)
    headers = dead.headers or {}
    assert str(headers["x-error"]).startswith(reason), headers["x-error"]
    assert headers["x-failed-service"] == "audit"
    assert dead.body == body

    after = make_envelope()
    await publish_envelope(amqp, after)
    await _landed(admin_pool, after.event_id)


# --- failure paths, on a private queue with a stand-in database -------------------------


class _NoPool:
    """Stands in for asyncpg.Pool: the append function under test ignores the connection."""

    def acquire(self) -> _NoPool:
        return self

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


@pytest.fixture
async def private_queue(amqp: AbstractRobustConnection) -> AsyncIterator[str]:
    """A quorum queue with the audit queue's arguments and its own DLQ, fed directly."""
    spec = ServiceQueue(f"audittest-{uuid4().hex[:10]}", ())
    async with amqp.channel() as channel:
        _, dlx = await declare_exchanges(channel)
        dlq = await channel.declare_queue(
            spec.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dlq.bind(dlx, routing_key=spec.name)
        await channel.declare_queue(spec.name, durable=True, arguments=queue_arguments(spec))
    yield spec.name
    async with amqp.channel() as channel:
        await channel.queue_delete(spec.name)
        await channel.queue_delete(spec.dead_letter_queue)


async def _send(amqp: AbstractRobustConnection, queue: str, envelopes: Sequence[Envelope]) -> None:
    """Straight into a private queue, each stamped with its producer's broker user (what
    the broker validates on a real publish) by the run's impersonator user."""
    connection = await impersonator(amqp)
    async with connection.channel(publisher_confirms=True) as channel:
        for e in envelopes:
            message = build_message(
                e.to_json_bytes(),
                event_id=str(e.event_id),
                event_type=e.event_type,
                correlation_id=str(e.correlation_id),
                user_id=user_of(e.producer),
            )
            await channel.default_exchange.publish(message, routing_key=queue)


async def _ingest(
    amqp: AbstractRobustConnection,
    queue: str,
    append: Any,
    max_attempts: int,
    batch_size: int = 500,
) -> tuple[AuditIngest, Publisher]:
    publisher = await Publisher.open(amqp)
    ingest = AuditIngest(
        connection=amqp,
        queue_name=queue,
        pool=_NoPool(),
        publisher=publisher,
        max_attempts=max_attempts,
        retry_backoff=0.01,
        append=append,
        batch_size=batch_size,
    )
    await ingest.start()
    assert ingest.running
    return ingest, publisher


async def test_database_down_waits_in_place_and_spends_no_attempt(
    amqp: AbstractRobustConnection, private_queue: str
) -> None:
    # A database restart (refused, then starting up) outlasting max_attempts=2: the
    # event is written once the database is back, never dead-lettered, never requeued.
    outage = [
        ConnectionRefusedError("database unreachable"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        ConnectionRefusedError("database unreachable"),
    ]
    written: list[UUID] = []

    async def restarting(conn: Any, events: Sequence[PendingEntry], at: datetime) -> Any:
        if outage:
            raise outage.pop(0)
        written.extend(e.event_id for e in events)
        return AppendResult(extend(list(events), head_seq=0, head_hash="0" * 64, recorded_at=at))

    envelope = make_envelope()
    await _send(amqp, private_queue, [envelope])
    ingest, publisher = await _ingest(amqp, private_queue, restarting, max_attempts=2)

    async def written_once() -> bool:
        return written == [envelope.event_id]

    try:
        await wait_until(written_once, what="written after the outage")
    finally:
        await ingest.stop()
        await publisher.channel.close()
    assert not outage
    async with amqp.channel() as channel:
        dlq = await channel.get_queue(private_queue + ".dlq")
        assert await dlq.get(no_ack=False, fail=False) is None, "nothing dead-lettered"


async def test_failed_writes_requeue_then_dead_letter(
    amqp: AbstractRobustConnection, private_queue: str
) -> None:
    calls = 0

    async def failing(conn: Any, events: Sequence[PendingEntry], at: datetime) -> Any:
        nonlocal calls
        calls += 1
        raise asyncpg.DeadlockDetectedError("deadlock detected")

    envelope = make_envelope()
    await _send(amqp, private_queue, [envelope])
    ingest, publisher = await _ingest(amqp, private_queue, failing, max_attempts=3)
    try:
        dead = await take_dead_letter(amqp, private_queue + ".dlq", str(envelope.event_id))
        headers = dead.headers or {}
        assert "DeadlockDetectedError" in str(headers["x-error"])
        assert headers["x-attempts"] == 3 and calls == 3
    finally:
        await ingest.stop()
        await publisher.channel.close()
    assert not ingest.running


async def test_one_bad_event_does_not_take_its_batch_down(
    amqp: AbstractRobustConnection, private_queue: str
) -> None:
    good = [make_envelope() for _ in range(4)]
    poison = make_envelope()
    written: list[UUID] = []
    batch_sizes: list[int] = []

    async def append(conn: Any, events: Sequence[PendingEntry], at: datetime) -> AppendResult:
        batch_sizes.append(len(events))
        if any(e.event_id == poison.event_id for e in events):
            raise asyncpg.DataError("value rejected by the database")
        written.extend(e.event_id for e in events)
        return AppendResult(extend(list(events), head_seq=0, head_hash="0" * 64, recorded_at=at))

    # Queued before the consumer starts, so they arrive as one batch.
    await _send(amqp, private_queue, [good[0], good[1], poison, good[2], good[3]])
    ingest, publisher = await _ingest(amqp, private_queue, append, max_attempts=2)
    try:
        dead = await take_dead_letter(amqp, private_queue + ".dlq", str(poison.event_id))
        assert "DataError" in str((dead.headers or {})["x-error"])
        assert written == [e.event_id for e in good]
        assert batch_sizes[0] == 5
    finally:
        await ingest.stop()
        await publisher.channel.close()


async def test_stop_leaves_no_delivery_behind(
    amqp: AbstractRobustConnection, private_queue: str
) -> None:
    """Whatever was delivered before stop() is written and acked, or returned to the queue."""
    written: list[UUID] = []

    async def slow_append(conn: Any, events: Sequence[PendingEntry], at: datetime) -> Any:
        await asyncio.sleep(0.05)
        written.extend(e.event_id for e in events)
        return AppendResult([])

    envelopes = [make_envelope() for _ in range(300)]
    await _send(amqp, private_queue, envelopes)
    ingest, publisher = await _ingest(amqp, private_queue, slow_append, 5, batch_size=20)
    await asyncio.sleep(0.1)
    await ingest.stop()
    await publisher.channel.close()
    async with amqp.channel() as channel:
        queue = await channel.declare_queue(private_queue, passive=True)
        remaining = queue.declaration_result.message_count or 0
    assert len(written) + remaining == len(envelopes)
    assert len(set(written)) == len(written)


class _BrokenDeadLetters:
    """A publisher whose dead-letter publish always fails (e.g. the DLQ is unroutable)."""

    async def dead_letter(self, message: object, queue_name: str) -> None:
        raise RuntimeError("dead-letter exchange refused the message")


async def test_unsettled_delivery_is_requeued_not_swept_by_a_multiple_ack(
    amqp: AbstractRobustConnection, private_queue: str
) -> None:
    """If settling a failed event fails, it goes back to the queue (and, at the broker's
    delivery limit, to the DLQ); it is never acked by the next batch's `multiple` ack."""
    poison = make_envelope()
    written: list[UUID] = []

    async def append(conn: Any, events: Sequence[PendingEntry], at: datetime) -> AppendResult:
        if any(e.event_id == poison.event_id for e in events):
            raise asyncpg.DataError("value rejected by the database")
        written.extend(e.event_id for e in events)
        return AppendResult(extend(list(events), head_seq=0, head_hash="0" * 64, recorded_at=at))

    ingest = AuditIngest(
        connection=amqp,
        queue_name=private_queue,
        pool=_NoPool(),
        publisher=_BrokenDeadLetters(),  # type: ignore[arg-type]
        max_attempts=1,
        append=append,
    )
    await ingest.start()
    try:
        goods = [make_envelope() for _ in range(3)]
        await _send(amqp, private_queue, [poison, *goods])
        for _ in range(3):  # later batches, acked with `multiple`
            more = [make_envelope() for _ in range(5)]
            goods.extend(more)
            await _send(amqp, private_queue, more)
            await asyncio.sleep(0.05)
        # Not lost: the broker dead-letters it once its delivery limit is reached.
        dead = await take_dead_letter(amqp, private_queue + ".dlq", str(poison.event_id))
        assert "x-error" not in (dead.headers or {})  # the broker's, not ours
        assert {e.event_id for e in goods} <= set(written)
    finally:
        await ingest.stop()
