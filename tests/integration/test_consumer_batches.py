"""Group commit in the EventConsumer (batch_size > 1), on the real broker and database.

The kernel bench of test_kernel_bus (a vhost of its own, a quorum queue declared as a
service's, a scratch schema with intake's inbox, outbox and case_holds tables). Handlers
write an effect row in the event's transaction, so "applied once" is counted in the
database; a spy on the consumer's `_apply_batch` shows which events shared a transaction.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY

from shared.case_holds import list_holds
from shared.consumer import EventConsumer, HandlerContext
from shared.envelope import Envelope
from tests.integration import test_kernel_bus as kernel
from tests.integration.test_case_holds import dlq_settles_at
from tests.integration.test_kernel_bus import CTL, Bench, note, publish

kernel_vhost = kernel.kernel_vhost
bench = kernel.bench

pytestmark = pytest.mark.skipif(CTL == "rabbitmqctl", reason="needs rabbitmqctl")

SERVICE = "routing"  # the kernel bench's consumers run as routing


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": SERVICE, **labels}) or 0.0


async def effects_table(bench: Bench) -> None:
    await bench.pool.execute(
        f"CREATE TABLE {bench.schema}.effects (seq bigserial PRIMARY KEY, event_id uuid NOT"
        " NULL, case_id uuid NOT NULL, txid bigint NOT NULL DEFAULT txid_current())"
    )


async def write_effect(ctx: HandlerContext) -> None:
    schema = ctx.schema
    await ctx.conn.execute(
        f"INSERT INTO {schema}.effects (event_id, case_id) VALUES ($1, $2)",
        ctx.envelope.event_id,
        ctx.envelope.case_id,
    )


def spy_batches(consumer: EventConsumer) -> list[list[uuid.UUID]]:
    """The event ids of every batch the consumer began, in order."""
    batches: list[list[uuid.UUID]] = []
    original = consumer._apply_batch

    async def spied(batch: list[Any]) -> list[Any]:
        batches.append([q.envelope.event_id for q in batch])
        return await original(batch)

    consumer._apply_batch = spied  # type: ignore[method-assign]
    return batches


async def effects(bench: Bench) -> list[Any]:
    return list(
        await bench.pool.fetch(
            f"SELECT event_id, case_id, txid FROM {bench.schema}.effects ORDER BY seq"
        )
    )


async def settled(bench: Bench, count: Callable[[], Awaitable[int]], expected: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while await count() != expected or await bench.queue_depth() != 0:
        assert loop.time() < deadline, "the queue never settled"
        await asyncio.sleep(0.1)


async def test_many_cases_share_transactions_each_event_once_in_case_order(
    bench: Bench,
) -> None:
    await effects_table(bench)
    cases = [uuid.uuid4() for _ in range(40)]
    events = [note(case, f"{case} #{i}") for i in range(5) for case in cases]
    context_mismatches: list[Envelope] = []

    async def handler(ctx: HandlerContext) -> None:
        # Logs stay per event: the handler runs in its delivery's context.
        bound = structlog.contextvars.get_contextvars()
        if bound.get("event_id") != str(ctx.envelope.event_id):
            context_mismatches.append(ctx.envelope)
        await asyncio.sleep(random.uniform(0, 0.003))  # uneven work
        await write_effect(ctx)

    batches_before = metric("hrcase_consumer_batch_events_count")
    events_before = metric("hrcase_consumer_batch_events_sum")
    consumer = bench.consumer(handler, batch_size=16)
    began = spy_batches(consumer)
    for event in events:
        await publish(bench, event)
    await consumer.start()

    async def applied() -> int:
        return int(await bench.pool.fetchval(f"SELECT count(*) FROM {bench.schema}.effects"))

    await settled(bench, applied, len(events))
    await consumer.stop()

    rows = await effects(bench)
    assert sorted(r["event_id"] for r in rows) == sorted(e.event_id for e in events)
    inbox = await bench.pool.fetchval(f"SELECT count(*) FROM {bench.schema}.inbox")
    assert inbox == len(events)
    for case in cases:  # each case's events in publish order
        assert [r["event_id"] for r in rows if r["case_id"] == case] == [
            e.event_id for e in events if e.case_id == case
        ]
    # Several events per committed transaction, counted by the metric as in the database.
    per_transaction: dict[int, int] = {}
    for r in rows:
        per_transaction[r["txid"]] = per_transaction.get(r["txid"], 0) + 1
    assert max(per_transaction.values()) > 1
    assert max(len(b) for b in began) <= 16
    assert metric("hrcase_consumer_batch_events_count") - batches_before == len(per_transaction)
    assert metric("hrcase_consumer_batch_events_sum") - events_before == len(events)
    # Never two events of one case in one batch (the case lock keeps them apart).
    for batch in began:
        by_case = [e.case_id for e in events if e.event_id in set(batch)]
        assert len(by_case) == len(set(by_case))
    assert context_mismatches == []
    assert await bench.queue_depth(bench.dlq) == 0


async def test_one_failing_event_of_a_batch_is_retried_and_held_alone(bench: Bench) -> None:
    """The batch rolls back; its other events are applied once each (alone); the poison
    one is retried, dead-lettered and holds its case, whose later event waits behind it."""
    await effects_table(bench)
    poison_case = uuid.uuid4()
    poison, behind = note(poison_case, "poison"), note(poison_case, "behind the poison")
    others = [note(uuid.uuid4(), f"other {i}") for i in range(30)]
    tries: list[uuid.UUID] = []

    async def handler(ctx: HandlerContext) -> None:
        tries.append(ctx.envelope.event_id)
        await write_effect(ctx)
        await asyncio.sleep(0.002)
        if ctx.envelope.event_id == poison.event_id:
            raise RuntimeError("the template of this note is missing")

    fallbacks_before = metric("hrcase_consumer_batch_fallbacks_total")
    consumer = bench.consumer(handler, batch_size=16, max_attempts=3)
    began = spy_batches(consumer)
    for event in (*others[:10], poison, *others[10:], behind):
        await publish(bench, event)
    await consumer.start()
    letters = await dlq_settles_at(bench, 2, timeout=60)
    await consumer.stop()

    assert [x.message_id for x in letters] == [str(poison.event_id), str(behind.event_id)]
    assert letters[0].error_type == "RuntimeError"
    assert "template of this note is missing" in letters[0].error
    assert letters[1].error_type == "CaseHeld"
    assert letters[1].held_behind == str(poison.event_id)
    holds = await list_holds(bench.pool, bench.schema)
    assert [(h.case_id, h.event_id) for h in holds] == [
        (poison_case, poison.event_id),
        (poison_case, behind.event_id),
    ]
    # The poison event shared a batch with others, which were applied once each.
    [with_poison] = [b for b in began if poison.event_id in b]
    assert len(with_poison) > 1
    rows = await effects(bench)
    assert sorted(r["event_id"] for r in rows) == sorted(e.event_id for e in others)
    inbox = {r["event_id"] for r in await bench.pool.fetch(f"SELECT * FROM {bench.schema}.inbox")}
    assert inbox == {e.event_id for e in others}
    assert metric("hrcase_consumer_batch_fallbacks_total") - fallbacks_before == 1
    # Its attempts: once in the batch, then max_attempts times alone, none in a batch.
    assert tries.count(poison.event_id) == 1 + 3
    assert behind.event_id not in tries


async def test_a_duplicate_in_a_batch_is_acked_as_duplicate_and_a_conflict_dead_lettered(
    bench: Bench,
) -> None:
    await effects_table(bench)
    first = note(uuid.uuid4(), "applied before")
    consumer = bench.consumer(write_effect, batch_size=16)
    await consumer.start()
    await publish(bench, first)

    async def applied() -> int:
        return int(await bench.pool.fetchval(f"SELECT count(*) FROM {bench.schema}.effects"))

    await settled(bench, applied, 1)
    await consumer.stop()

    async def slow(ctx: HandlerContext) -> None:
        await asyncio.sleep(0.005)
        await write_effect(ctx)

    twin = first.model_copy(update={"payload": {**first.payload, "body": "forged"}})
    others = [note(uuid.uuid4(), f"other {i}") for i in range(20)]
    duplicates_before = metric(
        "hrcase_events_consumed_total", event_type=kernel.EVENT_TYPE, outcome="duplicate"
    )
    consumer = bench.consumer(slow, batch_size=16)
    began = spy_batches(consumer)
    for event in (*others[:10], first, *others[10:]):
        await publish(bench, event)
    await publish(bench, twin)  # same event_id, another body
    await consumer.start()
    [dead] = await dlq_settles_at(bench, 1)
    await settled(bench, applied, 1 + len(others))
    await consumer.stop()

    assert dead.message_id == str(first.event_id)
    assert dead.error_type == "EventIdConflict"
    assert "different body" in dead.error
    duplicates = metric(
        "hrcase_events_consumed_total", event_type=kernel.EVENT_TYPE, outcome="duplicate"
    )
    assert duplicates - duplicates_before == 1
    # The redelivery met the inbox inside a batch of several and was not applied again.
    assert any(first.event_id in b and len(b) > 1 for b in began)
    rows = await effects(bench)
    assert sorted(r["event_id"] for r in rows) == sorted(e.event_id for e in (first, *others))
    assert await list_holds(bench.pool, bench.schema) == []  # an id conflict holds nothing


async def test_stopped_mid_stream_nothing_is_lost_or_applied_twice(bench: Bench) -> None:
    """Stopping with batches under way leaves nothing half-done: every event is applied
    once or back in the queue once the channel closes (an applied one whose ack was cut
    would come back and meet the inbox), none applied twice."""
    await effects_table(bench)
    events = [note(uuid.uuid4(), f"event {i}") for i in range(300)]

    async def slow(ctx: HandlerContext) -> None:
        await asyncio.sleep(0.002)
        await write_effect(ctx)

    for event in events:
        await publish(bench, event)
    consumer = bench.consumer(slow, batch_size=16)
    await consumer.start()

    async def applied() -> int:
        return int(await bench.pool.fetchval(f"SELECT count(*) FROM {bench.schema}.effects"))

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while await applied() < 40:
        assert loop.time() < deadline
        await asyncio.sleep(0.02)
    await consumer.stop()
    await bench.broker.stop()  # as the service's shutdown: unsettled deliveries go back
    rows = await effects(bench)
    done = [r["event_id"] for r in rows]
    assert len(done) == len(set(done)) < len(events)  # stopped mid-stream, none twice
    inbox = {r["event_id"] for r in await bench.pool.fetch(f"SELECT * FROM {bench.schema}.inbox")}
    assert inbox == set(done)  # no inbox row without its effect, nor the reverse
    back = {uuid.UUID(str(m.message_id)) for m in await bench.take(bench.spec.name)}
    assert back | set(done) == {e.event_id for e in events}
    assert await bench.queue_depth(bench.dlq) == 0


def test_a_batch_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        EventConsumer(
            service=SERVICE,
            schema="x",
            broker=None,  # type: ignore[arg-type]
            pool=None,  # type: ignore[arg-type]
            publishers=None,  # type: ignore[arg-type]
            handlers={},
            queue=None,  # type: ignore[arg-type]
            batch_size=0,
        )
