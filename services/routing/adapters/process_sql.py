"""Routing's process tables (routing.case_processes, process_roles, process_conflicts,
process_facts, process_outcomes); only this module knows their SQL."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

from services.routing.domain.processes import FactRecord, OutcomeRecord, StageClock

StageTimerKind = Literal["due_soon", "overdue"]


@dataclass(frozen=True)
class CaseProcessRow:
    case_id: UUID
    process: str
    stage: str
    stage_entered_at: datetime
    target_at: datetime | None
    due_soon_at: datetime | None
    ending: str | None
    ended_at: datetime | None

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


@dataclass(frozen=True)
class DueStageTimer:
    case_id: UUID
    stage: str
    kind: StageTimerKind


@dataclass(frozen=True)
class DueAppealWindow:
    outcome_id: UUID
    case_id: UUID


_PROCESS_COLUMNS = (
    "case_id, process, stage, stage_entered_at, target_at, due_soon_at, ending, ended_at"
)


async def lock_process(conn: asyncpg.Connection, case_id: UUID) -> CaseProcessRow | None:
    """The case's process row, locked for this transaction (None: the case has none)."""
    row = await conn.fetchrow(
        f"SELECT {_PROCESS_COLUMNS} FROM routing.case_processes WHERE case_id = $1 FOR UPDATE",
        case_id,
    )
    return CaseProcessRow(**dict(row)) if row else None


async def start_process(
    conn: asyncpg.Connection,
    case_id: UUID,
    *,
    process: str,
    stage: str,
    at: datetime,
    clock: StageClock,
) -> None:
    """Put the case in `process` at `stage` (replacing any process it was in)."""
    await conn.execute(
        """INSERT INTO routing.case_processes
               (case_id, process, stage, stage_entered_at, target_at, due_soon_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (case_id) DO UPDATE SET
               process = EXCLUDED.process, stage = EXCLUDED.stage,
               stage_entered_at = EXCLUDED.stage_entered_at,
               target_at = EXCLUDED.target_at, due_soon_at = EXCLUDED.due_soon_at,
               due_soon_fired_at = NULL, overdue_fired_at = NULL,
               due_soon_event_id = NULL, overdue_event_id = NULL,
               ending = NULL, ended_at = NULL, updated_at = now()""",
        case_id,
        process,
        stage,
        at,
        clock.target_at,
        clock.due_soon_at,
    )


async def enter_stage(
    conn: asyncpg.Connection,
    case_id: UUID,
    *,
    stage: str,
    at: datetime,
    clock: StageClock,
    ending: str | None = None,
) -> None:
    """Move the case to `stage`: the old stage's clock is cleared; `ending` ends it."""
    await conn.execute(
        """UPDATE routing.case_processes SET stage = $2, stage_entered_at = $3,
               target_at = $4, due_soon_at = $5, due_soon_fired_at = NULL,
               overdue_fired_at = NULL, due_soon_event_id = NULL, overdue_event_id = NULL,
               ending = $6,
               ended_at = CASE WHEN $6::text IS NULL THEN NULL ELSE $3::timestamptz END,
               updated_at = now()
           WHERE case_id = $1""",
        case_id,
        stage,
        at,
        clock.target_at,
        clock.due_soon_at,
        ending,
    )


# --- roles and conflicts -----------------------------------------------------------------


async def current_roles(conn: asyncpg.Connection, case_id: UUID) -> dict[str, str]:
    """role -> the staff id holding it now."""
    rows = await conn.fetch(
        "SELECT role, staff_id FROM routing.process_roles"
        " WHERE case_id = $1 AND released_at IS NULL",
        case_id,
    )
    return {row["role"]: row["staff_id"] for row in rows}


async def role_history(conn: asyncpg.Connection, case_id: UUID) -> dict[str, frozenset[str]]:
    """role -> everyone who ever held it on the case."""
    rows = await conn.fetch(
        "SELECT role, array_agg(DISTINCT staff_id) AS ids FROM routing.process_roles"
        " WHERE case_id = $1 GROUP BY role",
        case_id,
    )
    return {row["role"]: frozenset(row["ids"]) for row in rows}


