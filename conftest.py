"""Session fixtures shared by service unit/integration tests and the cross-service tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import asyncpg
import psycopg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.privacy.keys import key_store_url
from shared.privacy.sealing import close_key_stores, use_key_store_url
from shared.settings import Settings
from tests.support.bus import close_connections
from tests.support.containers import choose_infrastructure, docker_reachable, start_containers
from tests.support.infra import (
    RUN_ID,
    TEST_DB_POOL_SIZE,
    NotEnoughConnections,
    admin_database_url,
    connections_needed,
    delete_vhost,
    drop_database,
    rabbitmq_test_url,
    recreate_database,
    require_free_connections,
    workers_that_fit,
)

# Small pools for every service this run starts, in process or as a process (they inherit
# the environment): the run's connection budget (tests/support/infra.py).
os.environ.setdefault("DB_POOL_SIZE", str(TEST_DB_POOL_SIZE))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under pytest-xdist (`make test`), the controller checks the whole run's connection
    budget once, before any worker starts: every worker is a run of its own (database,
    vhost, broker users, systems) and may hold a single run's budget (README "Connection
    budget"). It waits HRCASE_TEST_DB_SLOTS_WAIT seconds for all workers' slots, then
    starts as many workers as fit (saying so), at least one; none fitting stops the run
    (exit 3), as a single run does. Each worker's `database_url` checks its own share.
    Skipped when Postgres is a container per worker or cannot be reached (a run of unit
    tests against an unreachable URL; the workers' fixtures report what needs it)."""
    config = session.config
    specs = list(getattr(config.option, "tx", None) or [])
    if hasattr(config, "workerinput") or config.option.collectonly:
        return
    if getattr(config.option, "dist", "no") == "no" or len(specs) < 2:
        return
    if choose_infrastructure(os.environ, docker_reachable()).postgres_container:
        return
    url = admin_database_url(f"test_{RUN_ID}")
    wait = float(os.environ.get("HRCASE_TEST_DB_SLOTS_WAIT", "60"))
    try:
        fits = workers_that_fit(url, len(specs), wait=wait)
    except NotEnoughConnections as exc:
        pytest.exit(str(exc), returncode=3)
    except psycopg.OperationalError:
        return
    if fits < len(specs):
        config.option.tx = specs[:fits]  # read when xdist starts its workers (trylast)
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"hrcase: Postgres has free connection slots for {fits} of {len(specs)}"
                f" pytest workers ({connections_needed()} each); running {fits}"
            )


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[None]:
    """Pinned RabbitMQ/Postgres containers for a URL that is not set when a Docker engine
    answers; the local services otherwise (tests/support/containers.py, README "Tests").
    The URLs go into the environment, which in-process runtimes and service processes read."""
    choice = choose_infrastructure(os.environ, docker_reachable())
    if not choice.any_container:
        yield
        return
    saved = dict(os.environ)
    with start_containers(choice) as env:
        os.environ.update(env)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)


@pytest.fixture(scope="session")
def database_url(infrastructure: None) -> Iterator[str]:
    """Admin URL of a freshly created and migrated database, dropped after the run."""
    url = admin_database_url(f"test_{RUN_ID}")
    try:
        wait = float(os.environ.get("HRCASE_TEST_DB_SLOTS_WAIT", "60"))
        require_free_connections(url, connections_needed(), wait=wait)
    except NotEnoughConnections as exc:
        pytest.exit(str(exc), returncode=3)
    recreate_database(url)
    # Code run in the test process without a service runtime (open_case on a pool, an
    # enqueue) seals personal fields with this database's key store (shared.privacy).
    use_key_store_url(key_store_url(Settings(database_url=url)))
    yield url
    use_key_store_url(None)
    drop_database(url)


@pytest.fixture(scope="session")
def rabbitmq_url(infrastructure: None) -> Iterator[str]:
    """A vhost of this run's own (when rabbitmqctl is at hand), deleted after the run."""
    yield rabbitmq_test_url()
    delete_vhost()


@pytest.fixture(scope="session")
async def admin_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await close_key_stores()  # those opened on first use in this loop (shared.privacy)
    await pool.close()


@pytest.fixture(scope="session")
async def amqp(rabbitmq_url: str) -> AsyncIterator[AbstractRobustConnection]:
    # No heartbeats: the session's event loop stands still during synchronous tests, and
    # after two missed heartbeats the broker resets the connection under the next test.
    # Connections derived from its URL (tests.support.bus) inherit `?heartbeat=0`.
    connection = await aio_pika.connect_robust(rabbitmq_url, heartbeat=0)
    yield connection
    await close_connections()  # the publishers' own connections (tests.support.bus)
    await connection.close()


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("service-logs")
