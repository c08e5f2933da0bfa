"""Signed checkpoints against a real audit.log: what a superuser who recomputes every hash
still cannot hide (truncate-and-rebuild, a deleted tail, a rewritten-and-rehashed middle).

Tampering happens in the scratch database inside transactions that are rolled back
(see test_tamper.py); checkpoints are signed with a throwaway key into tmp files.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.adapters.checkpoints import (
    CheckpointFile,
    CheckpointWriter,
    current_database,
    load_or_create_signing_key,
    load_public_keys,
)
from services.audit.adapters.sql import append_batch, head, stream_entries
from services.audit.domain.chain import GENESIS_HASH, ChainEntry, extend
from services.audit.domain.checkpoint import CheckedCheckpoints, sign_checkpoint
from services.audit.entrypoints.cli import audit_cli, audit_connection, verify_connection
from services.audit.tests.support import make_envelope
from services.audit.tests.test_tamper import tampering
from shared.envelope import utcnow


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "signing.key"
    load_or_create_signing_key(path, create=True)
    return path


@pytest.fixture
def key(key_file: Path) -> Ed25519PrivateKey:
    return load_or_create_signing_key(key_file, create=False)


@pytest.fixture
async def scratch_pool(
    scratch_url: str, scratch_chain: list[ChainEntry]
) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(scratch_url, min_size=1, max_size=2)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture
async def signed(
    scratch_pool: asyncpg.Pool, key: Ed25519PrivateKey, tmp_path: Path
) -> CheckpointFile:
    """The scratch chain's head signed by the writer (which first verifies from genesis)."""
    writer = CheckpointWriter(
        pool=scratch_pool, key=key, directory=tmp_path / "checkpoints", interval=60
    )
    checkpoint = await writer.checkpoint()
    assert checkpoint is not None
    assert await writer.checkpoint() is None  # head did not move: nothing new to sign
    async with scratch_pool.acquire() as conn:
        database = await current_database(conn)
    sink = CheckpointFile.for_database(tmp_path / "checkpoints", database)
    assert len(sink.lines()) == 1
    return sink


async def _checked(
    conn: asyncpg.Connection, sink: CheckpointFile, key: Ed25519PrivateKey
) -> CheckedCheckpoints:
    return sink.check(database=await current_database(conn), keys=[key.public_key()])


async def test_signed_head_verifies(
    scratch_conn: asyncpg.Connection, signed: CheckpointFile, key: Ed25519PrivateKey
) -> None:
    checked = await _checked(scratch_conn, signed, key)
    assert len(checked.valid) == 1 and not checked.problems
    report = await audit_connection(scratch_conn, checkpoints=checked)
    assert report.ok, report
    last = await head(scratch_conn)
    assert last is not None and checked.latest is not None
    assert (checked.latest.seq, checked.latest.entry_hash) == (last.seq, last.entry_hash)
    # The line is the documented format: the signature covers every other member.
    line = json.loads(signed.lines()[0])
    assert set(line) == {
        "v", "database", "seq", "entry_hash", "recorded_at", "signed_at", "key_id", "signature"
    }  # fmt: skip


async def test_truncate_and_rebuild_is_caught(
    scratch_conn: asyncpg.Connection, signed: CheckpointFile, key: Ed25519PrivateKey
) -> None:
    checked = await _checked(scratch_conn, signed, key)
    count = await scratch_conn.fetchval("SELECT count(*) FROM audit.log")
    async with tampering(scratch_conn):
        await scratch_conn.execute("TRUNCATE audit.log")
        # A fresh, perfectly consistent chain of the same length (and then some).
        await append_batch(scratch_conn, [make_envelope() for _ in range(count + 3)], utcnow())
        assert (await verify_connection(scratch_conn)).ok  # the chain alone cannot tell
        report = await audit_connection(scratch_conn, checkpoints=checked)
        assert not report.ok
        assert checked.latest is not None and report.chain.bad_seq == checked.latest.seq
        assert "anchor" in (report.chain.reason or "")