async def assign_role(
    conn: asyncpg.Connection, case_id: UUID, *, role: str, staff_id: str, at: datetime
) -> str | None:
    """Give `role` to `staff_id`, releasing the previous holder; returns their id."""
    previous = await conn.fetchval(
        """UPDATE routing.process_roles SET released_at = $3
           WHERE case_id = $1 AND role = $2 AND released_at IS NULL RETURNING staff_id""",
        case_id,
        role,
        at,
    )
    await conn.execute(
        "INSERT INTO routing.process_roles (case_id, role, staff_id, assigned_at)"
        " VALUES ($1, $2, $3, $4)",
        case_id,
        role,
        staff_id,
        at,
    )
    return str(previous) if previous is not None else None


async def declare_conflict(
    conn: asyncpg.Connection, case_id: UUID, *, staff_id: str, reason: str, at: datetime
) -> None:
    await conn.execute(
        """INSERT INTO routing.process_conflicts (case_id, staff_id, reason, declared_at)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (case_id, staff_id) DO UPDATE SET reason = EXCLUDED.reason""",
        case_id,
        staff_id,
        reason,
        at,
    )


async def declared_conflicts(conn: asyncpg.Connection, case_id: UUID) -> frozenset[str]:
    rows = await conn.fetch(
        "SELECT staff_id FROM routing.process_conflicts WHERE case_id = $1", case_id
    )
    return frozenset(row["staff_id"] for row in rows)


# --- facts and outcomes ------------------------------------------------------------------


async def record_fact(
    conn: asyncpg.Connection,
    case_id: UUID,
    *,
    kind: str,
    key: str,
    data: Mapping[str, Any],
    at: datetime,
    event_id: UUID,
) -> None:
    """Record a fact; one of the same kind and key recorded earlier is replaced."""
    await conn.execute(
        """INSERT INTO routing.process_facts (case_id, kind, fact_key, data, recorded_at, event_id)
           VALUES ($1, $2, $3, $4::jsonb, $5, $6)
           ON CONFLICT (case_id, kind, fact_key) DO UPDATE SET data = EXCLUDED.data,
               recorded_at = EXCLUDED.recorded_at, event_id = EXCLUDED.event_id
           WHERE routing.process_facts.recorded_at <= EXCLUDED.recorded_at""",
        case_id,
        kind,
        key,
        json.dumps(dict(data)),
        at,
        event_id,
    )


async def facts(conn: asyncpg.Connection, case_id: UUID) -> list[FactRecord]:
    rows = await conn.fetch(
        "SELECT kind, fact_key, data, recorded_at FROM routing.process_facts WHERE case_id = $1",
        case_id,
    )
    return [
        FactRecord(
            kind=row["kind"],
            key=row["fact_key"],
            data=json.loads(row["data"]),
            recorded_at=row["recorded_at"],
        )
        for row in rows
    ]


async def record_outcome(
    conn: asyncpg.Connection, case_id: UUID, *, outcome_id: UUID, decided_by: str, at: datetime
) -> bool:
    """False when the outcome was recorded already (the same event twice)."""
    inserted = await conn.fetchval(
        """INSERT INTO routing.process_outcomes (outcome_id, case_id, decided_by, decided_at)
           VALUES ($1, $2, $3, $4) ON CONFLICT (outcome_id) DO NOTHING RETURNING true""",
        outcome_id,
        case_id,
        decided_by,
        at,
    )
    return bool(inserted)


async def outcomes(conn: asyncpg.Connection, case_id: UUID) -> list[OutcomeRecord]:
    rows = await conn.fetch(
        """SELECT outcome_id, decided_by, decided_at, approved_by, approved_at,
                  appeal_window_ends_at, window_closed_at
           FROM routing.process_outcomes WHERE case_id = $1""",
        case_id,
    )
    return [OutcomeRecord(**{**dict(row), "outcome_id": str(row["outcome_id"])}) for row in rows]


async def approve_outcome(
    conn: asyncpg.Connection,
    outcome_id: UUID,
    *,
    approved_by: str,
    at: datetime,
    appeal_window_ends_at: datetime,
) -> None:
    await conn.execute(
        """UPDATE routing.process_outcomes SET approved_by = $2, approved_at = $3,
               appeal_window_ends_at = $4 WHERE outcome_id = $1""",
        outcome_id,
        approved_by,
        at,
        appeal_window_ends_at,
    )


