"""The background metrics refresher on the real broker and database: gauges follow what is
there, a failing or hanging probe is counted and does not stop the others, and a probe
whose queue was missing recovers once it exists."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika

from shared.metrics import (
    METRICS_REFRESH_FAILURES,
    OUTBOX_DEPTH,
    OUTBOX_OLDEST_AGE_SECONDS,
    QUEUE_CONSUMERS,
    QUEUE_MESSAGES,
    MetricsRefresher,
    QueueProbe,
    outbox_probe,
)


def failures(service: str, probe: str) -> float:
    return METRICS_REFRESH_FAILURES.labels(service, probe)._value.get()


async def test_queue_probe_counts_messages_and_recovers_from_a_missing_queue(amqp):
    service = f"ops-{uuid.uuid4().hex[:8]}"
    present, missing = f"{service}.events", f"{service}.events.dlq"
    async with amqp.channel() as channel:
        queue = await channel.declare_queue(present, auto_delete=False)
        try:
            for n in range(3):
                await channel.default_exchange.publish(
                    aio_pika.Message(body=b"x", message_id=str(n)), routing_key=present
                )
            probe = QueueProbe(service, amqp, {present: "events", missing: "dead_letter"})
            refresher = MetricsRefresher(service, interval=60)
            refresher.add("queues", probe)

            await refresher.refresh()
            assert QUEUE_MESSAGES.labels(service, present, "events")._value.get() == 3
            assert QUEUE_CONSUMERS.labels(service, present, "events")._value.get() == 0
            assert failures(service, "queues") == 1  # NOT_FOUND on the missing queue

            dlq = await channel.declare_queue(missing, auto_delete=False)
            await channel.default_exchange.publish(
                aio_pika.Message(body=b"dead"), routing_key=missing
            )

            async def leave(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                pass  # unacked: the consumer only has to exist

            consumer_tag = await queue.consume(leave)
            await refresher.refresh()
            assert failures(service, "queues") == 1  # a fresh channel: no new failure
            assert QUEUE_MESSAGES.labels(service, missing, "dead_letter")._value.get() == 1
            assert QUEUE_CONSUMERS.labels(service, present, "events")._value.get() == 1
            await queue.cancel(consumer_tag)
            await probe.close()
            await dlq.delete(if_unused=False, if_empty=False)
        finally:
            await queue.delete(if_unused=False, if_empty=False)


async def test_a_hanging_probe_is_cut_off_and_the_others_still_run(admin_pool):
    service = f"ops-{uuid.uuid4().hex[:8]}"

    async def hangs() -> None:
        await asyncio.sleep(30)

    refresher = MetricsRefresher(service, interval=60, timeout=0.2)
    refresher.add("hangs", hangs)
    refresher.add("outbox", outbox_probe(service, "intake", admin_pool))
    event_id = uuid.uuid4()
    # No intake relay runs in this module: the row stays until the test deletes it.
    await admin_pool.execute(
        "INSERT INTO intake.outbox (event_id, event_type, correlation_id, body, created_at)"
        " VALUES ($1, 'ops.probe', $2, '{}', clock_timestamp() - interval '90 seconds')",
        event_id,
        uuid.uuid4(),
    )
    try:
        await refresher.refresh()
        assert failures(service, "hangs") == 1
        depth = OUTBOX_DEPTH.labels(service)._value.get()
        assert depth >= 1
        assert OUTBOX_OLDEST_AGE_SECONDS.labels(service)._value.get() >= 90
    finally:
        await admin_pool.execute("DELETE FROM intake.outbox WHERE event_id = $1", event_id)
    await refresher.refresh()
    assert failures(service, "hangs") == 2
    assert OUTBOX_DEPTH.labels(service)._value.get() == depth - 1