async def test_deleted_tail_is_caught(
    scratch_conn: asyncpg.Connection, signed: CheckpointFile, key: Ed25519PrivateKey
) -> None:
    checked = await _checked(scratch_conn, signed, key)
    last = await head(scratch_conn)
    assert last is not None
    async with tampering(scratch_conn):
        await scratch_conn.execute("DELETE FROM audit.log WHERE seq > $1", last.seq - 3)
        assert (await verify_connection(scratch_conn)).ok
        report = await audit_connection(scratch_conn, checkpoints=checked)
        assert report.chain.bad_seq == last.seq
        assert "log ends at seq" in (report.chain.reason or "")
        # A range that stops before the deletion is still told the log is too short.
        ranged = await audit_connection(scratch_conn, checkpoints=checked, to_seq=5)
        assert ranged.chain.ok and not ranged.ok
        assert "entries deleted" in (ranged.checkpoint_failure or "")


async def test_rewritten_and_rehashed_middle_is_caught(
    scratch_conn: asyncpg.Connection, signed: CheckpointFile, key: Ed25519PrivateKey
) -> None:
    checked = await _checked(scratch_conn, signed, key)
    async with tampering(scratch_conn):
        entries = [e async for e in stream_entries(scratch_conn)]
        # Change seq 7's payload and recompute every hash from there: self-consistent.
        forged_7 = replace(entries[6], payload='{"batch":0,"i":6,"text":"nothing happened"}')
        prev = entries[5].entry_hash
        rebuilt = extend(
            [forged_7, *entries[7:]],  # type: ignore[list-item]
            head_seq=6,
            head_hash=prev,
            recorded_at=entries[6].recorded_at,
        )
        for e in rebuilt:
            await scratch_conn.execute(
                "UPDATE audit.log SET payload = $2::json, prev_hash = $3, entry_hash = $4,"
                " recorded_at = $5 WHERE seq = $1",
                e.seq,
                e.payload,
                e.prev_hash,
                e.entry_hash,
                e.recorded_at,
            )
        assert (await verify_connection(scratch_conn)).ok
        report = await audit_connection(scratch_conn, checkpoints=checked)
        assert not report.ok and report.chain.bad_seq == checked.latest.seq  # type: ignore[union-attr]