async def claim_due_appeal_windows(conn: asyncpg.Connection, limit: int) -> list[DueAppealWindow]:
    """Approved outcomes whose appeal window has passed, locked with their case; rows
    another replica (or a handler on the case) holds are skipped: next tick."""
    rows = await conn.fetch(
        """SELECT o.outcome_id, o.case_id FROM routing.process_outcomes o
           JOIN routing.cases c ON c.case_id = o.case_id
           WHERE o.approved_at IS NOT NULL AND o.window_closed_at IS NULL
             AND o.appeal_window_ends_at <= now()
           ORDER BY o.appeal_window_ends_at, o.outcome_id
           LIMIT $1
           FOR UPDATE OF o, c SKIP LOCKED""",
        limit,
    )
    return [DueAppealWindow(**dict(row)) for row in rows]


async def close_appeal_window(
    conn: asyncpg.Connection, outcome_id: UUID, *, appealed: bool
) -> None:
    await conn.execute(
        "UPDATE routing.process_outcomes SET window_closed_at = now(), appealed = $2"
        " WHERE outcome_id = $1",
        outcome_id,
        appealed,
    )


async def mark_appeal_window_event(
    conn: asyncpg.Connection, outcome_id: UUID, event_id: UUID | None
) -> None:
    """The event that announced the window closed (a stale claim is closed without one)."""
    await conn.execute(
        """UPDATE routing.process_outcomes SET window_closed_at = coalesce(window_closed_at, now()),
               window_closed_event_id = $2 WHERE outcome_id = $1""",
        outcome_id,
        event_id,
    )


# --- stage clocks ------------------------------------------------------------------------


async def claim_due_stage_timers(conn: asyncpg.Connection, limit: int) -> list[DueStageTimer]:
    """Stage reminders and targets that have come, locked with their process row and
    case; rows another replica (or a handler on the case) holds are skipped: next tick.
    A closed case's stage clocks wait (reopened, they speak)."""
    rows = await conn.fetch(
        """SELECT p.case_id, p.stage,
                  (p.due_soon_at IS NOT NULL AND p.due_soon_fired_at IS NULL
                   AND p.due_soon_at <= now()) AS due_soon,
                  (p.target_at IS NOT NULL AND p.overdue_fired_at IS NULL
                   AND p.target_at <= now()) AS overdue
           FROM routing.case_processes p
           JOIN routing.cases c ON c.case_id = p.case_id
           WHERE p.ended_at IS NULL AND c.status <> 'closed'
             AND ((p.due_soon_at <= now() AND p.due_soon_fired_at IS NULL)
                  OR (p.target_at <= now() AND p.overdue_fired_at IS NULL))
           ORDER BY least(p.due_soon_at, p.target_at), p.case_id
           LIMIT $1
           FOR UPDATE OF p, c SKIP LOCKED""",
        limit,
    )
    timers: list[DueStageTimer] = []
    for row in rows:
        if row["due_soon"]:
            timers.append(DueStageTimer(row["case_id"], row["stage"], "due_soon"))
        if row["overdue"]:
            timers.append(DueStageTimer(row["case_id"], row["stage"], "overdue"))
    return timers


async def mark_stage_timer_fired(
    conn: asyncpg.Connection, timer: DueStageTimer, event_id: UUID | None
) -> None:
    column = "due_soon" if timer.kind == "due_soon" else "overdue"
    await conn.execute(
        f"""UPDATE routing.case_processes SET {column}_fired_at = now(),
               {column}_event_id = $2 WHERE case_id = $1""",
        timer.case_id,
        event_id,
    )


async def work_contacts(
    conn: asyncpg.Connection, employee_ids: list[str]
) -> list[tuple[str, str, str]]:
    """(employee_id, name, email) from the directory, in the order asked; employees
    without a work email are left out."""
    rows = await conn.fetch(
        "SELECT employee_id, name, email FROM routing.employees"
        " WHERE employee_id = ANY($1::text[]) AND email IS NOT NULL",
        employee_ids,
    )
    found = {row["employee_id"]: (row["employee_id"], row["name"], row["email"]) for row in rows}
    return [found[e] for e in employee_ids if e in found]
