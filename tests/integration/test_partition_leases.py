"""Partition leases (shared.partition_leases) on the real Postgres: replicas share a
service's partitions evenly, never two at once, a gone replica's partitions move to the
others, and a partition whose deliveries are not yet settled is not handed over.

Each replica here is a PartitionLeases with its own connection whose `take` / `give_up`
record what a consumer would do; the service name is unique per test, so its lock
namespace is too (tests in parallel share the server)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial

import asyncpg
import pytest

from shared.partition_leases import PartitionLeases, lease_namespace, shares

PARTITIONS = 4
INTERVAL = 0.1


@dataclass
class Replica:
    """One replica's leases and what its consumer was told to do."""

    leases: PartitionLeases
    consuming: set[int] = field(default_factory=set)
    taken: list[int] = field(default_factory=list)
    given_up: list[int] = field(default_factory=list)
    # Partitions whose deliveries are still being handled: give_up says "not drained".
    busy: set[int] = field(default_factory=set)


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[Callable[[], Replica]]:
    service = f"lease-test-{uuid.uuid4().hex[:8]}"
    made: list[Replica] = []

    def make() -> Replica:
        replica: Replica

        async def take(partition: int) -> None:
            replica.consuming.add(partition)
            replica.taken.append(partition)

        async def give_up(partition: int) -> bool:
            replica.given_up.append(partition)
            replica.consuming.discard(partition)  # the consumer is cancelled either way
            return partition not in replica.busy

        replica = Replica(
            PartitionLeases(
                service=service,
                partitions=PARTITIONS,
                connect=partial(asyncpg.connect, database_url),
                take=take,
                give_up=give_up,
                interval=INTERVAL,
            )
        )
        made.append(replica)
        return replica

    yield make
    for replica in made:
        await replica.leases.close()


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(INTERVAL / 2)


def assert_never_shared(replicas: list[Replica]) -> None:
    held = [p for r in replicas for p in r.leases.held | r.leases.draining]
    assert len(held) == len(set(held)), [sorted(r.leases.held) for r in replicas]
    consuming = [p for r in replicas for p in r.consuming]
    assert len(consuming) == len(set(consuming)), [sorted(r.consuming) for r in replicas]


def test_shares_are_even_and_agreed_by_pid_order() -> None:
    assert shares([30, 10, 20], 4) == {10: 2, 20: 1, 30: 1}
    assert shares([7], 4) == {7: 4}
    assert shares([1, 2, 3, 4, 5], 4) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 0}
    assert shares([], 4) == {}
    # Distinct, positive int4 namespaces per service and kind.
    keys = {lease_namespace(s, k) for s in ("intake", "routing") for k in ("member", "partition")}
    assert len(keys) == 4 and all(0 < k < 2**31 for k in keys)


async def test_a_lone_replica_takes_every_partition_at_start(replicas) -> None:
    one = replicas()
    await one.leases.start()
    # Before start returned: a lone replica does not wait for a second look.
    assert one.consuming == set(range(PARTITIONS))
    assert one.leases.healthy


async def test_replicas_share_evenly_never_at_once_and_a_gone_one_s_move(replicas) -> None:
    first = replicas()
    await first.leases.start()
    second, third = replicas(), replicas()
    await second.leases.start()
    await third.leases.start()
    group = [first, second, third]

    async def watch() -> None:  # the invariant at every moment, not just at the end
        while True:
            assert_never_shared(group)
            await asyncio.sleep(INTERVAL / 5)

    watcher = asyncio.create_task(watch())
    try:
        await until(
            lambda: sorted(len(r.consuming) for r in group) == [1, 1, 2],
            "an even spread of 4 partitions over 3 replicas",
        )
        assert set().union(*(r.consuming for r in group)) == set(range(PARTITIONS))
        # The first replica gave up what the others took; nothing was taken twice.
        assert len(first.given_up) == 2
        # One replica goes (its connection closes, as when its process is killed).
        gone = max(group, key=lambda r: len(r.consuming))
        await gone.leases.close()
        gone.consuming.clear()
        rest = [r for r in group if r is not gone]
        group[:] = rest
        await until(
            lambda: sorted(len(r.consuming) for r in rest) == [2, 2],
            "the gone replica's partitions taken by the other two",
        )
        assert set().union(*(r.consuming for r in rest)) == set(range(PARTITIONS))
    finally:
        watcher.cancel()
        outcome = (await asyncio.gather(watcher, return_exceptions=True))[0]
    if isinstance(outcome, AssertionError):
        raise outcome


async def test_a_partition_still_handling_deliveries_is_not_handed_over(replicas) -> None:
    first = replicas()
    await first.leases.start()
    first.busy = {3}  # partition 3's last deliveries are still being handled
    second = replicas()
    await second.leases.start()
    # The first gives up 2 and 3 (its surplus); 2 is drained and moves, 3 stays locked.
    await until(lambda: 2 in second.consuming, "partition 2 handed over")
    await asyncio.sleep(INTERVAL * 5)
    assert 3 in first.leases.draining and 3 not in second.consuming
    assert_never_shared([first, second])
    first.busy.clear()  # settled: the lease is released and the second takes it
    await until(lambda: second.consuming == {2, 3}, "partition 3 handed over once drained")
    assert first.consuming == {0, 1} and not first.leases.draining


async def test_a_replica_whose_lease_connection_drops_keeps_its_partitions(
    replicas, admin_pool
) -> None:
    first = replicas()
    await first.leases.start()
    second = replicas()
    await second.leases.start()
    await until(lambda: len(first.consuming) == 2 and len(second.consuming) == 2, "an even spread")
    before = set(first.consuming)
    # Postgres ends the first replica's lease session (a network blip, a failover):
    # its locks are gone at once, but it still consumes and locks them again on
    # reconnecting, before the second (which waits for a second look) takes them.
    assert first.leases._connection is not None
    pid = first.leases._connection.get_server_pid()
    await admin_pool.execute("SELECT pg_terminate_backend($1)", pid)

    def reconnected() -> bool:
        connection = first.leases._connection
        return (
            first.leases.healthy and connection is not None and connection.get_server_pid() != pid
        )

    await until(reconnected, "the first replica's leases on a new session")
    await asyncio.sleep(INTERVAL * 5)
    assert first.consuming == before
    assert second.consuming == set(range(PARTITIONS)) - before
    assert_never_shared([first, second])
