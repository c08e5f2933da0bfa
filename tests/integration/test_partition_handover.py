"""What a replica does with a partition it gives up or takes (EventConsumer with partition
leases, README "Partitions by case"), on the real broker and database: giving up cancels
the consumer at once and reports "not drained" while a delivery is still in its handler
(so the lease is kept), later deliveries wait in the queue, and the partition can be
taken again and consumed.

The kernel bench of test_kernel_bus; its queue stands for one partition (index 0)."""

from __future__ import annotations

import asyncio

import pytest

from shared.consumer import HandlerContext
from tests.integration import test_kernel_bus as kernel
from tests.integration.test_kernel_bus import CTL, Bench, note, publish

kernel_vhost = kernel.kernel_vhost
bench = kernel.bench

pytestmark = pytest.mark.skipif(CTL == "rabbitmqctl", reason="needs rabbitmqctl")


async def until(check, what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (await check() if asyncio.iscoroutinefunction(check) else check()):
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_partition_is_given_up_only_once_drained_and_taken_again(bench: Bench) -> None:
    handled: list[str] = []
    in_handler = asyncio.Event()
    release = asyncio.Event()
    slow, later = note(), note()
    names = {slow.event_id: "slow", later.event_id: "after the cancel"}

    async def handler(ctx: HandlerContext) -> None:
        if ctx.envelope.event_id == slow.event_id:
            in_handler.set()
            await release.wait()
        handled.append(names[ctx.envelope.event_id])

    consumer = bench.consumer(handler, drain_timeout=0.3)
    await consumer.start()
    await publish(bench, slow)
    await asyncio.wait_for(in_handler.wait(), timeout=30)

    # Its delivery is still being handled: the consumer is cancelled, the partition not
    # drained, so the caller keeps its lease.
    assert await consumer._give_up_partition(0) is False
    await publish(bench, later)
    await until(bench.queue_depth, "the later event waiting in the queue")
    await asyncio.sleep(0.3)
    assert handled == []  # nothing delivered after the cancel

    release.set()
    await until(lambda: handled == ["slow"], "the slow event settled")
    assert await consumer._give_up_partition(0) is True  # drained: the lease may go
    assert await bench.queue_depth() == 1

    # Taken again (its lease won back): the waiting event is consumed, once.
    await consumer._take_partition(0)
    await until(lambda: handled == ["slow", "after the cancel"], "the waiting event handled")
    assert await bench.queue_depth() == 0
    await consumer.stop()
    inbox = await bench.pool.fetchval(f"SELECT count(*) FROM {bench.schema}.inbox")
    assert inbox == 2
