"""Session fixtures shared by service unit/integration tests and the cross-service tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.support.infra import admin_database_url, rabbitmq_test_url, recreate_database


@pytest.fixture(scope="session")
def database_url() -> str:
    """Admin URL of a freshly created and migrated test database."""
    url = admin_database_url("test")
    recreate_database(url)
    return url


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    return rabbitmq_test_url()


@pytest.fixture(scope="session")
async def admin_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def amqp(rabbitmq_url: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(rabbitmq_url)
    yield connection
    await connection.close()


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("service-logs")
