"""Intake's legal holds and retention erasures (migration 0026); only this module knows
their SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

HOLD_COLUMNS = (
    "hold_id, kind, case_id, subject_id, matter_name, case_ids, reason, placed_by, placed_at,"
    " released_by, released_at, release_reason"
)


async def known_case_ids(conn: asyncpg.Connection, case_ids: Sequence[UUID]) -> set[UUID]:
    rows = await conn.fetch(
        "SELECT case_id FROM intake.cases WHERE case_id = ANY($1::uuid[])", list(case_ids)
    )
    return {r["case_id"] for r in rows}


async def insert_hold(
    conn: asyncpg.Connection,
    *,
    hold_id: UUID,
    kind: str,
    case_id: UUID | None,
    subject_id: str | None,
    matter_name: str | None,
    case_ids: list[UUID],
    reason: str,
    placed_by: str,
    placed_at: datetime,
    placed_event_id: UUID,
) -> None:
    await conn.execute(
        """INSERT INTO intake.legal_holds (hold_id, kind, case_id, subject_id, matter_name,
               case_ids, reason, placed_by, placed_at, placed_event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        hold_id,
        kind,
        case_id,
        subject_id,
        matter_name,
        case_ids,
        reason,
        placed_by,
        placed_at,
        placed_event_id,
    )


async def lock_hold(conn: asyncpg.Connection, hold_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {HOLD_COLUMNS} FROM intake.legal_holds WHERE hold_id = $1 FOR UPDATE", hold_id
    )
    return dict(row) if row else None


async def release_hold(
    conn: asyncpg.Connection,
    hold_id: UUID,
    *,
    released_by: str,
    released_at: datetime,
    reason: str,
    event_id: UUID,
) -> None:
    await conn.execute(
        """UPDATE intake.legal_holds SET released_by = $2, released_at = $3,
               release_reason = $4, released_event_id = $5
           WHERE hold_id = $1 AND released_at IS NULL""",
        hold_id,
        released_by,
        released_at,
        reason,
        event_id,
    )


async def list_holds(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    """Every hold, active ones first, newest first."""
    rows = await conn.fetch(
        f"SELECT {HOLD_COLUMNS} FROM intake.legal_holds"
        " ORDER BY released_at IS NOT NULL, placed_at DESC, hold_id"
    )
    return [dict(r) for r in rows]


async def hold_counts(
    conn: asyncpg.Connection | asyncpg.Pool, *, starts_at: datetime, ends_before: datetime
) -> tuple[int, int, int]:
    """(active now, placed in [starts_at, ends_before), released in it)."""
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE released_at IS NULL) AS active,
                  count(*) FILTER (WHERE placed_at >= $1 AND placed_at < $2) AS placed,
                  count(*) FILTER (WHERE released_at >= $1 AND released_at < $2) AS released
           FROM intake.legal_holds""",
        starts_at,
        ends_before,
    )
    assert row is not None
    return int(row["active"]), int(row["placed"]), int(row["released"])


async def record_retention_erasure(
    conn: asyncpg.Connection,
    case_id: UUID,
    *,
    rule: str,
    closed_at: datetime,
    erased_at: datetime,
    event_id: UUID,
) -> bool:
    """Remember the erasure; False when it was recorded already (a redelivery)."""
    inserted = await conn.fetchval(
        """INSERT INTO intake.case_retention_erasures (case_id, rule, closed_at, erased_at,
               event_id)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (case_id) DO NOTHING RETURNING true""",
        case_id,
        rule,
        closed_at,
        erased_at,
        event_id,
    )
    return bool(inserted)


async def retention_erasure(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT rule, closed_at, erased_at FROM intake.case_retention_erasures WHERE case_id = $1",
        case_id,
    )
    return dict(row) if row else None


async def active_holds_covering(
    conn: asyncpg.Connection | asyncpg.Pool, *, subject_id: str, case_ids: Sequence[UUID]
) -> list[UUID]:
    """Active holds on the data subject, on one of `case_ids` (the subject's cases), or on
    a matter containing one of them: what blocks an erasure request of that subject."""
    rows = await conn.fetch(
        """SELECT hold_id FROM intake.legal_holds
           WHERE released_at IS NULL
             AND (subject_id = $1 OR case_id = ANY($2::uuid[]) OR case_ids && $2::uuid[])
           ORDER BY placed_at, hold_id""",
        subject_id,
        list(case_ids),
    )
    return [r["hold_id"] for r in rows]
