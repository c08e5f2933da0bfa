"""Partitions by case on the real broker (shared.topology, README "Partitions by case"):
every event reaches exactly one partition of a service (its case's slot modulo the count,
partition 0 without a slot), through every change of the partition count `hrcase
topology` makes (2 -> 4 -> 3, drained), none lost and none doubled; a partition that still
holds messages when the count shrinks is kept, unbound, and reported."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from yarl import URL

from hrcase.services import QUEUES
from shared.topology import (
    EXCHANGE,
    SLOT_HEADER,
    SLOTS,
    ServiceQueue,
    declare_all,
    slot_of,
)
from tests.support.bus import vhost_url

pytestmark = pytest.mark.skipif(
    shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl for a vhost of its own"
)
CTL = shutil.which("rabbitmqctl") or "rabbitmqctl"
ROUTING = QUEUES["routing"]
KEY = ROUTING.binding_keys[0]


@pytest.fixture(scope="module")
def partitions_vhost(amqp: AbstractRobustConnection) -> Iterator[str]:
    base = URL(vhost_url(amqp))
    vhost = f"{base.path.lstrip('/')}_partitions"
    subprocess.run([CTL, "-q", "delete_vhost", vhost], capture_output=True)
    subprocess.run([CTL, "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        [CTL, "-q", "set_permissions", "-p", vhost, base.user or "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    yield str(base.with_path("/" + vhost))
    subprocess.run([CTL, "-q", "delete_vhost", vhost], capture_output=True)


@pytest.fixture
async def channel(partitions_vhost: str) -> AsyncIterator[AbstractChannel]:
    # Not robust, as `hrcase topology`: a robust channel re-applies its bindings on reopen.
    connection = await aio_pika.connect(partitions_vhost)
    async with connection, connection.channel(publisher_confirms=True) as channel:
        yield channel


async def publish(channel: AbstractChannel, count: int, unslotted: int = 2) -> dict[str, int]:
    """`count` events of distinct cases with their slot header, plus `unslotted` without
    one (an outside feed); mandatory, confirmed. Returns message id -> its slot (-1: none)."""
    exchange = await channel.get_exchange(EXCHANGE, ensure=False)
    sent: dict[str, int] = {}
    for i in range(count + unslotted):
        message_id = str(uuid.uuid4())
        slot = slot_of(str(uuid.uuid4())) if i < count else -1
        headers = {SLOT_HEADER: str(slot)} if slot >= 0 else {}
        await exchange.publish(
            aio_pika.Message(b"{}", message_id=message_id, headers=headers),
            routing_key=KEY,
            mandatory=True,  # raises if unroutable
        )
        sent[message_id] = slot
    return sent


async def take_all(
    channel: AbstractChannel, spec: ServiceQueue, expected: set[str]
) -> dict[str, list[int]]:
    """Message id -> the partitions it was found in: consumes every partition queue that
    exists (a quorum queue with a single active consumer refuses basic.get) until
    `expected` all arrived, then a moment longer for any copy."""
    found: dict[str, list[int]] = {}
    arrived = asyncio.Event()
    existing = []
    for partition in range(SLOTS):
        try:
            existing.append(
                (
                    partition,
                    await channel.declare_queue(spec.partition_name(partition), passive=True),
                )
            )
        except aio_pika.exceptions.ChannelClosed:  # no such queue
            await channel.reopen()
    consumers = []
    for partition, queue in existing:

        async def take(message: AbstractIncomingMessage, partition: int = partition) -> None:
            found.setdefault(str(message.message_id), []).append(partition)
            if expected <= set(found):
                arrived.set()

        consumers.append((queue, await queue.consume(take, no_ack=True)))
    await asyncio.wait_for(arrived.wait(), timeout=30)
    await asyncio.sleep(0.5)
    for queue, tag in consumers:
        await queue.cancel(tag)
    return found


def assert_each_once(sent: dict[str, int], found: dict[str, list[int]], count: int) -> None:
    assert set(found) == set(sent), "every event arrived, nothing else"
    assert {m: p for m, p in found.items() if len(p) != 1} == {}, "none doubled"
    expected = {m: [0 if slot < 0 else slot % count] for m, slot in sent.items()}
    assert found == expected


async def test_changing_the_partition_count_loses_and_doubles_nothing(
    channel: AbstractChannel,
) -> None:
    total: Counter[str] = Counter()
    for count, retired in ((2, []), (4, []), (3, [ROUTING.partition_name(3)])):
        spec = ROUTING.with_partitions(count)
        done = await declare_all(channel, [spec], retire=True)
        assert done.deleted == retired and done.kept == {}
        sent = await publish(channel, 200)
        found = await take_all(channel, spec, set(sent))
        assert_each_once(sent, found, count)
        total.update({m: len(p) for m, p in found.items()})
    assert len(total) == 3 * 202 and set(total.values()) == {1}


async def test_a_partition_still_holding_messages_is_kept_unbound(
    channel: AbstractChannel,
) -> None:
    three = ROUTING.with_partitions(3)
    await declare_all(channel, [three], retire=True)
    waiting = await publish(channel, 60, unslotted=0)
    in_p2 = sum(1 for slot in waiting.values() if slot % 3 == 2)
    two = ROUTING.with_partitions(2)
    done = await declare_all(channel, [two], retire=True)
    assert done.deleted == [] and done.kept == {ROUTING.partition_name(2): in_p2}
    # p2 takes nothing more: the new events reach p0/p1 once each.
    sent = await publish(channel, 100)
    found = await take_all(channel, ROUTING.with_partitions(3), set(sent) | set(waiting))
    later = {m: p for m, p in found.items() if m in sent}
    assert_each_once(sent, later, 2)
    kept = [m for m, p in found.items() if p == [2]]
    assert len(kept) == in_p2 and set(kept) <= set(waiting)
    # Drained now (taken above): the next run retires it.
    done = await declare_all(channel, [two], retire=True)
    assert done.deleted == [ROUTING.partition_name(2)] and done.kept == {}
