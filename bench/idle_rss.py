"""Idle RSS of the four services, and what intake's first dashboard costs.

    .venv/bin/python -m bench.idle_rss                       # ANALYTICS_WARM_AT_START off
    .venv/bin/python -m bench.idle_rss --warm-at-start       # the replica loaded at start

Starts the system as bench.e2e does (own database and vhost), reads VmRSS of each service
5 s after start and again after 50 cases (all audited, then 3 s idle), then asks intake's
SLA figures twice as an HR manager (the first loads DuckDB and the replica unless it was
warmed at start) and reads intake's RSS after them. Target (issue 15): <= 120 MB idle.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from bench.e2e import load_average, rss_mb, submit_cases, wait_until_audited
from tests.support.auth import auth_headers
from tests.support.infra import admin_database_url, rabbitmq_test_url, recreate_database
from tests.support.system import running_system


async def run(warm_at_start: bool) -> None:
    database_url = admin_database_url("bench")
    recreate_database(database_url)
    amqp_url = rabbitmq_test_url("hrcase_bench")
    with running_system(
        database_url,
        amqp_url,
        Path("var/bench-logs"),
        mail_in_process=False,
        LOG_LEVEL="WARNING",
        ANALYTICS_WARM_AT_START="1" if warm_at_start else "0",
    ) as system:
        pids = {name: s.proc.pid for name, s in system.services.items() if s.proc}

        def rss() -> str:
            return "  ".join(f"{name} {rss_mb(pid):.0f}" for name, pid in pids.items())

        await asyncio.sleep(5)
        print(f"load average {load_average()}; ANALYTICS_WARM_AT_START={int(warm_at_start)}")
        print(f"RSS MiB 5 s after start: {rss()}")
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        assert pool is not None
        async with pool:
            cases = await submit_cases(system.url("intake"), 50, 16, "idle-rss")
            await wait_until_audited(pool, [uuid.UUID(c) for c in cases], timeout=120)
        await asyncio.sleep(3)
        print(f"RSS MiB after 50 cases, idle: {rss()}")
        manager = auth_headers("M-9001", "hr_manager", employee_id="M-9001")
        async with httpx.AsyncClient(base_url=system.url("intake"), timeout=60) as client:
            for attempt in ("first", "second"):
                started = time.perf_counter()
                response = await client.get(
                    "/api/v1/analytics/sla", params={"group_by": "team"}, headers=manager
                )
                elapsed = (time.perf_counter() - started) * 1000
                print(f"{attempt} SLA figures: HTTP {response.status_code} in {elapsed:.0f} ms")
        print(f"intake RSS MiB after the dashboard: {rss_mb(pids['intake']):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-at-start", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.warm_at_start))


if __name__ == "__main__":
    main()
