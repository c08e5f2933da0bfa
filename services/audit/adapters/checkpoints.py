"""Signed checkpoints on disk: the key, the JSON-lines sink, and the periodic writer.

The writer never signs blindly: it verifies every entry appended since the previous
checkpoint (linked to it by prev_hash, content rehashed) before signing the new head, so
each signature vouches for a chain checked link by link back to genesis.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from prometheus_client import Counter, Gauge

from services.audit.adapters.sql import entry_at, head, stream_entries
from services.audit.config import AuditSettings
from services.audit.domain.chain import GENESIS_HASH, ChainVerifier
from services.audit.domain.checkpoint import (
    CheckedCheckpoints,
    Checkpoint,
    check_lines,
    sign_checkpoint,
)
from shared.envelope import utcnow

log = structlog.get_logger(__name__)

CHECKPOINTS_WRITTEN = Counter("hrcase_audit_checkpoints_total", "Signed checkpoints written")
CHECKPOINT_SEQ = Gauge("hrcase_audit_checkpoint_seq", "seq of the latest signed checkpoint")
CHAIN_BROKEN = Gauge(
    "hrcase_audit_chain_broken", "1 when the checkpoint writer found the chain broken"
)
CHAIN_HEAD_SEQ = Gauge(
    "hrcase_audit_chain_head_seq",
    "seq of the last entry in the audit log, read from the database (all writers)",
)
CHECKPOINT_AGE_SECONDS = Gauge(
    "hrcase_audit_checkpoint_age_seconds",
    "Seconds since the latest signed checkpoint was signed (since this writer started when"
    " there is none yet)",
)
UNSIGNED_ENTRIES = Gauge(
    "hrcase_audit_unsigned_entries",
    "Audit entries past the latest signed checkpoint (head seq - checkpoint seq)",
)


class SigningKeyError(RuntimeError):
    """The signing key is missing or unreadable."""


def _write_exclusive(path: Path, data: bytes, mode: int) -> bool:
    """Create `path` with `data` atomically; False if it already exists (another process won)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic and refuses to replace: a concurrent start cannot clash
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def load_or_create_signing_key(path: Path, *, create: bool) -> Ed25519PrivateKey:
    """The Ed25519 key in `path` (PEM); generated (with `<path>.pub`) if allowed and missing."""
    if not path.exists():
        if not create:
            raise SigningKeyError(f"no audit signing key at {path} (AUDIT_SIGNING_KEY_FILE)")
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        if _write_exclusive(path, pem, 0o600):
            log.warning("generated a new audit signing key", path=str(path))
    try:
        loaded = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise SigningKeyError(f"cannot read the audit signing key {path}: {exc}") from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 private key")
    pub = path.with_name(path.name + ".pub")
    if not pub.exists():
        public = loaded.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        _write_exclusive(pub, public, 0o644)
    return loaded


def load_public_keys(paths: Sequence[Path]) -> list[Ed25519PublicKey]:
    """Public keys from PEM files (one file may hold several keys: old ones after rotation)."""
    keys: list[Ed25519PublicKey] = []
    for path in paths:
        text = path.read_bytes()
        for block in re.findall(
            rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", text, re.S
        ):
            key = load_pem_public_key(block)
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError(f"{path}: not an Ed25519 public key")
            keys.append(key)
    return keys


