"""Per-case holds and order-preserving retries, on the real broker and database.

Events are published on hr.events as intake's broker user would (the kernel bench of
test_kernel_bus: a vhost of its own, a quorum queue declared as a service's, an
EventConsumer on a scratch schema with intake's inbox, outbox and case_holds tables);
dead letters are replayed with shared.dead_letters, the code behind `hrcase dlq replay`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from shared.case_holds import list_holds
from shared.consumer import HandlerContext
from shared.dead_letters import DeadLetter, browse, replay
from shared.errors import PermanentError
from shared.settings import Settings
from tests.integration import test_kernel_bus as kernel
from tests.integration.test_kernel_bus import CTL, Bench, _as_impersonator, note, publish, wait_for

# The kernel bench's fixtures, used here as there.
kernel_vhost = kernel.kernel_vhost
bench = kernel.bench

pytestmark = pytest.mark.skipif(CTL == "rabbitmqctl", reason="needs rabbitmqctl")


async def dlq_settles_at(bench: Bench, depth: int, timeout: float = 30.0) -> list[DeadLetter]:
    """The DLQ's dead letters once it holds `depth` and the queue is drained."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await bench.queue_depth() == 0 and await bench.queue_depth(bench.dlq) == depth:
            await asyncio.sleep(0.3)  # nothing more on its way
            if await bench.queue_depth(bench.dlq) == depth:
                return await browse(bench.admin, bench.dlq)
        if loop.time() > deadline:
            raise AssertionError(f"{bench.dlq} never settled at {depth}")
        await asyncio.sleep(0.1)


async def replay_as_producer(
    bench: Bench, choose: Callable[[DeadLetter], bool], order: dict[str, int] | None = None
) -> list[Any]:
    """`hrcase dlq replay`: republished as the original producer (here through the run's
    impersonator, which stamps that user as the producer's own connection would)."""
    settings = Settings()
    return await replay(
        bench.admin,
        bench.dlq,
        choose=choose,
        url_for_user=lambda user: _as_impersonator(bench.url),
        user_prefix=settings.rabbitmq_user_prefix,
        order=order,
    )


async def test_a_dead_lettered_event_holds_its_case_until_replayed_in_order(bench: Bench) -> None:
    case_a, case_b = uuid.uuid4(), uuid.uuid4()
    applied: list[uuid.UUID] = []
    fixed = False

    async def handler(ctx: HandlerContext) -> None:
        if ctx.envelope.payload["body"] == "poison" and not fixed:
            raise PermanentError("the note names an unknown template")
        applied.append(ctx.envelope.event_id)

    consumer = bench.consumer(handler)
    await consumer.start()
    first, second, third = note(case_a, "poison"), note(case_a, "second"), note(case_a, "third")
    other = note(case_b, "another case")
    for event in (first, second, other, third):
        await publish(bench, event)

    letters = await dlq_settles_at(bench, 3)
    # Another case goes on; nothing of the held case was applied.
    assert applied == [other.event_id]
    assert [x.message_id for x in letters] == [str(e.event_id) for e in (first, second, third)]
    assert letters[0].error_type == "PermanentError"
    assert "unknown template" in letters[0].error
    for held in letters[1:]:
        assert held.error_type == "CaseHeld"
        assert held.held_behind == str(first.event_id)
        assert f"held behind event {first.event_id} (case.note_added)" in held.error
        assert "unknown template" in held.error
    holds = await list_holds(bench.pool, bench.schema)
    assert [h.event_id for h in holds] == [first.event_id, second.event_id, third.event_id]
    assert {h.case_id for h in holds} == {case_a}

    # A held event replayed alone while its case is still held: dead-lettered again with
    # the same reason, once (no loop), not applied; it keeps its place in the hold.
    [done] = await replay_as_producer(bench, lambda x: x.message_id == str(second.event_id))
    assert done.refused is None
    letters = await dlq_settles_at(bench, 3)
    assert [x.message_id for x in letters] == [str(e.event_id) for e in (first, third, second)]
    assert letters[2].error_type == "CaseHeld" and letters[2].held_behind == str(first.event_id)
    assert applied == [other.event_id]
    holds = await list_holds(bench.pool, bench.schema)
    assert [h.event_id for h in holds] == [first.event_id, second.event_id, third.event_id]

    # Cause fixed: the case's dead letters replayed in hold order are applied in order.
    fixed = True
    order = {str(h.event_id): h.position for h in holds}
    done = await replay_as_producer(bench, lambda x: x.case_id == str(case_a), order)
    assert [d.dead_letter.message_id for d in done] == [
        str(e.event_id) for e in (first, second, third)
    ]
    await wait_for(lambda: len(applied) == 4, timeout=30)
    await dlq_settles_at(bench, 0)
    # The hold is lifted: a new event of the case is applied at once.
    fourth = note(case_a, "fourth")
    await publish(bench, fourth)
    await wait_for(lambda: applied[-1:] == [fourth.event_id], timeout=30)
    await consumer.stop()
    assert applied == [
        other.event_id,
        first.event_id,
        second.event_id,
        third.event_id,
        fourth.event_id,
    ]
    assert await list_holds(bench.pool, bench.schema) == []


