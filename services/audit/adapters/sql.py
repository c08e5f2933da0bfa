"""SQL on audit.log: the chained batch append and the readers.

Connections must not decode json columns (ServiceSpec(json_codecs=False)); the readers
also cast actor/payload to text so the stored canonical text comes back byte for byte
whatever codecs a connection has.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.audit.domain.chain import (
    GENESIS_HASH,
    UNREADABLE_TIME,
    ChainEntry,
    PendingEntry,
    extend,
    pending_from_envelope,
)
from shared.envelope import Envelope

# One writer at a time per database, across replicas: two writers reading the same head
# would fork the chain. (Arbitrary constant: "hrcaseAL" as a signed 64-bit key.)
AUDIT_LOCK_KEY = 0x6872636173654154

LOG_COLUMNS = (
    "seq",
    "event_id",
    "event_type",
    "schema_version",
    "occurred_at",
    "recorded_at",
    "producer",
    "correlation_id",
    "causation_id",
    "case_id",
    "actor",
    "payload",
    "prev_hash",
    "entry_hash",
    "entry_version",
    "producer_user",
)

# A timestamp outside the years 1..9999 cannot be decoded (asyncpg raises, which would end
# a whole read), so it comes back NULL with its text beside it; +-infinity decode (as
# asyncpg's images of the first and last instant it can write) and are kept.
_READABLE = "'0001-01-01 00:00:00+00' AND '9999-12-31 23:59:59.999999+00'"


def _timestamp(column: str) -> str:
    return (
        f"CASE WHEN NOT isfinite({column}) OR {column} BETWEEN {_READABLE} THEN {column} END"
        f" AS {column}, CASE WHEN isfinite({column}) AND {column} NOT BETWEEN {_READABLE}"
        f" THEN {column}::text END AS {column}_text"
    )


_SELECT = (
    "SELECT seq, event_id, event_type, schema_version, "
    + _timestamp("occurred_at")
    + ", "
    + _timestamp("recorded_at")
    + ", producer, correlation_id, causation_id, case_id, actor::text AS actor,"
    " payload::text AS payload, prev_hash, entry_hash, entry_version, producer_user"
    " FROM audit.log"
)


@dataclass(frozen=True)
class AppendResult:
    appended: list[ChainEntry]
    # Event ids not written: already in the log, or repeated within the batch.
    duplicates: list[UUID] = field(default_factory=list)
    # Positions (in the input) of events not written because their event_id is already in
    # the log, or earlier in the batch, with different content: a conflict, not a duplicate.
    conflicts: list[int] = field(default_factory=list)


_CONTENT = (
    "event_type",
    "schema_version",
    "occurred_at",
    "producer",
    "correlation_id",
    "causation_id",
    "case_id",
    "actor",
    "payload",
)


def _same_content(a: PendingEntry, b: PendingEntry | asyncpg.Record) -> bool:
    """Same event (a true redelivery): every hashed field but seq/recorded_at is equal."""
    get = b.__getitem__ if isinstance(b, asyncpg.Record) else b.__getattribute__
    return all(getattr(a, name) == get(name) for name in _CONTENT)


def _record(e: ChainEntry) -> tuple[Any, ...]:
    return (
        e.seq,
        e.event_id,
        e.event_type,
        e.schema_version,
        e.occurred_at,
        e.recorded_at,
        e.producer,
        e.correlation_id,
        e.causation_id,
        e.case_id,
        e.actor,
        e.payload,
        e.prev_hash,
        e.entry_hash,
        e.entry_version,
        e.producer_user,
    )


def _stored_time(row: asyncpg.Record, column: str, problems: list[str]) -> datetime:
    value: datetime | None = row[column]
    if value is None:
        problems.append(
            f"{column} {row[column + '_text']} cannot be written as a canonical timestamp"
            " (years 0001-9999 only)"
        )
        return UNREADABLE_TIME
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # +-infinity


def _entry(row: asyncpg.Record) -> ChainEntry:
    problems: list[str] = []
    occurred_at = _stored_time(row, "occurred_at", problems)
    recorded_at = _stored_time(row, "recorded_at", problems)
    return ChainEntry(
        seq=row["seq"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        schema_version=row["schema_version"],
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        producer=row["producer"],
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        case_id=row["case_id"],
        actor=row["actor"],
        payload=row["payload"],
        prev_hash=row["prev_hash"],
        entry_hash=row["entry_hash"],
        entry_version=row["entry_version"],
        producer_user=row["producer_user"],
        problems=tuple(problems),
    )


async def append_batch(
    conn: asyncpg.Connection,
    events: Sequence[Envelope | PendingEntry],
    recorded_at: datetime,
) -> AppendResult:
    """Append events not yet in the log, chained after the head, in one transaction.

    Idempotent by event_id: a redelivered event (or one repeated in the batch) is skipped.
    Raises InvalidEntry for an Envelope that cannot be stored (callers that must isolate
    bad events convert them with pending_from_envelope first).
    """
    pending: list[PendingEntry] = []
    duplicates: list[UUID] = []
    conflicts: list[int] = []
    position: dict[UUID, int] = {}  # event_id -> input position of its first occurrence
    seen: dict[UUID, PendingEntry] = {}
    repeats: list[tuple[int, PendingEntry]] = []  # later occurrences within the batch
    for index, event in enumerate(events):
        item = event if isinstance(event, PendingEntry) else pending_from_envelope(event)
        if item.event_id in seen:
            repeats.append((index, item))
            continue
        seen[item.event_id] = item
        position[item.event_id] = index
        pending.append(item)

    def classify_repeats(present: dict[UUID, asyncpg.Record]) -> None:
        # A repeat is judged against the recorded entry if there is one, else against
        # the batch's first occurrence (the one that will be written).
        for index, item in repeats:
            stored = present.get(item.event_id)
            if _same_content(item, stored if stored is not None else seen[item.event_id]):
                duplicates.append(item.event_id)
            else:
                conflicts.append(index)

    if not pending:
        return AppendResult([])
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", AUDIT_LOCK_KEY)
        # Read after the lock: every earlier writer has committed, so the head is current.
        present = {
            row["event_id"]: row
            for row in await conn.fetch(
                "SELECT event_id, event_type, schema_version, occurred_at, producer,"
                " correlation_id, causation_id, case_id, actor::text AS actor,"
                " payload::text AS payload FROM audit.log WHERE event_id = ANY($1::uuid[])",
                [p.event_id for p in pending],
            )
        }
        classify_repeats(present)
        if present:
            for p in pending:
                stored = present.get(p.event_id)
                if stored is None:
                    continue
                if _same_content(p, stored):
                    duplicates.append(p.event_id)
                else:
                    conflicts.append(position[p.event_id])
            pending = [p for p in pending if p.event_id not in present]
        if not pending:
            return AppendResult([], duplicates, conflicts)
        head = await conn.fetchrow(
            "SELECT seq, entry_hash FROM audit.log ORDER BY seq DESC LIMIT 1"
        )
        head_seq, head_hash = (head["seq"], head["entry_hash"]) if head else (0, GENESIS_HASH)
        entries = extend(pending, head_seq=head_seq, head_hash=head_hash, recorded_at=recorded_at)
        await conn.copy_records_to_table(
            "log", schema_name="audit", columns=LOG_COLUMNS, records=map(_record, entries)
        )
    return AppendResult(entries, duplicates, conflicts)


async def case_entries(conn: asyncpg.Connection, case_id: UUID) -> list[ChainEntry]:
    rows = await conn.fetch(_SELECT + " WHERE case_id = $1 ORDER BY seq", case_id)
    return [_entry(row) for row in rows]


async def entry_at(conn: asyncpg.Connection, seq: int) -> ChainEntry | None:
    row = await conn.fetchrow(_SELECT + " WHERE seq = $1", seq)
    return _entry(row) if row else None


async def head(conn: asyncpg.Connection) -> ChainEntry | None:
    row = await conn.fetchrow(_SELECT + " ORDER BY seq DESC LIMIT 1")
    return _entry(row) if row else None


async def stream_entries(
    conn: asyncpg.Connection,
    *,
    from_seq: int | None = None,
    to_seq: int | None = None,
    prefetch: int = 5000,
) -> AsyncIterator[ChainEntry]:
    """Entries in ascending seq through a server-side cursor (call inside a transaction).

    Without bounds there is no WHERE at all, so a row outside 1..head (seq <= 0 slipped in
    past the CHECK) is still seen by the verifier.
    """
    clauses: list[str] = []
    args: list[int] = []
    if from_seq is not None:
        args.append(from_seq)
        clauses.append(f"seq >= ${len(args)}")
    if to_seq is not None:
        args.append(to_seq)
        clauses.append(f"seq <= ${len(args)}")
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    async for row in conn.cursor(_SELECT + where + " ORDER BY seq", *args, prefetch=prefetch):
        yield _entry(row)


# Audit-only records of somebody reading a case (ours, and those other services publish).
ACCESS_EVENT_TYPES = ("audit.case_viewed", "audit.export_created")


async def access_entries(
    conn: asyncpg.Connection,
    *,
    case_id: UUID | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> list[ChainEntry]:
    """Reads of case records, newest first (the partial index log_access_idx serves it)."""
    args: list[Any] = [list(ACCESS_EVENT_TYPES)]
    clauses = ["event_type = ANY($1::text[])"]
    if case_id is not None:
        args.append(case_id)
        clauses.append(f"case_id = ${len(args)}")
    if subject is not None:
        args.append(subject)
        clauses.append(f"actor->>'id' = ${len(args)}")
    if since is not None:
        args.append(since)
        clauses.append(f"occurred_at >= ${len(args)}")
    if until is not None:
        args.append(until)
        clauses.append(f"occurred_at < ${len(args)}")
    args.append(limit)
    rows = await conn.fetch(
        _SELECT + " WHERE " + " AND ".join(clauses) + f" ORDER BY seq DESC LIMIT ${len(args)}",
        *args,
    )
    return [_entry(row) for row in rows]


# --- the auditors' console ---------------------------------------------------------------


async def case_ids_by_reference(conn: asyncpg.Connection, reference: str) -> list[UUID]:
    """Cases whose `case.submitted` carries `reference` (log_reference_idx), oldest first."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (case_id) case_id, seq FROM audit.log"
        " WHERE event_type = 'case.submitted' AND payload->>'reference' = $1"
        " AND case_id IS NOT NULL ORDER BY case_id, seq",
        reference,
    )
    return [row["case_id"] for row in sorted(rows, key=lambda r: r["seq"])]


