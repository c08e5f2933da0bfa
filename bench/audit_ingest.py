"""Audit ingest benchmark: events/s into the hash chain vs raw COPY of the same rows.

    .venv/bin/python -m bench.audit_ingest --events 50000

Creates its own database (`<db>_bench_audit`) and vhost (`hrcase_bench_audit`). In one run:
1. raw COPY: the same rows (hashes precomputed) copied into a scratch table shaped like
   audit.log (LIKE ... INCLUDING ALL: same indexes and constraints, no trigger), in
   batches of the ingest's batch size, one transaction per batch: the floor for writing
   these rows at all;
2. append_batch direct: the chain write path without the broker (advisory lock, dedup
   lookup, head read, hashing, COPY);
3. the real ingest: events pre-loaded on a quorum queue, then AuditIngest consumes,
   batches, chains, commits and acks; timed from start to the last row committed.
Prints events/s for each and the ratio of the real ingest (and of append_batch) to raw COPY.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import aio_pika
import asyncpg

from services.audit.adapters.sql import LOG_COLUMNS, _record, append_batch
from services.audit.application.ingest import DEFAULT_BATCH_SIZE, AuditIngest
from services.audit.domain.chain import GENESIS_HASH, extend, pending_from_envelope
from shared.bus import Publisher, build_message
from shared.envelope import Actor, Envelope, new_envelope, utcnow
from shared.logging import configure_logging
from shared.topology import ServiceQueue, declare_exchanges, queue_arguments
from tests.support.bus import close_connections, impersonator, user_of
from tests.support.infra import (
    admin_database_url,
    delete_vhost,
    drop_database,
    rabbitmq_test_url,
    recreate_database,
)

VHOST = "hrcase_bench_audit"


def envelopes(n: int) -> list[Envelope]:
    """Events shaped like the real ones (a case.assigned-sized payload, ~700 bytes)."""
    case_ids = [uuid.uuid4() for _ in range(max(1, n // 6))]
    return [
        new_envelope(
            event_type="case.assigned",
            schema_version=1,
            payload={
                "reference": f"HR-2026-{i:06d}",
                "team": "investigations",
                "owner": {"id": "A-3001", "name": "Ada Lovelace", "email": "ada@example.com"},
                "strategy": "round_robin",
                "priority": "P2",
                "sensitivity": "restricted",
                "category": "harassment",
                "first_response_due": "2026-11-23T09:00:00+00:00",
                "note": 'Ünïcode ✓ and a "quote"',
            },
            producer="routing",
            actor=Actor(type="service", id="routing"),
            case_id=case_ids[i % len(case_ids)],
        )
        for i in range(n)
    ]


async def raw_copy(conn: asyncpg.Connection, events: list[Envelope], batch: int) -> float:
    await conn.execute("DROP TABLE IF EXISTS audit.bench_raw")
    await conn.execute("CREATE TABLE audit.bench_raw (LIKE audit.log INCLUDING ALL)")
    entries = extend(
        [pending_from_envelope(e) for e in events],
        head_seq=0,
        head_hash=GENESIS_HASH,
        recorded_at=utcnow(),
    )
    records = [_record(e) for e in entries]
    started = time.perf_counter()
    for i in range(0, len(records), batch):
        async with conn.transaction():
            await conn.copy_records_to_table(
                "bench_raw",
                schema_name="audit",
                columns=LOG_COLUMNS,
                records=records[i : i + batch],
            )
    elapsed = time.perf_counter() - started
    await conn.execute("DROP TABLE audit.bench_raw")
    return len(records) / elapsed


async def direct_append(conn: asyncpg.Connection, events: list[Envelope], batch: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(events), batch):
        await append_batch(conn, events[i : i + batch], utcnow())
    return len(events) / (time.perf_counter() - started)


async def ingest(database_url: str, amqp_url: str, events: list[Envelope], batch: int) -> float:
    connection = await aio_pika.connect_robust(amqp_url)
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=4)
    assert pool is not None
    spec = ServiceQueue(f"bench.audit.{uuid.uuid4().hex[:8]}", ())
    try:
        async with connection.channel() as channel:
            await declare_exchanges(channel)
            await channel.declare_queue(spec.name, durable=True, arguments=queue_arguments(spec))
        # Straight into the queue, stamped with the producer's broker user as a real
        # publish would be (audit refuses unauthenticated producers).
        stamping = await impersonator(connection)
        async with stamping.channel(publisher_confirms=True) as channel:
            for i in range(0, len(events), 1000):
                await asyncio.gather(
                    *(
                        channel.default_exchange.publish(
                            build_message(
                                e.to_json_bytes(),
                                event_id=str(e.event_id),
                                event_type=e.event_type,
                                correlation_id=str(e.correlation_id),
                                user_id=user_of(e.producer),
                            ),
                            routing_key=spec.name,
                        )
                        for e in events[i : i + 1000]
                    )
                )
        before = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM audit.log")
        publisher = await Publisher.open(connection)
        consumer = AuditIngest(
            connection=connection,
            queue_name=spec.name,
            pool=pool,
            publisher=publisher,
            batch_size=batch,
            prefetch=max(2 * batch, 1000),
        )
        started = time.perf_counter()
        await consumer.start()
        target = before + len(events)
        # max(seq) is an index lookup; the chain has no gaps, so it counts the rows.
        while (  # noqa: ASYNC110
            await pool.fetchval("SELECT coalesce(max(seq), 0) FROM audit.log") < target
        ):
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        await consumer.stop()
        async with connection.channel() as channel:
            await channel.queue_delete(spec.name)
        return len(events) / elapsed
    finally:
        await close_connections()
        await pool.close()
        await connection.close()


async def main(n: int, batch: int) -> None:
    configure_logging("audit", fmt="console", level="WARNING")
    database_url = admin_database_url("bench_audit")
    recreate_database(database_url)
    amqp_url = rabbitmq_test_url(VHOST)
    try:
        conn = await asyncpg.connect(database_url)
        try:
            warm = envelopes(2000)  # warm caches and the JIT-free paths alike
            await direct_append(conn, warm, batch)
            raw = await raw_copy(conn, envelopes(n), batch)
            direct = await direct_append(conn, envelopes(n), batch)
        finally:
            await conn.close()
        real = await ingest(database_url, amqp_url, envelopes(n), batch)
        verify_conn = await asyncpg.connect(database_url)
        try:
            from services.audit.entrypoints.cli import verify_connection

            started = time.perf_counter()
            result = await verify_connection(verify_conn)
            verify_rate = result.entries / (time.perf_counter() - started)
            assert result.ok, result
        finally:
            await verify_conn.close()
    finally:
        drop_database(database_url)
        delete_vhost(VHOST)
    print(f"events: {n}, batch size: {batch}")
    print(f"baseline raw COPY (same rows, same indexes):  {raw:10.0f} rows/s")
    print(f"append_batch (chain, lock, dedup; no broker): {direct:10.0f} events/s"
          f"  ratio {direct / raw:.2f}")  # fmt: skip
    verdict = "met" if real >= 5000 else "MISSED"
    print(f"real ingest (broker -> chain -> ack):         {real:10.0f} events/s"
          f"  ratio {real / raw:.2f}  target >= 5000/s: {verdict}")  # fmt: skip
    print(f"verify (full chain rehash):                   {verify_rate:10.0f} entries/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH_SIZE)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.batch))
