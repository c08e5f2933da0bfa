"""`hrcase audit verify`: every outcome through the real CLI, message and exit status agree
(issue 8, item 19). The README's contract: 0 intact, 1 tampered (naming the first bad seq
or the failing checkpoint), 2 could not check.

The case that disagreed: `--require-checkpoints` with no signed checkpoint printed
"OK: ... verified" and exited 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from alembic import command
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import make_url

from hrcase.cli import main
from services.audit.adapters.checkpoints import (
    CheckpointFile,
    current_database,
    load_or_create_signing_key,
)
from services.audit.adapters.sql import append_batch, head
from services.audit.domain.checkpoint import sign_checkpoint
from services.audit.tests.conftest import _drop_database
from services.audit.tests.support import make_envelope
from shared.envelope import utcnow
from shared.migrations import alembic_config, ensure_database

# The first stdout (or, for errors, stderr) line names the status; this is its exit code.
STATUS_OF = {
    "OK:": 0,
    "TAMPERED": 1,
    "CHECKPOINT INVALID": 1,
    "CHECKPOINT MISSING": 1,
    "ERROR: could not verify": 2,
    "Usage:": 2,
}


@pytest.fixture(scope="module")
def verify_url(database_url: str) -> Iterator[str]:
    url = make_url(database_url)
    own = url.set(database=f"{url.database}_verify").render_as_string(hide_password=False)
    _drop_database(own)
    ensure_database(own)
    command.upgrade(alembic_config("audit", own), "head")
    yield own
    _drop_database(own)


@dataclass
class Setup:
    """A log of 12 entries, a key pair, and places for checkpoint files."""

    url: str
    conn: asyncpg.Connection
    key: Ed25519PrivateKey
    pub: Path
    tmp: Path
    database: str
    # SQL that puts back what a case changed.
    restore: tuple[str, str] | None = None

    async def sign(self, *, seq: int | None = None, key: Ed25519PrivateKey | None = None) -> Path:
        last = await head(self.conn)
        assert last is not None
        sink = CheckpointFile(self.tmp / f"cp-{uuid4().hex[:6]}.jsonl")
        sink.append(
            sign_checkpoint(
                key or self.key,
                database=self.database,
                seq=seq or last.seq,
                entry_hash=last.entry_hash if seq is None else "a" * 64,
                recorded_at=last.recorded_at,
                signed_at=utcnow(),
            )
        )
        return sink.path


@pytest.fixture
async def setup(verify_url: str, tmp_path: Path) -> AsyncIterator[Setup]:
    conn = await asyncpg.connect(verify_url)
    if await head(conn) is None:
        await append_batch(conn, [make_envelope(case_id=uuid4()) for _ in range(12)], utcnow())
    key_file = tmp_path / "keys" / "signing.key"
    key = load_or_create_signing_key(key_file, create=True)
    setup = Setup(
        verify_url,
        conn,
        key,
        key_file.with_name("signing.key.pub"),
        tmp_path,
        await current_database(conn),
    )
    yield setup
    await conn.close()


async def _tampered(s: Setup) -> list[str]:
    original = await s.conn.fetchval("SELECT payload::text FROM audit.log WHERE seq = 3")
    await s.conn.execute("ALTER TABLE audit.log DISABLE TRIGGER USER")
    await s.conn.execute("UPDATE audit.log SET payload = '{}' WHERE seq = 3")
    s.restore = ("UPDATE audit.log SET payload = $1::json WHERE seq = 3", original)
    return ["--no-checkpoints"]


Case = tuple[str, Callable[[Setup], Awaitable[list[str]]], int, str]


async def _none(s: Setup) -> list[str]:
    return ["--checkpoints", str(s.tmp / "absent.jsonl"), "--public-key", str(s.pub)]


async def _required_none(s: Setup) -> list[str]:
    return [*await _none(s), "--require-checkpoints"]


async def _signed(s: Setup) -> list[str]:
    return ["--checkpoints", str(await s.sign()), "--public-key", str(s.pub)]


async def _required_signed(s: Setup) -> list[str]:
    return [*await _signed(s), "--require-checkpoints"]


async def _chain_only(s: Setup) -> list[str]:
    return ["--no-checkpoints"]


async def _contradiction(s: Setup) -> list[str]:
    return ["--no-checkpoints", "--require-checkpoints"]


async def _beyond(s: Setup) -> list[str]:
    path = await s.sign(seq=50)  # as after the newest entries were deleted
    return ["--checkpoints", str(path), "--public-key", str(s.pub)]


async def _foreign_key(s: Setup) -> list[str]:
    path = await s.sign(key=Ed25519PrivateKey.generate())
    return ["--checkpoints", str(path), "--public-key", str(s.pub)]


async def _garbled_line(s: Setup) -> list[str]:
    path = s.tmp / "garbled.jsonl"
    path.write_text('{"v":1,"seq":"x"\n', "utf-8")
    return ["--checkpoints", str(path), "--public-key", str(s.pub)]


async def _no_public_key(s: Setup) -> list[str]:
    path = await s.sign()
    # No --public-key and no default key file beside AUDIT_SIGNING_KEY_FILE.
    return ["--checkpoints", str(path)]


async def _wrong_anchor(s: Setup) -> list[str]:
    return ["--no-checkpoints", "--anchor", f"5:{'b' * 64}"]


async def _unreachable(s: Setup) -> list[str]:
    s.url = "postgresql://postgres@127.0.0.1:1/nowhere"
    return ["--no-checkpoints"]


CASES: list[Case] = [
    ("no checkpoint yet", _none, 0, "OK:"),
    ("no checkpoint, required", _required_none, 1, "CHECKPOINT MISSING"),
    ("signed checkpoint holds", _signed, 0, "OK:"),
    ("signed checkpoint holds, required", _required_signed, 0, "OK:"),
    ("chain only", _chain_only, 0, "OK:"),
    ("contradictory options", _contradiction, 2, "Usage:"),
    ("payload changed", _tampered, 1, "TAMPERED at seq 3:"),
    ("checkpoint beyond the log", _beyond, 1, "TAMPERED at seq 50:"),
    ("checkpoint signed by another key", _foreign_key, 1, "CHECKPOINT INVALID"),
    ("garbled checkpoint line", _garbled_line, 1, "CHECKPOINT INVALID"),
    ("no public key for the checkpoints", _no_public_key, 2, "ERROR: could not verify"),
    ("anchor disagrees", _wrong_anchor, 1, "TAMPERED at seq 5:"),
    ("database unreachable", _unreachable, 2, "ERROR: could not verify"),
]


@pytest.mark.parametrize(("name", "arrange", "code", "first"), CASES, ids=[c[0] for c in CASES])
async def test_every_outcome_exits_with_the_status_its_message_states(
    setup: Setup,
    tmp_path: Path,
    name: str,
    arrange: Callable[[Setup], Awaitable[list[str]]],
    code: int,
    first: str,
) -> None:
    args = await arrange(setup)
    env = {"AUDIT_SIGNING_KEY_FILE": str(tmp_path / "nokey" / "absent.key")}
    try:
        result: Result = await asyncio.to_thread(
            CliRunner(env=env).invoke,
            main,
            ["audit", "verify", "--database-url", setup.url, *args],
        )
    finally:
        if setup.restore:
            await setup.conn.execute(*setup.restore)
            await setup.conn.execute("ALTER TABLE audit.log ENABLE TRIGGER USER")
    lines = (result.stdout or result.stderr).splitlines()
    assert lines, result
    message = lines[0]
    assert message.startswith(first), (name, result.stdout, result.stderr)
    assert result.exit_code == code, (name, result.output)
    stated = next(v for k, v in STATUS_OF.items() if message.startswith(k))
    assert stated == result.exit_code, (name, message, result.exit_code)
    if code == 0 and "--no-checkpoints" not in args:
        checked = "checkpoints:" in result.stdout
        assert checked or "WARNING: no signed checkpoint" in result.stderr
