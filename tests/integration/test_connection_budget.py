"""The connection budget (issue 8, item 20): pool sizes per service from the environment,
and a test run that checks for free connection slots first, failing clearly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.audit.app import SPEC
from shared.service import start_runtime, stop_runtime
from shared.settings import Settings
from tests.support.infra import (
    ROOT,
    NotEnoughConnections,
    connections_needed,
    free_connection_slots,
    require_free_connections,
)


def test_pool_sizes_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "7")
    monkeypatch.setenv("ROUTING_DB_POOL_SIZE", "3")
    settings = Settings()
    assert settings.db_pool_size_for("routing") == 3
    assert settings.db_pool_size_for("intake") == 7


async def test_a_service_pool_never_exceeds_its_budget(
    database_url: str, rabbitmq_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_DB_POOL_SIZE", "2")
    runtime = await start_runtime(
        SPEC, Settings(database_url=database_url, rabbitmq_url=rabbitmq_url)
    )
    try:
        assert runtime.pool.get_max_size() == 2
    finally:
        await stop_runtime(runtime)


def test_free_slots_are_counted_on_the_real_server(database_url: str) -> None:
    free, detail = free_connection_slots(database_url)
    assert 0 < free < 100_000 and "max_connections" in detail
    require_free_connections(database_url, 1, wait=0)


def test_too_few_free_slots_fail_clearly(database_url: str) -> None:
    with pytest.raises(NotEnoughConnections, match=r"free connection slots.*max_connections"):
        require_free_connections(database_url, 1_000_000, wait=0)


def test_a_run_without_enough_slots_stops_at_the_start() -> None:
    """The session check, end to end: a run that would need more than the server has
    stops before its first test, saying why."""
    env = {
        **os.environ,
        "DB_POOL_SIZE": "100000",
        "HRCASE_TEST_DB_SLOTS_WAIT": "0",
        "HRCASE_TEST_RUN_ID": f"budget{os.getpid()}",
    }
    target = (
        "tests/integration/test_connection_budget.py"
        "::test_free_slots_are_counted_on_the_real_server"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", target],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "free connection slots, this test run needs up to" in result.stdout + result.stderr


def test_a_parallel_run_needs_every_workers_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each pytest-xdist worker is a run of its own (database, vhost, systems)."""
    monkeypatch.setenv("DB_POOL_SIZE", "4")
    assert connections_needed() == 8 * 4 + 14
    assert connections_needed(workers=2) == 2 * (8 * 4 + 14)


def _parallel_run(pool_size: int, run_id: str) -> subprocess.CompletedProcess[str]:
    """`test_free_slots_are_counted_on_the_real_server` run as `make test` runs the suite
    (two pytest-xdist workers), every service pool `pool_size`, no waiting for slots."""
    env = {
        **os.environ,
        "DB_POOL_SIZE": str(pool_size),
        "HRCASE_TEST_DB_SLOTS_WAIT": "0",
        "HRCASE_TEST_RUN_ID": run_id,
    }
    target = (
        "tests/integration/test_connection_budget.py"
        "::test_free_slots_are_counted_on_the_real_server"
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", target],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_parallel_run_without_slots_for_one_worker_stops_at_the_start() -> None:
    """The controller checks before any worker starts: not even one fits, exit 3."""
    result = _parallel_run(100_000, f"budgetx{os.getpid()}")
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "this test run needs up to 800014 (8 service processes" in output, output


def test_a_parallel_run_starts_only_the_workers_that_fit(database_url: str) -> None:
    """Slots for one worker's budget but not for two: the run starts one worker, says so,
    and passes (a pool size chosen from the slots free now, with room either side)."""
    free, detail = free_connection_slots(database_url)
    pool = round((0.75 * free - 14) / 8)
    if pool < 1:
        pytest.skip(f"too few free slots to choose a pool size: {detail}")
    each = 8 * pool + 14
    assert each <= free < 2 * each
    result = _parallel_run(pool, f"budgety{os.getpid()}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"free connection slots for 1 of 2 pytest workers ({each} each); running 1" in output
    assert "1 passed" in output, output
