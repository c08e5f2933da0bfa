"""Walk audit.log through the chain verifier and check the signed checkpoints against it.

Shared by `hrcase audit verify` (services/audit/entrypoints/cli.py) and the case-file export
(services/audit/export.py); it lives here, below both, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta

import asyncpg

from services.audit.adapters.sql import entry_at, head, stream_entries
from services.audit.domain.chain import GENESIS_HASH, ChainVerifier, VerifyResult
from services.audit.domain.checkpoint import CheckedCheckpoints
from services.audit.domain.verification import AuditReport
from shared.settings import Settings

Progress = Callable[[int], None]
PROGRESS_EVERY = 2000


async def verify_connection(
    conn: asyncpg.Connection,
    *,
    from_seq: int | None = None,
    to_seq: int | None = None,
    anchors: Mapping[int, str] | None = None,
    progress: Progress | None = None,
) -> VerifyResult:
    """Verify through an open connection; inside its transaction if it has one.

    `progress(n)` is called with the number of entries checked since its last call.
    """
    start_seq, prev_hash = 1, GENESIS_HASH
    anchors = {
        seq: h.lower()
        for seq, h in (anchors or {}).items()
        if (from_seq is None or seq >= from_seq) and (to_seq is None or seq <= to_seq)
    }

    async def run() -> VerifyResult:
        nonlocal start_seq, prev_hash
        if from_seq is not None and from_seq > 1:
            # A range starts from the stored hash of the entry before it (taken on trust;
            # verify from 1 to check that too).
            before = await entry_at(conn, from_seq - 1)
            if before is None:
                return VerifyResult(
                    ok=False,
                    entries=0,
                    head_seq=from_seq - 1,
                    head_hash=GENESIS_HASH,
                    bad_seq=from_seq - 1,
                    reason="entry missing (the range's predecessor)",
                )
            start_seq, prev_hash = from_seq, before.entry_hash
        settings = Settings()
        window = (
            settings.event_time_not_before,
            timedelta(seconds=settings.event_time_max_future_seconds),
        )
        verifier = ChainVerifier(
            start_seq=start_seq, prev_hash=prev_hash, anchors=anchors, window=window
        )
        pending = 0
        async for entry in stream_entries(conn, from_seq=from_seq, to_seq=to_seq):
            if not verifier.feed(entry):
                break
            if progress is not None:
                pending += 1
                if pending == PROGRESS_EVERY:
                    progress(pending)
                    pending = 0
        if progress is not None and pending:
            progress(pending)
        return verifier.result()

    if conn.is_in_transaction():
        return await run()
    # One snapshot for the whole walk, so concurrent appends do not race the cursor.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await run()


async def audit_connection(
    conn: asyncpg.Connection,
    *,
    checkpoints: CheckedCheckpoints | None = None,
    from_seq: int | None = None,
    to_seq: int | None = None,
    anchors: Mapping[int, str] | None = None,
    progress: Progress | None = None,
) -> AuditReport:
    """The chain (whole or a range) and every signed checkpoint against it.

    Each checkpoint becomes an anchor: inside the range the walk compares hashes; a
    checkpoint beyond the log's end (tail deleted, or the log rebuilt shorter) fails; one
    outside a partial range is compared with the stored entry directly.
    """
    all_anchors = dict(anchors or {})
    problems: list[str] = []
    latest = None
    valid = 0
    if checkpoints is not None:
        signed, conflicts = checkpoints.anchors()
        problems += [
            f"line {p.line}: {p.reason}" if p.line else p.reason for p in checkpoints.problems
        ]
        problems += [p.reason for p in conflicts]
        for seq, digest in signed.items():
            all_anchors.setdefault(seq, digest)
        latest = checkpoints.latest
        valid = len(checkpoints.valid)

    async def run() -> AuditReport:
        result = await verify_connection(
            conn, from_seq=from_seq, to_seq=to_seq, anchors=all_anchors, progress=progress
        )
        failure = None
        if result.ok and latest is not None:
            last = await head(conn)
            at = await entry_at(conn, latest.seq)
            if last is None or last.seq < latest.seq:
                failure = (
                    f"the log ends at seq {last.seq if last else 0}, before the checkpoint"
                    f" signed {latest.signed_at} at seq {latest.seq} (entries deleted)"
                )
            elif at is None or at.entry_hash != latest.entry_hash:
                failure = (
                    f"entry seq {latest.seq} differs from the checkpoint signed"
                    f" {latest.signed_at} (the log was rewritten)"
                )
        return AuditReport(
            chain=result,
            from_seq=from_seq or 1,
            checkpoints_valid=valid,
            latest_checkpoint=latest,
            checkpoint_problems=problems,
            checkpoint_failure=failure,
        )

    if conn.is_in_transaction():
        return await run()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await run()