async def test_a_forged_event_holds_nothing_and_is_never_replayed(
    bench: Bench,
) -> None:
    case_id = uuid.uuid4()
    applied: list[uuid.UUID] = []

    async def handler(ctx: HandlerContext) -> None:
        applied.append(ctx.envelope.event_id)

    consumer = bench.consumer(handler)
    await consumer.start()
    # Not authenticated (its envelope claims another producer): dead-lettered, no hold.
    forged = note(case_id).model_copy(update={"producer": "routing"})
    await publish(bench, forged)
    [letter] = await dlq_settles_at(bench, 1)
    assert letter.error_type == "ProducerNotAuthenticated"
    assert await list_holds(bench.pool, bench.schema) == []
    # The forged copy is never replayed.
    [done] = await replay_as_producer(bench, lambda x: True)
    assert done.refused is not None and "ProducerNotAuthenticated" in done.refused
    [kept] = await dlq_settles_at(bench, 1)  # returned to the DLQ, not replayed
    assert kept.message_id == str(forged.event_id)
    genuine = note(case_id)
    await publish(bench, genuine)
    await wait_for(lambda: applied == [genuine.event_id])
    await consumer.stop()


async def test_a_transient_failure_is_retried_while_the_case_s_later_events_wait(
    bench: Bench,
) -> None:
    """Before: the failing event was requeued and a later event of its case, already
    prefetched, was applied first. Now it is retried under the case's lock."""
    case_a, case_b = uuid.uuid4(), uuid.uuid4()
    applied: list[uuid.UUID] = []
    failures: list[uuid.UUID] = []
    first = note(case_a, "first")

    async def handler(ctx: HandlerContext) -> None:
        if ctx.envelope.event_id == first.event_id and len(failures) < 2:
            failures.append(first.event_id)
            raise ConnectionError("database failover in progress")
        applied.append(ctx.envelope.event_id)

    consumer = bench.consumer(handler, max_attempts=5)
    consumer.retry_backoff = 0.3  # 0.3 s then 0.6 s: ample time for a later event to overtake
    later = [note(case_a, f"later {i}") for i in range(5)]
    other = note(case_b, "another case")
    for event in (first, *later, other):
        await publish(bench, event)
    await consumer.start()
    await wait_for(lambda: len(applied) == 7, timeout=30)
    await consumer.stop()
    assert failures == [first.event_id, first.event_id]
    assert [e for e in applied if e != other.event_id] == [
        first.event_id,
        *(e.event_id for e in later),
    ]
    # Another case did not wait for the retries.
    assert applied.index(other.event_id) < applied.index(first.event_id)
    assert await bench.queue_depth(bench.dlq) == 0
    assert await list_holds(bench.pool, bench.schema) == []


async def test_a_delivery_redelivered_past_max_attempts_is_dead_lettered_with_a_hold(
    bench: Bench,
) -> None:
    """A consumer that died handling it each time never settled it: the next consumer
    dead-letters it (and holds its case) before the broker's own limit would, silently."""
    case_id = uuid.uuid4()
    applied: list[uuid.UUID] = []

    async def handler(ctx: HandlerContext) -> None:
        applied.append(ctx.envelope.event_id)

    killer, after = note(case_id, "kills its consumer"), note(case_id, "after it")
    await publish(bench, killer)
    async with bench.admin.channel() as channel:
        queue = await channel.get_queue(bench.spec.name)
        for _ in range(3):  # three deliveries that were never settled
            message = await queue.get(no_ack=False, timeout=10)
            await message.reject(requeue=True)
    await publish(bench, after)
    consumer = bench.consumer(handler, max_attempts=3)
    await consumer.start()
    letters = await dlq_settles_at(bench, 2)
    await consumer.stop()
    assert applied == []
    assert [x.error_type for x in letters] == ["RedeliveredUnsettled", "CaseHeld"]
    assert "delivered 4 times without being settled" in letters[0].error
    assert letters[1].held_behind == str(killer.event_id)


async def test_an_applied_event_redelivered_past_max_attempts_is_a_duplicate_not_a_hold(
    bench: Bench,
) -> None:
    """Its ack was lost each time (the consumer died after the commit): the inbox knows
    it, so it is acked as a duplicate and its case goes on."""
    case_id = uuid.uuid4()
    applied: list[uuid.UUID] = []

    async def handler(ctx: HandlerContext) -> None:
        applied.append(ctx.envelope.event_id)

    event, after = note(case_id, "applied once"), note(case_id, "after it")
    consumer = bench.consumer(handler, max_attempts=3)
    await consumer.start()
    await publish(bench, event)
    await wait_for(lambda: applied == [event.event_id])
    await consumer.stop()
    await publish(bench, event)  # the same event again, as after a lost ack
    async with bench.admin.channel() as channel:
        queue = await channel.get_queue(bench.spec.name)
        for _ in range(3):
            message = await queue.get(no_ack=False, timeout=10)
            await message.reject(requeue=True)
    await publish(bench, after)
    consumer = bench.consumer(handler, max_attempts=3)
    await consumer.start()
    await wait_for(lambda: applied == [event.event_id, after.event_id])
    await consumer.stop()
    assert await bench.queue_depth(bench.dlq) == 0
    assert await list_holds(bench.pool, bench.schema) == []
