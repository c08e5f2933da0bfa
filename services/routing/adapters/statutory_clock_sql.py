"""Routing's statutory clock tables (routing.statutory_clocks, routing.statutory_clock_timers)
and the one case fact the clocks need (the claim's jurisdiction); only this module knows
their SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.routing.domain.statutory_clocks import PlannedStatutoryTimer, StatutoryTimerKind


@dataclass(frozen=True)
class StatutoryClockRow:
    clock_id: UUID
    case_id: UUID
    pack: str
    clock: str
    clock_key: str
    conference_id: UUID | None
    label: str
    citation: str
    basis: str
    trigger: str
    escalate: bool
    started_at: datetime
    due_at: datetime
    due_soon_at: datetime | None
    status: str
    breached_at: datetime | None
    met_at: datetime | None


@dataclass(frozen=True)
class DueStatutoryTimer:
    id: int
    clock_id: UUID
    case_id: UUID
    kind: StatutoryTimerKind
    fire_at: datetime


_COLUMNS = (
    "clock_id, case_id, pack, clock, clock_key, conference_id, label, citation, basis,"
    " trigger, escalate, started_at, due_at, due_soon_at, status, breached_at, met_at"
)


async def claim_jurisdiction(conn: asyncpg.Connection, case_id: UUID) -> str | None:
    """The jurisdiction the case's stored injury facts name (InjuryDetails.jurisdiction),
    None when they name none (routing.cases.injury, written by case_facts.save_injury)."""
    value: Any = await conn.fetchval(
        "SELECT injury->>'jurisdiction' FROM routing.cases WHERE case_id = $1", case_id
    )
    return value if isinstance(value, str) and value else None


async def insert_clock(
    conn: asyncpg.Connection, row: StatutoryClockRow, *, trigger_event_id: UUID
) -> bool:
    """False when the clock already runs (or ran) for the case: a clock starts once."""
    inserted = await conn.fetchval(
        f"""INSERT INTO routing.statutory_clocks ({_COLUMNS}, trigger_event_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                    $17, $18)
            ON CONFLICT (case_id, pack, clock, clock_key) DO NOTHING RETURNING true""",
        row.clock_id,
        row.case_id,
        row.pack,
        row.clock,
        row.clock_key,
        row.conference_id,
        row.label,
        row.citation,
        row.basis,
        row.trigger,
        row.escalate,
        row.started_at,
        row.due_at,
        row.due_soon_at,
        row.status,
        row.breached_at,
        row.met_at,
        trigger_event_id,
    )
    return bool(inserted)


async def schedule(
    conn: asyncpg.Connection, row: StatutoryClockRow, timers: Sequence[PlannedStatutoryTimer]
) -> None:
    await conn.executemany(
        """INSERT INTO routing.statutory_clock_timers (clock_id, case_id, kind, fire_at)
           VALUES ($1, $2, $3, $4)""",
        [(row.clock_id, row.case_id, t.kind, t.fire_at) for t in timers],
    )


async def lock_running_clocks(conn: asyncpg.Connection, case_id: UUID) -> list[StatutoryClockRow]:
    """The case's clocks not met yet, row-locked, oldest due first."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM routing.statutory_clocks
            WHERE case_id = $1 AND status = 'running'
            ORDER BY due_at, clock_id FOR UPDATE""",
        case_id,
    )
    return [StatutoryClockRow(**dict(r)) for r in rows]


async def lock_clocks_named(
    conn: asyncpg.Connection, case_id: UUID, pack: str, clock: str
) -> list[StatutoryClockRow]:
    """Every instance of one clock on the case (several for a per-conference clock),
    row-locked, running ones first, oldest due first."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM routing.statutory_clocks
            WHERE case_id = $1 AND pack = $2 AND clock = $3
            ORDER BY status <> 'running', due_at, clock_id FOR UPDATE""",
        case_id,
        pack,
        clock,
    )
    return [StatutoryClockRow(**dict(r)) for r in rows]


async def lock_clock(conn: asyncpg.Connection, clock_id: UUID) -> StatutoryClockRow | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM routing.statutory_clocks WHERE clock_id = $1 FOR UPDATE",
        clock_id,
    )
    return StatutoryClockRow(**dict(row)) if row else None


async def mark_met(
    conn: asyncpg.Connection, clock_id: UUID, *, met_at: datetime, met_by: str, on_time: bool
) -> int:
    """Record the clock as met and drop its pending timers; how many timers were dropped."""
    await conn.execute(
        """UPDATE routing.statutory_clocks SET status = 'met', met_at = $2, met_by = $3,
               met_on_time = $4, updated_at = now()
           WHERE clock_id = $1""",
        clock_id,
        met_at,
        met_by,
        on_time,
    )
    status = await conn.execute(
        "DELETE FROM routing.statutory_clock_timers WHERE clock_id = $1 AND fired_at IS NULL",
        clock_id,
    )
    return int(status.split()[-1])


async def record_due_soon(conn: asyncpg.Connection, clock_id: UUID) -> None:
    await conn.execute(
        "UPDATE routing.statutory_clocks SET due_soon_sent_at = now(), updated_at = now()"
        " WHERE clock_id = $1",
        clock_id,
    )


async def record_breach(
    conn: asyncpg.Connection,
    clock_id: UUID,
    *,
    escalated_to: str | None,
    escalation_level: int | None,
) -> None:
    await conn.execute(
        """UPDATE routing.statutory_clocks SET breached_at = now(), escalated_to = $2,
               escalation_level = $3, updated_at = now()
           WHERE clock_id = $1""",
        clock_id,
        escalated_to,
        escalation_level,
    )


async def claim_due_timers(conn: asyncpg.Connection, limit: int) -> list[DueStatutoryTimer]:
    """Due statutory timers locked with their clock and case; rows another replica (or a
    handler applying an event to the case) holds are skipped, never waited on: next tick.
    A closed case's timers wait (a reopened case's clocks speak again)."""
    rows = await conn.fetch(
        """SELECT t.id, t.clock_id, t.case_id, t.kind, t.fire_at
           FROM routing.statutory_clock_timers t
           JOIN routing.statutory_clocks k ON k.clock_id = t.clock_id
           JOIN routing.cases c ON c.case_id = t.case_id
           WHERE t.fired_at IS NULL AND t.fire_at <= now() AND c.status <> 'closed'
           ORDER BY t.fire_at, t.id
           LIMIT $1
           FOR UPDATE OF t, k, c SKIP LOCKED""",
        limit,
    )
    return [DueStatutoryTimer(**dict(row)) for row in rows]


async def mark_fired(conn: asyncpg.Connection, timer_id: int, event_id: UUID | None) -> None:
    await conn.execute(
        """UPDATE routing.statutory_clock_timers SET fired_at = now(), fired_event_id = $2
           WHERE id = $1""",
        timer_id,
        event_id,
    )
