"""Routing's retention timers, legal holds and case data subjects (migration 0015); only
this module knows their SQL.

A hold placed and a retention carried out are serialised by one advisory lock
(`HOLDS_LOCK`): the timer takes it shared while it checks the holds and destroys the
keys, a hold's handler takes it exclusively before recording the hold, so a hold routing
has recorded is always seen by the next check, and an erasure under way finishes first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from services.routing.domain.retention import Hold

# Any constant key of pg_advisory_xact_lock: "hrcase legal holds".
HOLDS_LOCK = 0x6C_65_67_61_6C_68


@dataclass(frozen=True)
class DueRetention:
    case_id: UUID
    category: str
    rule: str
    closed_at: datetime
    due_at: datetime


async def record_case_subjects(
    conn: asyncpg.Connection, case_id: UUID, subject_ids: Iterable[str]
) -> None:
    await conn.executemany(
        "INSERT INTO routing.case_subjects (case_id, subject_id) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING",
        [(case_id, s) for s in dict.fromkeys(subject_ids)],
    )


async def case_subjects(conn: asyncpg.Connection, case_id: UUID) -> list[str]:
    rows = await conn.fetch(
        "SELECT subject_id FROM routing.case_subjects WHERE case_id = $1 ORDER BY subject_id",
        case_id,
    )
    return [str(r["subject_id"]) for r in rows]


async def arm(
    conn: asyncpg.Connection,
    case_id: UUID,
    *,
    category: str,
    rule: str,
    closed_at: datetime,
    due_at: datetime,
) -> None:
    """Arm (or re-arm, after a reopening) the case's timer; a case already erased stays
    erased (nothing is left to erase)."""
    await conn.execute(
        """INSERT INTO routing.retention_timers (case_id, category, rule, closed_at, due_at,
               fire_at)
           VALUES ($1, $2, $3, $4, $5, $5)
           ON CONFLICT (case_id) DO UPDATE SET category = $2, rule = $3, closed_at = $4,
               due_at = $5, fire_at = $5, blocked_at = NULL, blocked_by = '{}'
           WHERE routing.retention_timers.erased_at IS NULL""",
        case_id,
        category,
        rule,
        closed_at,
        due_at,
    )


async def cancel(conn: asyncpg.Connection, case_id: UUID) -> bool:
    """The case reopened: its timer goes (True when there was one not yet carried out)."""
    done = await conn.execute(
        "DELETE FROM routing.retention_timers WHERE case_id = $1 AND erased_at IS NULL",
        case_id,
    )
    return bool(done != "DELETE 0")


async def claim_due(conn: asyncpg.Connection, limit: int) -> list[DueRetention]:
    """Due timers of ended (resolved or closed) cases, locked with their case (rows
    another replica or a handler holds are skipped: next tick); takes the holds lock
    shared first."""
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", HOLDS_LOCK)
    rows = await conn.fetch(
        """SELECT t.case_id, t.category, t.rule, t.closed_at, t.due_at
           FROM routing.retention_timers t
           JOIN routing.cases c ON c.case_id = t.case_id
           WHERE t.fire_at <= now() AND t.erased_at IS NULL
             AND c.status IN ('resolved', 'closed')
           ORDER BY t.fire_at
           LIMIT $1
           FOR UPDATE OF t, c SKIP LOCKED""",
        limit,
    )
    return [DueRetention(**dict(r)) for r in rows]


async def holds_covering(
    conn: asyncpg.Connection, case_id: UUID, subject_ids: Iterable[str]
) -> list[Hold]:
    """Active holds that may cover the case (by the case, a matter, or a subject)."""
    rows = await conn.fetch(
        """SELECT hold_id, case_id, subject_id, case_ids FROM routing.legal_holds
           WHERE released_at IS NULL
             AND (case_id = $1 OR $1 = ANY(case_ids) OR subject_id = ANY($2::text[]))
           ORDER BY placed_at, hold_id""",
        case_id,
        list(subject_ids),
    )
    return [
        Hold(r["hold_id"], r["case_id"], r["subject_id"], tuple(r["case_ids"] or ())) for r in rows
    ]


async def block(conn: asyncpg.Connection, case_id: UUID, hold_ids: list[UUID]) -> None:
    """A hold covers the case: the timer waits (not due) until a hold is released."""
    await conn.execute(
        """UPDATE routing.retention_timers
           SET fire_at = NULL, blocked_at = coalesce(blocked_at, now()), blocked_by = $2
           WHERE case_id = $1""",
        case_id,
        hold_ids,
    )


async def mark_erased(
    conn: asyncpg.Connection, case_id: UUID, *, erased_at: datetime, event_id: UUID
) -> None:
    await conn.execute(
        """UPDATE routing.retention_timers
           SET fire_at = NULL, erased_at = $2, erased_event_id = $3 WHERE case_id = $1""",
        case_id,
        erased_at,
        event_id,
    )


async def lock_holds(conn: asyncpg.Connection) -> None:
    """Exclusive holds lock (a hold's handler): waits for a retention being carried out."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", HOLDS_LOCK)


async def record_hold(
    conn: asyncpg.Connection,
    hold_id: UUID,
    *,
    case_id: UUID | None,
    subject_id: str | None,
    case_ids: list[UUID],
    placed_at: datetime,
) -> None:
    """Record a placed hold (a release heard first keeps its released_at)."""
    await conn.execute(
        """INSERT INTO routing.legal_holds (hold_id, case_id, subject_id, case_ids, placed_at)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (hold_id) DO UPDATE SET case_id = $2, subject_id = $3, case_ids = $4,
               placed_at = $5""",
        hold_id,
        case_id,
        subject_id,
        case_ids,
        placed_at,
    )


async def release_hold(conn: asyncpg.Connection, hold_id: UUID, released_at: datetime) -> None:
    """Record a release (before its placement was heard: a row that covers nothing)."""
    await conn.execute(
        """INSERT INTO routing.legal_holds (hold_id, placed_at, released_at)
           VALUES ($1, $2, $2)
           ON CONFLICT (hold_id) DO UPDATE SET released_at = $2
           WHERE routing.legal_holds.released_at IS NULL""",
        hold_id,
        released_at,
    )


async def recheck_blocked(conn: asyncpg.Connection, hold_id: UUID) -> int:
    """The timers the released hold blocked are due again now (each is checked against
    the holds still active); returns how many."""
    done = await conn.execute(
        """UPDATE routing.retention_timers SET fire_at = now()
           WHERE erased_at IS NULL AND fire_at IS NULL AND $1 = ANY(blocked_by)""",
        hold_id,
    )
    return int(done.split()[-1])