def _safe_name(database: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", database) or "_"


@dataclass(frozen=True)
class CheckpointFile:
    """The append-only JSON-lines file of one database's checkpoints."""

    path: Path

    @classmethod
    def for_database(cls, directory: Path, database: str) -> CheckpointFile:
        return cls(directory / f"{_safe_name(database)}.checkpoints.jsonl")

    def append(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (checkpoint.to_json() + "\n").encode("utf-8")
        # O_APPEND + one write + an exclusive lock: replicas sharing the file never interleave.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def lines(self) -> list[str]:
        try:
            return self.path.read_text("utf-8").splitlines()
        except FileNotFoundError:
            return []

    def check(self, *, database: str, keys: Sequence[Ed25519PublicKey]) -> CheckedCheckpoints:
        return check_lines(self.lines(), database=database, keys=keys)


async def current_database(conn: asyncpg.Connection) -> str:
    name = await conn.fetchval("SELECT current_database()")
    return str(name)


class CheckpointWriter:
    """Signs the chain head every `interval` seconds (when it moved) and once on stop."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        key: Ed25519PrivateKey,
        directory: Path,
        interval: float,
    ) -> None:
        self.pool = pool
        self.key = key
        self.directory = directory
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._file: CheckpointFile | None = None
        self._database = ""
        # The last point of the chain known good: (seq, entry_hash); None until resumed.
        self._verified: tuple[int, str] | None = None
        self._signed_seq = 0
        self._broken: str | None = None
        # Unix time of the latest signature (read back from the file on resume).
        self._signed_at: float | None = None
        self._started_at = time.time()

    @property
    def broken(self) -> str | None:
        return self._broken

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="audit-checkpoints")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # The head at shutdown is worth a signature: the next start resumes from it.
        try:
            await self.checkpoint()
        except Exception as exc:
            log.error("final audit checkpoint failed", error=repr(exc))

    async def _loop(self) -> None:
        while True:
            try:
                await self.checkpoint()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("audit checkpoint failed", error=repr(exc))
            await asyncio.sleep(self.interval)

    async def _resume(self, conn: asyncpg.Connection) -> None:
        self._database = await current_database(conn)
        self._file = CheckpointFile.for_database(self.directory, self._database)
        checked = self._file.check(database=self._database, keys=[self.key.public_key()])
        latest = checked.latest
        self._verified = (0, GENESIS_HASH)
        if latest is None:
            return
        entry = await entry_at(conn, latest.seq)
        if entry is None or entry.entry_hash != latest.entry_hash:
            self._broken = (
                f"the log disagrees with the signed checkpoint at seq {latest.seq}"
                " (rewritten or cut short): run `hrcase audit verify`"
            )
            return
        self._verified = (latest.seq, latest.entry_hash)
        self._signed_seq = latest.seq
        self._signed_at = _unix_time(latest.signed_at)
        CHECKPOINT_SEQ.set(latest.seq)

    async def checkpoint(self) -> Checkpoint | None:
        """Verify what was appended since the last checkpoint, then sign the head."""
        async with self.pool.acquire() as conn:
            if self._verified is None:
                await self._resume(conn)
            if self._broken is not None:
                CHAIN_BROKEN.set(1)
                log.critical("audit chain broken; not signing", reason=self._broken)
                return None
            assert self._verified is not None and self._file is not None
            seq, prev = self._verified
            async with contextlib.AsyncExitStack() as stack:
                if not conn.is_in_transaction():
                    # One snapshot: the head signed is the end of what was verified.
                    await stack.enter_async_context(
                        conn.transaction(isolation="repeatable_read", readonly=True)
                    )
                verifier = ChainVerifier(start_seq=seq + 1, prev_hash=prev)
                async for entry in stream_entries(conn, from_seq=seq + 1):
                    if not verifier.feed(entry):
                        break
                result = verifier.result()
                last = await head(conn)
        if not result.ok:
            self._broken = f"seq {result.bad_seq}: {result.reason}"
            CHAIN_BROKEN.set(1)
            log.critical("audit chain broken; not signing", reason=self._broken)
            return None
        self._verified = (result.head_seq, result.head_hash)
        if last is None or result.head_seq <= self._signed_seq:
            return None
        assert last.seq == result.head_seq
        checkpoint = sign_checkpoint(
            self.key,
            database=self._database,
            seq=last.seq,
            entry_hash=last.entry_hash,
            recorded_at=last.recorded_at,
            signed_at=utcnow(),
        )
        await asyncio.to_thread(self._file.append, checkpoint)
        self._signed_seq = last.seq
        self._signed_at = _unix_time(checkpoint.signed_at)
        CHECKPOINTS_WRITTEN.inc()
        CHECKPOINT_SEQ.set(last.seq)
        log.info("audit checkpoint signed", seq=last.seq, entry_hash=last.entry_hash)
        return checkpoint

    async def refresh_gauges(self) -> None:
        """Metrics probe (shared.metrics.MetricsRefresher): chain head from the database,
        checkpoint age and the entries not yet under a signature."""
        head_seq = await self.pool.fetchval("SELECT coalesce(max(seq), 0) FROM audit.log")
        CHAIN_HEAD_SEQ.set(head_seq)
        UNSIGNED_ENTRIES.set(max(head_seq - self._signed_seq, 0))
        since = self._signed_at if self._signed_at is not None else self._started_at
        CHECKPOINT_AGE_SECONDS.set(max(time.time() - since, 0.0))


def _unix_time(timestamp: str) -> float:
    """A checkpoint's ISO-8601 UTC time ("...Z") as Unix seconds."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def signing_key_for(settings: AuditSettings, *, environment: str) -> Ed25519PrivateKey:
    # Production must be given its key: a generated one would silently replace the real one.
    return load_or_create_signing_key(settings.signing_key_file, create=environment != "production")
