"""Audit test fixtures: envelope factory, a scratch database with only the audit schema.

The scratch database is where the log gets tampered with: the session's shared test
database (and the audit chain other tests verify) is never touched.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import psycopg
import pytest
from alembic import command
from sqlalchemy.engine import make_url

from services.audit.adapters.sql import append_batch
from services.audit.domain.chain import ChainEntry
from services.audit.tests.support import make_envelope
from shared.envelope import utcnow
from shared.migrations import alembic_config, ensure_database


def _drop_database(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(database="postgres", drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


@pytest.fixture(scope="package", autouse=True)
def checkpoint_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """In-process audit runtimes sign into a temporary directory with a throwaway key."""
    base = tmp_path_factory.mktemp("audit-checkpoints")
    values = {
        "AUDIT_CHECKPOINT_DIR": str(base / "checkpoints"),
        "AUDIT_SIGNING_KEY_FILE": str(base / "keys" / "signing.key"),
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    yield base
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def scratch_url(database_url: str) -> Iterator[str]:
    """Admin URL of a throwaway database holding only the audit schema (pid: no clashes)."""
    test_db = make_url(database_url)
    url = test_db.set(database=f"{test_db.database}_audit_{os.getpid()}").render_as_string(
        hide_password=False
    )
    _drop_database(url)
    ensure_database(url)
    command.upgrade(alembic_config("audit", url), "head")
    yield url
    _drop_database(url)


@pytest.fixture(scope="session")
async def scratch_chain(scratch_url: str) -> list[ChainEntry]:
    """A 30-entry chain appended in three batches (the tamper tests' baseline)."""
    conn = await asyncpg.connect(scratch_url)
    try:
        entries: list[ChainEntry] = []
        case_id = uuid4()
        for batch in range(3):
            envelopes = [
                make_envelope(
                    case_id=case_id if i % 3 else None,
                    payload={"batch": batch, "i": i, "text": 'ünïcödé\n"q"', "f": 0.1},
                )
                for i in range(10)
            ]
            result = await append_batch(conn, envelopes, utcnow())
            entries.extend(result.appended)
        return entries
    finally:
        await conn.close()


@pytest.fixture
async def scratch_conn(
    scratch_url: str, scratch_chain: list[ChainEntry]
) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(scratch_url)
    try:
        yield conn
    finally:
        await conn.close()
