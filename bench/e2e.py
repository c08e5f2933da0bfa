"""End-to-end benchmark: cases through all four services vs. raw aio-pika in the same run.

    .venv/bin/python -m bench.e2e --cases 2000 --concurrency 32

Creates its own database (`<db>_bench`) and vhost (`hrcase_bench`), starts the four
services as separate processes with a local mail sink, and reports:
- baseline: raw aio-pika publish+consume rate (persistent, confirms, quorum queue, manual ack);
- cases/s end to end (first submit -> last audit row of the last case);
- p50/p99 latency submit -> routed (routing's commit) and submit -> audited (last audit row);
- the ratio of the pipeline's event rate to the baseline.
Timestamps come from the database, so client overhead does not flatter the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from pathlib import Path

import aio_pika
import asyncpg
import httpx

from tests.support.auth import auth_headers
from tests.support.infra import admin_database_url, rabbitmq_test_url, recreate_database
from tests.support.system import running_system

# submitted, routed, process_assigned, stage_entered, assigned, status_changed,
# 2 x notification.sent
EVENTS_PER_CASE = 8


async def baseline_rate(amqp_url: str, messages: int, body_size: int = 900) -> float:
    """Messages/s for publish-with-confirm + consume-with-ack on a durable quorum queue."""
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        publish_channel = await connection.channel(publisher_confirms=True)
        consume_channel = await connection.channel()
        await consume_channel.set_qos(prefetch_count=256)
        queue_name = f"bench.baseline.{uuid.uuid4().hex[:8]}"
        queue = await consume_channel.declare_queue(
            queue_name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        exchange = await publish_channel.declare_exchange(
            "bench.baseline", aio_pika.ExchangeType.TOPIC, durable=True
        )
        await queue.bind("bench.baseline", routing_key="#")
        done = asyncio.Event()
        received = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received >= messages:
                done.set()

        await queue.consume(on_message)
        body = b"x" * body_size
        started = time.perf_counter()
        for offset in range(0, messages, 500):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            body,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            message_id=str(uuid.uuid4()),
                        ),
                        routing_key="bench.event",
                        mandatory=True,
                    )
                    for _ in range(min(500, messages - offset))
                )
            )
        await asyncio.wait_for(done.wait(), timeout=300)
        elapsed = time.perf_counter() - started
        await queue.delete(if_unused=False, if_empty=False)
        await exchange.delete()
    return messages / elapsed


async def submit_cases(
    intake_url: str, count: int, concurrency: int, tag: str, rate: float = 0.0
) -> list[str]:
    """Submit `count` cases; `rate` > 0 paces the offered load (cases/s), 0 = flat out."""
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # Reporters are many employees: an HR agent submits on their behalf.
    headers = auth_headers("A-1001", "hr_agent")
    async with httpx.AsyncClient(
        base_url=intake_url, timeout=60, limits=limits, headers=headers
    ) as client:

        async def one(i: int) -> str:
            body = {
                "subject": f"{tag} {i}: overtime missing from my payslip",
                "description": "My overtime from last month is not on my payslip, please check.",
                "reporter": {
                    "employee_id": f"E-{i % 500}",
                    "name": "Bench Reporter",
                    "email": f"reporter{i % 500}@example.com",
                },
            }
            async with semaphore:
                response = await client.post("/api/v1/cases", json=body)
            response.raise_for_status()
            return str(response.json()["case_id"])

        if rate <= 0:
            return await asyncio.gather(*(one(i) for i in range(count)))
        tasks = []
        started = time.perf_counter()
        for i in range(count):
            # Open-loop pacing: launch on schedule whether or not earlier ones finished.
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i)))
        return await asyncio.gather(*tasks)


async def wait_until_audited(pool: asyncpg.Pool, case_ids: list[uuid.UUID], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    expected = len(case_ids) * EVENTS_PER_CASE
    while time.monotonic() < deadline:
        n = await pool.fetchval(
            "SELECT count(*) FROM audit.log WHERE case_id = ANY($1::uuid[])", case_ids
        )
        if n >= expected:
            return
        await asyncio.sleep(0.25)
    raise TimeoutError(f"only {n}/{expected} audit rows after {timeout}s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(database_url: str, case_ids: list[uuid.UUID]) -> dict[str, float]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    async with pool:
        rows = await pool.fetch(
            """SELECT i.case_id, i.submitted_at, r.routed_at, a.audited_at
               FROM intake.cases i
               JOIN routing.cases r USING (case_id)
               JOIN (SELECT case_id, max(recorded_at) AS audited_at FROM audit.log
                     WHERE case_id = ANY($1::uuid[]) GROUP BY case_id) a USING (case_id)
               WHERE i.case_id = ANY($1::uuid[])""",
            case_ids,
        )
    routed = [(r["routed_at"] - r["submitted_at"]).total_seconds() * 1000 for r in rows]
    audited = [(r["audited_at"] - r["submitted_at"]).total_seconds() * 1000 for r in rows]
    first = min(r["submitted_at"] for r in rows)
    last = max(r["audited_at"] for r in rows)
    span = (last - first).total_seconds()
    return {
        "cases": len(rows),
        "span_s": span,
        "cases_per_s": len(rows) / span,
        "routed_p50_ms": percentile(routed, 0.5),
        "routed_p99_ms": percentile(routed, 0.99),
        "audited_p50_ms": percentile(audited, 0.5),
        "audited_p99_ms": percentile(audited, 0.99),
        "audited_mean_ms": statistics.fmean(audited),
    }


async def run(cases: int, concurrency: int, baseline_messages: int, rate: float) -> None:
    database_url = admin_database_url("bench")
    recreate_database(database_url)
    amqp_url = rabbitmq_test_url("hrcase_bench")
    logs = Path("var/bench-logs")
    await asyncio.to_thread(logs.mkdir, parents=True, exist_ok=True)

    baseline = await baseline_rate(amqp_url, baseline_messages)
    print(
        f"baseline raw aio-pika publish+consume: {baseline:,.0f} msg/s ({baseline_messages} msgs)"
    )

    with running_system(
        database_url, amqp_url, logs, mail_in_process=False, LOG_LEVEL="WARNING"
    ) as system:
        intake = system.url("intake")
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        assert pool is not None
        async with pool:
            warm = [uuid.UUID(c) for c in await submit_cases(intake, 50, concurrency, "warm-up")]
            await wait_until_audited(pool, warm, timeout=60)
            started = time.perf_counter()
            ids = [
                uuid.UUID(c) for c in await submit_cases(intake, cases, concurrency, "bench", rate)
            ]
            submit_s = time.perf_counter() - started
            await wait_until_audited(pool, ids, timeout=max(120, cases))
        result = await measure(database_url, ids)

    events_per_s = result["cases_per_s"] * EVENTS_PER_CASE
    print(
        f"submitted {cases} cases in {submit_s:.1f}s"
        f" ({cases / submit_s:,.0f}/s accepted by the API)"
    )
    print(
        f"end to end: {result['cases_per_s']:,.1f} cases/s "
        f"({events_per_s:,.0f} events/s on the bus) over {result['span_s']:.1f}s"
    )
    print(
        f"latency submit->routed  p50 {result['routed_p50_ms']:,.0f} ms"
        f"  p99 {result['routed_p99_ms']:,.0f} ms"
    )
    print(
        f"latency submit->audited p50 {result['audited_p50_ms']:,.0f} ms"
        f"  p99 {result['audited_p99_ms']:,.0f} ms"
    )
    print(
        f"ratio: pipeline events/s / raw aio-pika msgs/s = {events_per_s / baseline:.3f}"
        f"  (cases/s / baseline = {result['cases_per_s'] / baseline:.4f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--baseline-messages", type=int, default=20000)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="offered cases/s (0: as fast as possible)"
    )
    args = parser.parse_args()
    asyncio.run(run(args.cases, args.concurrency, args.baseline_messages, args.rate))


if __name__ == "__main__":
    main()
