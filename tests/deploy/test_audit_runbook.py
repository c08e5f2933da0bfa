"""README "Runbook", audit steps, against a real audit.log in a database of its own: a
signing-key rotation (the writer re-verifies from seq 1 and signs with the new key;
`hrcase audit verify` needs both public keys), and a restore that ends before the latest
signed checkpoint (verify says TAMPERED, the writer refuses to sign; an older checkpoint
still anchors the restored prefix; with the file moved aside the writer signs a new anchor).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import psycopg
import pytest
from alembic import command
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import make_url

from services.audit.adapters.checkpoints import (
    CheckpointFile,
    CheckpointWriter,
    current_database,
    load_or_create_signing_key,
)
from services.audit.adapters.sql import append_batch, head
from services.audit.domain.checkpoint import key_id
from services.audit.entrypoints.cli import audit_cli
from services.audit.tests.support import make_envelope
from shared.envelope import utcnow
from shared.migrations import alembic_config, ensure_database


def _drop(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(database="postgres", drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


@pytest.fixture
async def audit_db(database_url: str) -> AsyncIterator[str]:
    """A throwaway database with only the audit schema and 10 entries (5 + 5)."""
    parsed = make_url(database_url)
    url = parsed.set(database=f"{parsed.database}_runbook_{os.getpid()}").render_as_string(
        hide_password=False
    )
    await asyncio.to_thread(_drop, url)
    await asyncio.to_thread(ensure_database, url)
    await asyncio.to_thread(command.upgrade, alembic_config("audit", url), "head")
    try:
        yield url
    finally:
        await asyncio.to_thread(_drop, url)


async def _append(url: str, count: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await append_batch(conn, [make_envelope() for _ in range(count)], utcnow())
    finally:
        await conn.close()


def _key(directory: Path, name: str) -> tuple[Ed25519PrivateKey, Path]:
    path = directory / name / "checkpoint-signing.key"
    return load_or_create_signing_key(path, create=True), path.with_name(path.name + ".pub")


async def _sign(url: str, key: Ed25519PrivateKey, directory: Path) -> CheckpointWriter:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    assert pool is not None
    try:
        writer = CheckpointWriter(pool=pool, key=key, directory=directory, interval=60)
        await writer.checkpoint()
        return writer
    finally:
        await pool.close()


async def _verify(url: str, *args: str) -> Result:
    return await asyncio.to_thread(
        CliRunner().invoke, audit_cli, ["verify", "--database-url", url, *args]
    )


async def _checkpoint_file(url: str, directory: Path) -> CheckpointFile:
    conn = await asyncpg.connect(url)
    try:
        return CheckpointFile.for_database(directory, await current_database(conn))
    finally:
        await conn.close()


async def test_rotating_the_signing_key(audit_db: str, tmp_path: Path) -> None:
    await _append(audit_db, 10)
    checkpoints = tmp_path / "checkpoints"
    old, old_pub = _key(tmp_path, "old")
    new, new_pub = _key(tmp_path, "new")
    await _sign(audit_db, old, checkpoints)
    # The service restarted with the new key: the old checkpoints are not its own, so it
    # verifies from seq 1 and signs the same head again, in the same file.
    writer = await _sign(audit_db, new, checkpoints)
    assert writer.broken is None
    lines = [json.loads(x) for x in (await _checkpoint_file(audit_db, checkpoints)).lines()]
    assert [c["key_id"] for c in lines] == [key_id(old.public_key()), key_id(new.public_key())]
    assert lines[0]["seq"] == lines[1]["seq"] == 10

    common = ("--checkpoint-dir", str(checkpoints), "--require-checkpoints")
    both = await _verify(audit_db, *common, "--public-key", str(old_pub), "--public-key",
                         str(new_pub))  # fmt: skip
    assert both.exit_code == 0, both.output
    assert "2 signed checkpoint(s) hold" in both.stdout
    # One PEM file holding both keys works as well.
    bundle = tmp_path / "keys.pub"
    bundle.write_bytes(old_pub.read_bytes() + new_pub.read_bytes())
    bundled = await _verify(audit_db, *common, "--public-key", str(bundle))
    assert bundled.exit_code == 0, bundled.output
    # Without the old key the old checkpoint counts as forged.
    new_only = await _verify(audit_db, *common, "--public-key", str(new_pub))
    assert new_only.exit_code == 1
    assert new_only.stdout.startswith("CHECKPOINT INVALID") and "unknown key" in new_only.stdout


async def test_restoring_to_an_earlier_point_and_re_anchoring(
    audit_db: str, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "checkpoints"
    key, pub = _key(tmp_path, "key")
    await _append(audit_db, 5)
    await _sign(audit_db, key, checkpoints)  # seq 5
    await _append(audit_db, 5)
    await _sign(audit_db, key, checkpoints)  # seq 10
    sink = await _checkpoint_file(audit_db, checkpoints)
    signed = [json.loads(x) for x in sink.lines()]
    assert [c["seq"] for c in signed] == [5, 10]

    # The database comes back from a backup taken at seq 7: the tail is gone.
    conn = await asyncpg.connect(audit_db)
    try:
        await conn.execute("ALTER TABLE audit.log DISABLE TRIGGER USER")
        await conn.execute("DELETE FROM audit.log WHERE seq > 7")
        await conn.execute("ALTER TABLE audit.log ENABLE TRIGGER USER")
        restored = await head(conn)
    finally:
        await conn.close()
    assert restored is not None and restored.seq == 7

    keys = ("--public-key", str(pub), "--checkpoint-dir", str(checkpoints))
    told = await _verify(audit_db, *keys, "--require-checkpoints")
    assert told.exit_code == 1 and told.stdout.startswith("TAMPERED at seq 10"), told.output
    refused = await _sign(audit_db, key, checkpoints)
    assert refused.broken is not None and len(sink.lines()) == 2  # nothing signed

    # Step 2: the last checkpoint at or below the restored head anchors the prefix.
    anchor = f"{signed[0]['seq']}:{signed[0]['entry_hash']}"
    anchored = await _verify(audit_db, "--no-checkpoints", "--anchor", anchor)
    assert anchored.exit_code == 0, anchored.output
    assert anchored.stdout.startswith("OK: 7 entries verified")

    # Step 3: the file moved aside (kept as evidence), the writer signs the restored head.
    sink.path.rename(sink.path.with_name("hrcase.checkpoints.before-restore.jsonl"))
    resigned = await _sign(audit_db, key, checkpoints)
    assert resigned.broken is None
    assert [json.loads(x)["seq"] for x in sink.lines()] == [7]
    again = await _verify(audit_db, *keys, "--require-checkpoints")
    assert again.exit_code == 0, again.output
