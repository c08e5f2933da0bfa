"""Client CPU per event of the consumer kernel, one transaction per event against group
commit (shared.consumer, README "Consumer batches"), on the real Postgres, no broker.

    flock /tmp/hrcase-bench.lock .venv/bin/python -m bench.consumer_batches --events 4000

Creates its own database (`<db>_consumer_batches`, dropped at the end) with one service's
inbox, outbox and case_holds tables, and feeds `EventConsumer._handle` deliveries of many
cases, `--concurrency` at a time (as the broker's prefetch does), each handler writing two
statements (a row lock and an insert, like a light projection). Runs alternate between
batch sizes (A, B, A, B...) and print this process's CPU ms per event (user+system:
mostly asyncpg's and asyncio's client work, the part group commit saves) and events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import asyncpg
from faststream.rabbit import RabbitBroker, RabbitQueue

from shared.consumer import EventConsumer, HandlerContext
from shared.envelope import Actor, Envelope
from shared.events import CaseNoteAdded, make_event
from shared.logging import configure_logging
from tests.support.infra import admin_database_url

SCHEMA = "bench"


class Delivery:
    """What `_handle` reads of an aio-pika message, and an ack that does nothing."""

    def __init__(self, envelope: Envelope) -> None:
        self.body = envelope.to_json_bytes()
        self.user_id = "hrcase-intake"  # the producer's broker user, as RabbitMQ stamps it
        self.headers: dict[str, Any] = {}
        self.message_id = str(envelope.event_id)
        self.routing_key = envelope.event_type

    async def ack(self) -> None:
        return None


async def prepare(pool: asyncpg.Pool) -> None:
    await pool.execute(
        f"""DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA};
        CREATE TABLE {SCHEMA}.inbox (event_id uuid PRIMARY KEY, event_type text NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(), body_sha256 bytea);
        CREATE TABLE {SCHEMA}.outbox (id bigserial PRIMARY KEY, event_id uuid NOT NULL UNIQUE,
            event_type text NOT NULL, correlation_id uuid NOT NULL, body text NOT NULL,
            trace_context jsonb, created_at timestamptz NOT NULL DEFAULT clock_timestamp());
        CREATE TABLE {SCHEMA}.case_holds (case_id uuid NOT NULL, event_id uuid NOT NULL,
            position bigint GENERATED ALWAYS AS IDENTITY, event_type text NOT NULL,
            error_type text NOT NULL, reason text NOT NULL, PRIMARY KEY (case_id, event_id));
        CREATE TABLE {SCHEMA}.cases (case_id uuid PRIMARY KEY, notes int NOT NULL DEFAULT 0);
        CREATE TABLE {SCHEMA}.notes (note_id uuid PRIMARY KEY, case_id uuid NOT NULL,
            body text NOT NULL)"""
    )


async def handler(ctx: HandlerContext) -> None:
    note = ctx.envelope.payload
    await ctx.conn.execute(
        f"INSERT INTO {SCHEMA}.cases AS c (case_id, notes) VALUES ($1, 1)"
        " ON CONFLICT (case_id) DO UPDATE SET notes = c.notes + 1",
        ctx.envelope.case_id,
    )
    await ctx.conn.execute(
        f"INSERT INTO {SCHEMA}.notes (note_id, case_id, body) VALUES ($1, $2, $3)",
        uuid.UUID(str(note["note_id"])),
        ctx.envelope.case_id,
        note["body"],
    )


def events(count: int, per_case: int) -> list[Envelope]:
    cases = [uuid.uuid4() for _ in range(max(1, count // per_case))]
    return [
        make_event(
            CaseNoteAdded(reference="HR-2026-000001", note_id=uuid.uuid4(), body=f"note {i}"),
            producer="intake",
            actor=Actor(type="agent", id="agent-1"),
            case_id=cases[i % len(cases)],
        )
        for i in range(count)
    ]


async def run_once(pool: asyncpg.Pool, batch_size: int, count: int, concurrency: int) -> None:
    consumer = EventConsumer(
        service="bench",
        schema=SCHEMA,
        broker=RabbitBroker(),
        pool=pool,
        publishers=None,  # type: ignore[arg-type]  # dead letters: none in this run
        handlers={"case.note_added": handler},
        queue=RabbitQueue("bench.events"),
        user_prefix="hrcase-",
        batch_size=batch_size,
    )
    deliveries = [Delivery(e) for e in events(count, per_case=5)]
    slots = asyncio.Semaphore(concurrency)
    tasks: list[asyncio.Task[None]] = []

    async def deliver(delivery: Delivery) -> None:
        try:
            await consumer._handle(delivery)  # type: ignore[arg-type]
        finally:
            slots.release()

    cpu, wall = time.process_time(), time.perf_counter()
    for delivery in deliveries:  # in publish order: a case's events queue on its lock
        await slots.acquire()
        tasks.append(asyncio.create_task(deliver(delivery)))
    await asyncio.gather(*tasks)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    applied = await pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.notes")
    assert applied == count, f"{applied} of {count} applied"
    print(
        f"batch_size {batch_size:>3}: {cpu / count * 1000:.3f} CPU ms per event,"
        f" {count / wall:,.0f} events/s",
        flush=True,
    )
    await pool.execute(f"TRUNCATE {SCHEMA}.inbox, {SCHEMA}.cases, {SCHEMA}.notes")


async def main(count: int, concurrency: int, sizes: list[int], rounds: int) -> None:
    url = admin_database_url("consumer_batches")
    server, name = url.rsplit("/", 1)
    admin = await asyncpg.connect(server + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    pool = await asyncpg.create_pool(url, min_size=2, max_size=10)
    assert pool is not None
    try:
        await prepare(pool)
        await run_once(pool, 1, min(count, 500), concurrency)  # warm-up
        for _ in range(rounds):
            for size in sizes:
                await run_once(pool, size, count, concurrency)
    finally:
        await pool.close()
        admin = await asyncpg.connect(server + "/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=64, help="deliveries in flight")
    parser.add_argument("--sizes", default="1,32", help="batch sizes, alternated")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    configure_logging("bench", fmt="json", level="WARNING")  # as the bench's services run
    asyncio.run(
        main(args.events, args.concurrency, [int(s) for s in args.sizes.split(",")], args.rounds)
    )
