"""Two audit ingest replicas writing into one chain at the same time (real broker, real
database): the advisory lock serialises their batches; no fork, no gap, no duplicate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from services.audit.application.ingest import AuditIngest
from services.audit.domain.chain import ChainEntry
from services.audit.entrypoints.cli import verify_connection
from services.audit.tests.support import make_envelope, wait_until
from services.audit.tests.test_ingest import _send
from shared.bus import Publisher
from shared.topology import ServiceQueue, declare_exchanges, queue_arguments


@pytest.fixture
async def two_queues(amqp: AbstractRobustConnection) -> AsyncIterator[list[str]]:
    # Plain queues (no single-active-consumer) so both replicas really write at once.
    specs = [ServiceQueue(f"audittest-replica-{uuid4().hex[:8]}", ()) for _ in range(2)]
    async with amqp.channel() as channel:
        await declare_exchanges(channel)
        for spec in specs:
            await channel.declare_queue(spec.name, durable=True, arguments=queue_arguments(spec))
    yield [s.name for s in specs]
    async with amqp.channel() as channel:
        for spec in specs:
            await channel.queue_delete(spec.name)


async def test_two_replicas_write_one_chain(
    amqp: AbstractRobustConnection,
    two_queues: list[str],
    scratch_url: str,
    scratch_chain: list[ChainEntry],
) -> None:
    pool = await asyncpg.create_pool(scratch_url, min_size=2, max_size=4)
    assert pool is not None
    per_queue = [[make_envelope() for _ in range(600)] for _ in two_queues]
    # The same events reaching both replicas (a redelivery racing a failover).
    shared = [make_envelope() for _ in range(50)]
    publisher = await Publisher.open(amqp)
    replicas = [
        AuditIngest(
            connection=amqp, queue_name=q, pool=pool, publisher=publisher, batch_size=50,
            linger=0.005,
        )
        for q in two_queues
    ]  # fmt: skip
    try:
        for replica in replicas:
            await replica.start()
        await asyncio.gather(
            *(
                _send(amqp, q, [*shared, *events])
                for q, events in zip(two_queues, per_queue, strict=True)
            )
        )
        expected = {e.event_id for events in per_queue for e in events} | {
            e.event_id for e in shared
        }

        async def all_written() -> bool:
            n = await pool.fetchval(
                "SELECT count(*) FROM audit.log WHERE event_id = ANY($1::uuid[])", list(expected)
            )
            return bool(n == len(expected))

        await wait_until(all_written, timeout=30, what="both replicas' events in the log")
        stats = await pool.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT event_id) AS ids, min(seq) AS low,"
            " max(seq) AS high FROM audit.log"
        )
        assert stats["n"] == stats["ids"] == stats["high"] and stats["low"] == 1
        async with pool.acquire() as conn:
            result = await verify_connection(conn)
        assert result.ok, result
    finally:
        for replica in replicas:
            await replica.stop()
        await publisher.channel.close()
        await pool.close()
