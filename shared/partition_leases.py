"""Which partitions of a partitioned service each replica consumes (README "Partitions by
case", "Partition leases").

Every partition is a quorum queue with a single active consumer, so two replicas never
apply one case's events at once whatever happens here. Which replica that consumer is,
RabbitMQ decides by registration order before 4.0 (consumer priorities are ignored for a
single active consumer until then): the first replica to start would consume every
partition while the others stand by. So a replica subscribes only to the partitions it
holds a *lease* on, and the replicas spread the leases evenly among themselves.

A lease is a Postgres session-level advisory lock, on one connection the replica keeps
for it (taken from its pool, so the connection budget does not grow): it ends when the
replica's process or that connection does, so a killed replica's partitions are free at
once; a clean stop unlocks them (`pg_advisory_unlock_all`) before the connection goes
back to the pool, whose release does not reset sessions. Keys are two int4s,
(namespace, n): a *member* lock (namespace, backend pid) says the replica is alive, a
*partition* lock (namespace, p) says it holds partition p.
`pg_locks` (readable by every role) shows all of them, so every replica computes the same
plan: with R members and N partitions, each holds N // R, and the first N % R by backend
pid one more.

Every `interval` seconds a replica compares what it holds with its share. Above it, it
gives partitions up: cancels its consumer at the broker, waits until every delivery it
already received is settled, then unlocks (a partition not yet drained stays locked and is
tried again next time), so the next holder never sees a case's later event while an
earlier one is still being handled. Below it, it locks free partitions and subscribes.
A partition seen free only once may belong to a replica whose lease connection just
dropped (it locks its partitions again as soon as it reconnects), so with other members
present a partition is taken only when it was free at the previous look too.

Raises nothing to its caller: failures are logged and retried at the next interval;
`healthy` is False while the lease connection is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from shared.metrics import PARTITIONS_HELD

log = structlog.get_logger(__name__)

# Seconds any lease query may take before the connection is counted as lost.
QUERY_TIMEOUT = 10.0

Connect = Callable[[], Awaitable[Any]]  # an asyncpg connection, or a pool's proxy of one
Disconnect = Callable[[Any], Awaitable[None]]


async def _close(connection: Any) -> None:
    await connection.close(timeout=5)


def lease_namespace(service: str, kind: str) -> int:
    """The first advisory-lock key of `service`'s `kind` ("member" | "partition") leases: a
    positive int4 from BLAKE2b, so every process agrees and no other lock of hrcase (the
    relay's, routing's) shares it."""
    digest = hashlib.blake2b(f"hrcase-partition-leases:{service}:{kind}".encode(), digest_size=4)
    return int.from_bytes(digest.digest(), "big") & 0x7FFFFFFF


def shares(members: Sequence[int], partitions: int) -> dict[int, int]:
    """How many partitions each member (backend pid) should hold: partitions // members
    each, one more for the first partitions % members in pid order; a member beyond the
    partition count holds none."""
    ordered = sorted(members)
    if not ordered:
        return {}
    base, extra = divmod(partitions, len(ordered))
    return {pid: base + (1 if rank < extra else 0) for rank, pid in enumerate(ordered)}


@dataclass
class LeaseView:
    """Who holds what, read from pg_locks in one query."""

    members: list[int] = field(default_factory=list)  # backend pids of live replicas
    holders: dict[int, int] = field(default_factory=dict)  # partition -> holder's pid


_VIEW = """
SELECT l.classid::bigint AS namespace, l.objid::bigint AS key, l.pid
FROM pg_locks l
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = ANY($1::bigint[])
"""


class PartitionLeases:
    """The lease loop of one replica of `service` over `partitions` partitions.

    `connect()` opens the lease connection and `disconnect(connection)` lets it go (by
    default: closes it; a pool's: `pool.acquire` and `pool.release`). `take(p)`: start
    consuming partition p (called with its lease held). `give_up(p)`: cancel p's consumer
    and wait for its deliveries to be settled; True when drained (the lease is then
    released), False to keep the lease and try again later.
    """

    def __init__(
        self,
        *,
        service: str,
        partitions: int,
        connect: Connect,
        take: Callable[[int], Awaitable[None]],
        give_up: Callable[[int], Awaitable[bool]],
        interval: float = 2.0,
        disconnect: Disconnect = _close,
    ) -> None:
        self.service = service
        self.partitions = partitions
        self.connect = connect
        self.disconnect = disconnect
        self.take = take
        self.give_up = give_up
        self.interval = interval
        self.member_namespace = lease_namespace(service, "member")
        self.partition_namespace = lease_namespace(service, "partition")
        self.held: set[int] = set()  # consuming, lease held
        self.draining: set[int] = set()  # consumer cancelled, lease held until drained
        self.healthy = False
        self._connection: Any = None
        self._free_before: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._mutex = asyncio.Lock()

    async def start(self) -> None:
        """Take this replica's share once (a lone replica consumes before this returns),
        then keep it every `interval` seconds in the background."""
        await self.step()
        self._task = asyncio.create_task(self._run(), name=f"{self.service} partition leases")

    async def halt(self) -> None:
        """Stop rebalancing; the leases stay held until `close`."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        # A step in progress (start's, or one the task was cancelled in) ends first.
        async with self._mutex:
            pass

    async def close(self) -> None:
        """Release every lease (by closing the lease connection); call once the consumers
        are stopped."""
        await self.halt()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                await connection.execute("SELECT pg_advisory_unlock_all()", timeout=5)
            except Exception:
                connection.terminate()  # its session, and so its locks, end
            with contextlib.suppress(Exception):
                await self.disconnect(connection)
        self.held.clear()
        self.draining.clear()
        self.healthy = False
        PARTITIONS_HELD.labels(self.service).set(0)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.step()

    async def step(self) -> None:
        """One look at the leases and the changes it calls for; failures are logged and
        leave `healthy` False until a step succeeds. A lease connection found lost is
        opened again at once, in the same step, so this replica locks its partitions
        again before another replica's second look could take them."""
        async with self._mutex:
            for attempt in (1, 2):
                try:
                    if self._connection is None or self._connection.is_closed():
                        await self._reconnect()
                    await self._rebalance()
                    self.healthy = True
                    break
                except Exception as exc:
                    self.healthy = False
                    lost = self._connection is None or self._connection.is_closed()
                    if isinstance(exc, OSError | TimeoutError | asyncpg.PostgresError) or lost:
                        log.warning("partition leases unavailable", error=repr(exc))
                        await self._drop_connection()
                        if lost and attempt == 1:
                            continue  # the connection dropped: open it again now
                    else:  # a broker failure in take/give_up: tried again next time
                        log.error("partition lease step failed", error=repr(exc))
                    break
            PARTITIONS_HELD.labels(self.service).set(len(self.held))

    async def _drop_connection(self) -> None:
        """End the lease session (its locks with it) and hand the connection back."""
        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        connection.terminate()
        with contextlib.suppress(Exception):
            await self.disconnect(connection)

    async def _reconnect(self) -> None:
        await self._drop_connection()
        connection = await self.connect()
        self._connection = connection
        await connection.fetchval(
            "SELECT pg_try_advisory_lock($1::int, pg_backend_pid())",
            self.member_namespace,
            timeout=QUERY_TIMEOUT,
        )
        # Consumers still running from before the connection dropped: lock their
        # partitions again first; one another replica took meanwhile is given up (its
        # queue's single active consumer kept the two apart until now).
        for partition in sorted(self.held | self.draining):
            if not await self._try_lock(partition):
                log.warning("partition lease lost to another replica", partition=partition)
                self.held.discard(partition)
                self.draining.discard(partition)
                await self.give_up(partition)

    async def _try_lock(self, partition: int) -> bool:
        assert self._connection is not None
        return bool(
            await self._connection.fetchval(
                "SELECT pg_try_advisory_lock($1::int, $2::int)",
                self.partition_namespace,
                partition,
                timeout=QUERY_TIMEOUT,
            )
        )

    async def _unlock(self, partition: int) -> None:
        assert self._connection is not None
        await self._connection.fetchval(
            "SELECT pg_advisory_unlock($1::int, $2::int)",
            self.partition_namespace,
            partition,
            timeout=QUERY_TIMEOUT,
        )

    async def view(self) -> LeaseView:
        """The members and the partition holders of this service, now."""
        assert self._connection is not None
        rows = await self._connection.fetch(
            _VIEW, [self.member_namespace, self.partition_namespace], timeout=QUERY_TIMEOUT
        )
        found = LeaseView()
        for row in rows:
            if row["namespace"] == self.member_namespace:
                found.members.append(row["pid"])
            elif row["key"] < self.partitions:
                found.holders[int(row["key"])] = row["pid"]
        return found

    async def _rebalance(self) -> None:
        assert self._connection is not None
        for partition in sorted(self.draining):
            if await self.give_up(partition):
                await self._unlock(partition)
                self.draining.discard(partition)
        found = await self.view()
        mine = self._connection.get_server_pid()
        share = shares(found.members or [mine], self.partitions).get(mine, 0)
        if len(self.held) > share:
            # Give up the highest-numbered first: every replica agrees which are surplus.
            for partition in sorted(self.held, reverse=True)[: len(self.held) - share]:
                self.held.discard(partition)
                log.info("giving partition up", partition=partition, share=share)
                if await self.give_up(partition):
                    await self._unlock(partition)
                else:
                    self.draining.add(partition)
        free = {p for p in range(self.partitions) if p not in found.holders}
        alone = len(found.members) <= 1
        for partition in sorted(free):
            if len(self.held) + len(self.draining) >= share:
                break
            if not alone and partition not in self._free_before:
                continue  # its holder may be reconnecting: take it at the next look
            if await self._try_lock(partition):
                try:
                    await self.take(partition)
                except BaseException:
                    await self._unlock(partition)
                    raise
                self.held.add(partition)
                log.info("partition taken", partition=partition, share=share)
        self._free_before = free
