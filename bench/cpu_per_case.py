"""CPU seconds the four service processes spend per case: an A/B figure that holds on a
shared machine, where throughput (bench.e2e) swings with other load.

    .venv/bin/python -m bench.cpu_per_case --cases 200
    OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14318 \\
        .venv/bin/python -m bench.cpu_per_case --cases 200   # with bench.otlp_sink on 14318

Starts the system as bench.e2e does (own database and vhost), warms up with 50 cases,
then offers `--cases` at `--rate` cases/s (below capacity, so nothing queues) and reads
each service process's user+system CPU time (/proc) before and after, until every case
is in the audit log (bench.e2e.Bench.phase, the same measurement `make bench` prints).
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from pathlib import Path

import asyncpg

from bench.e2e import Bench, submit_cases, wait_until_audited
from tests.support.infra import admin_database_url, rabbitmq_test_url, recreate_database
from tests.support.system import running_system


async def run(cases: int, rate: float) -> None:
    database_url = admin_database_url("bench")
    recreate_database(database_url)
    amqp_url = rabbitmq_test_url("hrcase_bench")
    logs = Path("var/bench-logs")
    await asyncio.to_thread(logs.mkdir, parents=True, exist_ok=True)
    with running_system(
        database_url, amqp_url, logs, mail_in_process=False, LOG_LEVEL="WARNING"
    ) as system:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        assert pool is not None
        async with pool:
            bench = Bench(system, pool, {n: [s] for n, s in system.services.items()})
            warm = [uuid.UUID(c) for c in await submit_cases(bench.intake_urls(), 50, 16, "warm")]
            await wait_until_audited(pool, warm, timeout=120)
            phase = await bench.phase("bench", cases, 16, rate)
    print(
        " ".join(f"{name} {ms:.1f}" for name, ms in phase.cpu_ms.items()),
        f"total {sum(phase.cpu_ms.values()):.1f} ms CPU per case",
        f"(load average {phase.load});",
        " ".join(f"{name} {n:.0f}" for name, n in phase.writes.items()),
        f"total {sum(phase.writes.values()):.0f} write syscalls per case",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="offered cases/s")
    args = parser.parse_args()
    asyncio.run(run(args.cases, args.rate))


if __name__ == "__main__":
    main()
