"""Tampering with a real audit.log (in a scratch database) and finding it with verify.

Each tamper runs inside a transaction with the user triggers disabled and is rolled
back; verify reads through that same connection. The CLI test commits a change (in the
scratch database only) and restores the original bytes afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

import asyncpg
import pytest
from click.testing import CliRunner, Result

from services.audit.adapters.sql import append_batch, head
from services.audit.domain.chain import ChainEntry
from services.audit.entrypoints.cli import audit_cli, verify_connection, verify_log
from services.audit.tests.support import make_envelope
from shared.envelope import utcnow


@asynccontextmanager
async def tampering(conn: asyncpg.Connection) -> AsyncIterator[None]:
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute("ALTER TABLE audit.log DISABLE TRIGGER USER")
        yield
    finally:
        await tx.rollback()


async def _log_is_intact(conn: asyncpg.Connection) -> None:
    result = await verify_connection(conn)
    assert result.ok, result


async def test_scratch_chain_is_intact(scratch_conn: asyncpg.Connection) -> None:
    result = await verify_connection(scratch_conn)
    assert result.ok and result.entries == await scratch_conn.fetchval(
        "SELECT count(*) FROM audit.log"
    )


async def test_changed_payload(scratch_conn: asyncpg.Connection) -> None:
    async with tampering(scratch_conn):
        await scratch_conn.execute(
            """UPDATE audit.log SET payload = '{"batch":0,"i":4,"text":"nothing to see"}'
            WHERE seq = 5"""
        )
        result = await verify_connection(scratch_conn)
        assert (result.ok, result.bad_seq, result.entries) == (False, 5, 4)
        assert "content" in (result.reason or "")
    await _log_is_intact(scratch_conn)


async def test_whitespace_only_change_is_still_a_change(scratch_conn: asyncpg.Connection) -> None:
    async with tampering(scratch_conn):
        await scratch_conn.execute(
            "UPDATE audit.log SET actor = (' ' || actor::text)::json WHERE seq = 12"
        )
        assert (await verify_connection(scratch_conn)).bad_seq == 12


async def test_deleted_middle_row(scratch_conn: asyncpg.Connection) -> None:
    async with tampering(scratch_conn):
        await scratch_conn.execute("DELETE FROM audit.log WHERE seq = 17")
        result = await verify_connection(scratch_conn)
        assert result.bad_seq == 17 and "missing" in (result.reason or "")


async def test_row_inserted_out_of_band(scratch_conn: asyncpg.Connection) -> None:
    last = await head(scratch_conn)
    assert last is not None
    async with tampering(scratch_conn):
        # Linked to the real head, but its hash was not made by the chain's rule.
        await scratch_conn.execute(
            """INSERT INTO audit.log SELECT seq + 1, $1, event_type, schema_version,
                occurred_at, recorded_at, 'intruder', correlation_id, causation_id, case_id,
                actor, payload, entry_hash, md5('x') || md5('y')
            FROM audit.log WHERE seq = $2""",
            uuid4(),
            last.seq,
        )
        result = await verify_connection(scratch_conn)
        assert result.bad_seq == last.seq + 1 and result.entries == last.seq
    # seq 0 does not even get in.
    async with tampering(scratch_conn):
        with pytest.raises(asyncpg.CheckViolationError):
            await scratch_conn.execute(
                "INSERT INTO audit.log SELECT 0, $1, event_type, schema_version, occurred_at,"
                " recorded_at, producer, correlation_id, causation_id, case_id, actor,"
                " payload, prev_hash, entry_hash FROM audit.log WHERE seq = 1",
                uuid4(),
            )


async def test_swapped_rows(scratch_conn: asyncpg.Connection) -> None:
    columns = (
        "event_id, event_type, schema_version, occurred_at, recorded_at, producer,"
        " correlation_id, causation_id, case_id, actor, payload, prev_hash, entry_hash"
    )
    async with tampering(scratch_conn):
        # Everything but seq changes places between seq 8 and seq 20 (event_id is UNIQUE,
        # hence the detour through a temporary id).
        await scratch_conn.execute(
            f"CREATE TEMP TABLE swap ON COMMIT DROP AS SELECT seq, {columns} FROM audit.log"
            " WHERE seq IN (8, 20)"
        )
        await scratch_conn.execute(
            "UPDATE audit.log SET event_id = gen_random_uuid() WHERE seq IN (8, 20)"
        )
        sets = ", ".join(f"{c.strip()} = s.{c.strip()}" for c in columns.split(","))
        await scratch_conn.execute(
            f"UPDATE audit.log l SET {sets} FROM swap s WHERE s.seq = 28 - l.seq"
        )
        result = await verify_connection(scratch_conn)
        assert result.bad_seq == 8 and "prev_hash" in (result.reason or "")


async def test_range_verification(scratch_conn: asyncpg.Connection) -> None:
    result = await verify_connection(scratch_conn, from_seq=11, to_seq=20)
    assert result.ok and result.entries == 10 and result.head_seq == 20
    async with tampering(scratch_conn):
        await scratch_conn.execute("UPDATE audit.log SET producer = 'x' WHERE seq = 25")
        assert (await verify_connection(scratch_conn, from_seq=11, to_seq=20)).ok
        assert (await verify_connection(scratch_conn, from_seq=21)).bad_seq == 25


async def test_anchor_catches_deleted_tail(scratch_conn: asyncpg.Connection) -> None:
    last = await head(scratch_conn)
    assert last is not None
    anchors = {last.seq: last.entry_hash}
    assert (await verify_connection(scratch_conn, anchors=anchors)).ok
    async with tampering(scratch_conn):
        await scratch_conn.execute("DELETE FROM audit.log WHERE seq = $1", last.seq)
        assert (await verify_connection(scratch_conn)).ok  # invisible without the anchor
        result = await verify_connection(scratch_conn, anchors=anchors)
        assert result.bad_seq == last.seq


async def test_the_trigger_refuses_even_the_superuser(scratch_conn: asyncpg.Connection) -> None:
    for statement in (
        "UPDATE audit.log SET producer = 'x' WHERE seq = 1",
        "DELETE FROM audit.log WHERE seq = 1",
        "TRUNCATE audit.log",
    ):
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await scratch_conn.execute(statement)
    await _log_is_intact(scratch_conn)


async def test_concurrent_writers_do_not_fork_the_chain(
    scratch_url: str, scratch_chain: list[ChainEntry]
) -> None:
    """Four writers (as if four replicas) appending at once: one chain, no gaps."""
    conns = [await asyncpg.connect(scratch_url) for _ in range(4)]
    try:
        before = await conns[0].fetchval("SELECT count(*) FROM audit.log")

        async def writer(conn: asyncpg.Connection) -> None:
            for _ in range(5):
                await append_batch(conn, [make_envelope() for _ in range(20)], utcnow())

        await asyncio.gather(*(writer(c) for c in conns))
        assert await conns[0].fetchval("SELECT count(*) FROM audit.log") == before + 400
        assert await conns[0].fetchval("SELECT max(seq) FROM audit.log") == before + 400
        await _log_is_intact(conns[0])
    finally:
        for conn in conns:
            await conn.close()


async def test_append_is_idempotent(scratch_conn: asyncpg.Connection) -> None:
    envelope = make_envelope()
    first = await append_batch(scratch_conn, [envelope, envelope], utcnow())
    assert len(first.appended) == 1 and first.duplicates == [envelope.event_id]
    again = await append_batch(scratch_conn, [envelope], utcnow())
    assert again.appended == [] and again.duplicates == [envelope.event_id]


def _cli(*args: str) -> Result:
    return CliRunner().invoke(audit_cli, list(args))


async def test_cli_verify_exit_codes(scratch_url: str, scratch_conn: asyncpg.Connection) -> None:
    # The command runs its own event loop: give it a thread of its own.
    ok = await asyncio.to_thread(_cli, "verify", "--database-url", scratch_url)
    assert ok.exit_code == 0, ok.output
    count = await scratch_conn.fetchval("SELECT count(*) FROM audit.log")
    last = await head(scratch_conn)
    assert last is not None
    assert ok.stdout.strip() == f"OK: {count} entries verified, head {last.entry_hash}"
    # No checkpoint was ever signed for the scratch database: said, but not a failure...
    assert "WARNING: no signed checkpoint" in ok.stderr
    # ...unless checkpoints are required.
    required = await asyncio.to_thread(
        _cli, "verify", "--database-url", scratch_url, "--require-checkpoints"
    )
    assert required.exit_code == 1

    original = await scratch_conn.fetchval("SELECT payload::text FROM audit.log WHERE seq = 3")
    await scratch_conn.execute("ALTER TABLE audit.log DISABLE TRIGGER USER")
    try:
        await scratch_conn.execute("UPDATE audit.log SET payload = '{}' WHERE seq = 3")
        bad = await asyncio.to_thread(_cli, "verify", "--database-url", scratch_url)
        assert bad.exit_code == 1, bad.output
        assert bad.output.startswith("TAMPERED at seq 3: ")
        # Restoring the exact bytes restores a valid chain.
        await scratch_conn.execute(
            "UPDATE audit.log SET payload = $1::json WHERE seq = 3", original
        )
    finally:
        await scratch_conn.execute("ALTER TABLE audit.log ENABLE TRIGGER USER")
    again = await asyncio.to_thread(
        _cli, "verify", "--database-url", scratch_url, "--anchor", f"{last.seq}:{last.entry_hash}"
    )
    assert again.exit_code == 0, again.output


async def test_cli_reports_an_unreachable_database() -> None:
    result = await asyncio.to_thread(
        _cli, "verify", "--database-url", "postgresql://postgres@127.0.0.1:1/nowhere"
    )
    assert result.exit_code == 2


async def test_verify_log_by_url(scratch_url: str, scratch_chain: list[ChainEntry]) -> None:
    result = await verify_log(scratch_url, to_seq=len(scratch_chain))
    assert result.ok and result.head_hash == scratch_chain[-1].entry_hash