async def test_writer_refuses_to_sign_a_broken_chain(
    scratch_pool: asyncpg.Pool, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    async with scratch_pool.acquire() as conn, tampering(conn):
        await conn.execute("UPDATE audit.log SET producer = 'x' WHERE seq = 4")
        # The writer's own connection would not see the uncommitted change: give it this one.
        pool: Any = _OneConn(conn)
        writer = CheckpointWriter(pool=pool, key=key, directory=tmp_path / "cp", interval=1)
        assert await writer.checkpoint() is None
        assert writer.broken is not None and "seq 4" in writer.broken
    assert not (tmp_path / "cp").exists()


class _OneConn:
    """A pool of one given connection (to let the writer see an uncommitted tamper)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    def acquire(self) -> _OneConn:
        return self

    async def __aenter__(self) -> asyncpg.Connection:
        return self.conn

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_forged_or_foreign_checkpoint_lines_are_reported(
    scratch_conn: asyncpg.Connection, signed: CheckpointFile, key: Ed25519PrivateKey
) -> None:
    line = json.loads(signed.lines()[0])
    # Moving a checkpoint back (to hide a later deletion) breaks its signature.
    moved = {**line, "seq": line["seq"] - 1}
    other_key = Ed25519PrivateKey.generate()
    foreign = sign_checkpoint(
        other_key, database=line["database"], seq=1, entry_hash="0" * 64,
        recorded_at=utcnow(), signed_at=utcnow(),
    )  # fmt: skip
    with signed.path.open("a") as f:
        f.write(json.dumps(moved) + "\n" + foreign.to_json() + "\nnot json\n")
    checked = await _checked(scratch_conn, signed, key)
    assert len(checked.valid) == 1
    reasons = [p.reason for p in checked.problems]
    assert [p.line for p in checked.problems] == [2, 3, 4]
    assert "signature" in reasons[0] and "unknown key" in reasons[1] and "unreadable" in reasons[2]
    report = await audit_connection(scratch_conn, checkpoints=checked)
    assert report.chain.ok and not report.ok


def _cli(*args: str) -> Result:
    return CliRunner().invoke(audit_cli, list(args))


async def test_cli_checks_checkpoints(
    scratch_url: str,
    scratch_conn: asyncpg.Connection,
    signed: CheckpointFile,
    key: Ed25519PrivateKey,
    key_file: Path,
    tmp_path: Path,
) -> None:
    pub = key_file.with_name(key_file.name + ".pub")
    assert load_public_keys([pub])[0].public_bytes_raw() == key.public_key().public_bytes_raw()
    base = ("verify", "--database-url", scratch_url, "--public-key", str(pub), "--progress")
    ok = await asyncio.to_thread(_cli, *base, "--checkpoints", str(signed.path))
    assert ok.exit_code == 0, ok.output
    assert "signed checkpoint(s) hold" in ok.stdout
    assert "entries" in ok.stderr  # the progress bar, on stderr

    # A validly signed checkpoint the log no longer satisfies (as after a tail deletion).
    last = await head(scratch_conn)
    assert last is not None
    database = await current_database(scratch_conn)
    beyond = CheckpointFile(tmp_path / "beyond.jsonl")
    beyond.append(
        sign_checkpoint(
            key,
            database=database,
            seq=last.seq + 5,
            entry_hash="a" * 64,
            recorded_at=utcnow(),
            signed_at=utcnow(),
        )
    )
    bad = await asyncio.to_thread(_cli, *base, "--checkpoints", str(beyond.path))
    assert bad.exit_code == 1, bad.output
    assert bad.stdout.startswith(f"TAMPERED at seq {last.seq + 5}: anchored entry missing")

    # Signed with another key: the file is not trusted.
    stranger = CheckpointFile(tmp_path / "stranger.jsonl")
    stranger.append(
        sign_checkpoint(
            Ed25519PrivateKey.generate(),
            database=database,
            seq=1,
            entry_hash=GENESIS_HASH,
            recorded_at=utcnow(),
            signed_at=utcnow(),
        )
    )
    untrusted = await asyncio.to_thread(_cli, *base, "--checkpoints", str(stranger.path))
    assert untrusted.exit_code == 1 and "CHECKPOINT INVALID" in untrusted.stdout


async def test_cli_checkpoint_command_signs_the_head(
    scratch_url: str, scratch_conn: asyncpg.Connection, tmp_path: Path, key_file: Path
) -> None:
    env = {"AUDIT_SIGNING_KEY_FILE": str(key_file)}
    directory = str(tmp_path / "cp")
    runner = CliRunner(env=env)
    first = await asyncio.to_thread(
        runner.invoke,
        audit_cli,
        ["checkpoint", "--database-url", scratch_url, "--checkpoint-dir", directory],
    )
    assert first.exit_code == 0 and "\nsigned: seq" in "\n" + first.stdout, first.output
    again = await asyncio.to_thread(
        runner.invoke,
        audit_cli,
        ["checkpoint", "--database-url", scratch_url, "--checkpoint-dir", directory],
    )
    assert again.stdout.strip().endswith("nothing new to sign"), again.output
    verify = await asyncio.to_thread(
        runner.invoke,
        audit_cli,
        ["verify", "--database-url", scratch_url, "--checkpoint-dir", directory,
         "--require-checkpoints"],
    )  # fmt: skip
    assert verify.exit_code == 0, verify.output


def test_key_is_generated_once_and_refused_where_it_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "k" / "signing.key"
    with pytest.raises(RuntimeError, match="no audit signing key"):
        load_or_create_signing_key(path, create=False)
    first = load_or_create_signing_key(path, create=True)
    second = load_or_create_signing_key(path, create=True)
    assert first.public_key().public_bytes_raw() == second.public_key().public_bytes_raw()
    assert (path.stat().st_mode & 0o777) == 0o600
    assert path.with_name("signing.key.pub").exists()