async def case_known(conn: asyncpg.Connection, case_id: UUID) -> bool:
    """The log holds an event of the case other than a read of it."""
    found = await conn.fetchval(
        "SELECT 1 FROM audit.log WHERE case_id = $1 AND NOT (event_type = ANY($2::text[])) LIMIT 1",
        case_id,
        list(ACCESS_EVENT_TYPES),
    )
    return found is not None


async def session_ended(conn: asyncpg.Connection | asyncpg.Pool, session_id: str) -> bool:
    """Intake announced the end of portal session `session_id` (log_session_ended_idx).

    Only intake's announcement counts: the producer is the broker-authenticated one."""
    found = await conn.fetchval(
        "SELECT 1 FROM audit.log WHERE event_type = 'portal.session_ended'"
        " AND payload->>'session_id' = $1 AND producer = 'intake' LIMIT 1",
        session_id,
    )
    return found is not None


async def recent_cases(conn: asyncpg.Connection, limit: int = 20) -> list[tuple[UUID, str]]:
    """The most recently submitted cases: (case_id, reference), newest first."""
    rows = await conn.fetch(
        "SELECT case_id, payload->>'reference' AS reference FROM audit.log"
        " WHERE event_type = 'case.submitted' AND case_id IS NOT NULL"
        " ORDER BY seq DESC LIMIT $1",
        limit,
    )
    return [(row["case_id"], row["reference"] or "") for row in rows]
