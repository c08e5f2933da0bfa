"""The audit role may append and read its log, nothing else; the trigger stops everyone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from services.audit.adapters.sql import append_batch
from services.audit.tests.support import make_envelope
from shared.envelope import utcnow
from shared.settings import db_role

ROLE = db_role("audit")


@pytest.fixture
async def audit_conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    url = make_url(database_url).set(username=ROLE, password=None)
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        yield conn
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "statement",
    [
        # WHERE false: refused at the privilege check, so nothing could change even if allowed.
        "UPDATE audit.log SET producer = 'x' WHERE false",
        "DELETE FROM audit.log WHERE false",
        "TRUNCATE audit.log",
        "SELECT * FROM audit.alembic_version",
        "CREATE TABLE audit.sneaky (id int)",
    ],
)
async def test_audit_role_cannot_change_the_log(
    audit_conn: asyncpg.Connection, statement: str
) -> None:
    tx = audit_conn.transaction()
    await tx.start()
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await audit_conn.execute(statement)
    finally:
        await tx.rollback()


async def test_audit_role_has_exactly_select_and_insert(admin_pool: asyncpg.Pool) -> None:
    privileges = {
        p: await admin_pool.fetchval("SELECT has_table_privilege($1, 'audit.log', $2)", ROLE, p)
        for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    }
    assert privileges == {
        "SELECT": True,
        "INSERT": True,
        "UPDATE": False,
        "DELETE": False,
        "TRUNCATE": False,
        "REFERENCES": False,
        "TRIGGER": False,
    }
    # No other table in the schema, and no service tables (no inbox/outbox for audit);
    # privacy_boundary (migration 0005) is a one-row record the role may only read.
    tables = await admin_pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'audit' ORDER BY 1"
    )
    assert [t["tablename"] for t in tables] == ["alembic_version", "log", "privacy_boundary"]
    boundary = {
        p: await admin_pool.fetchval(
            "SELECT has_table_privilege($1, 'audit.privacy_boundary', $2)", ROLE, p
        )
        for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
    }
    assert boundary == {
        "SELECT": True,
        "INSERT": False,
        "UPDATE": False,
        "DELETE": False,
        "TRUNCATE": False,
    }


async def test_audit_role_can_append_through_the_service_path(
    audit_conn: asyncpg.Connection, database_url: str
) -> None:
    """append_batch works with only SELECT + INSERT (advisory lock, COPY)."""
    envelope = make_envelope(event_type="audittest.appended_by_role")
    result = await append_batch(audit_conn, [envelope], utcnow())
    assert [e.event_id for e in result.appended] == [envelope.event_id]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit.log SET producer = 'x' WHERE event_id = $1",
        "DELETE FROM audit.log WHERE event_id = $1",
    ],
)
async def test_trigger_refuses_the_superuser(admin_pool: asyncpg.Pool, statement: str) -> None:
    # A row of our own to aim at, inside a transaction that is always rolled back.
    envelope = make_envelope(event_type="audittest.trigger_target")
    async with admin_pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await append_batch(conn, [envelope], utcnow())
            with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
                await conn.execute(statement, envelope.event_id)
        finally:
            await tx.rollback()


async def test_trigger_refuses_truncate_by_the_superuser(admin_pool: asyncpg.Pool) -> None:
    async with admin_pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
                await conn.execute("TRUNCATE audit.log")
        finally:
            await tx.rollback()
