"""Routing's tables (schema `routing`); only this module knows their SQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.routing.domain.sla import Clock, ClockName, PlannedTimer, TimerKind


@dataclass(frozen=True)
class RoutedCase:
    case_id: UUID
    reference: str
    channel: str
    category: str
    category_source: str
    matched_terms: tuple[str, ...]
    sensitivity: str
    priority: str
    team: str
    owner_id: str | None  # None: waiting for a person to assign (case.assignment_needed)
    status: str
    submitted_at: datetime
    routed_at: datetime
    first_response_due: datetime
    resolution_due: datetime
    policy_hash: str
    priority_reasons: tuple[str, ...] = ()
    priority_raises: tuple[str, ...] = ()
    respondent_ids: tuple[str, ...] = ()
    correlation_id: UUID | None = None


@dataclass(frozen=True)
class CaseRow:
    case_id: UUID
    reference: str
    channel: str
    category: str
    sensitivity: str
    priority: str
    team: str
    owner_id: str | None  # None: waiting for a person to assign (case.assignment_needed)
    status: str
    respondent_ids: tuple[str, ...]
    priority_raises: tuple[str, ...]
    correlation_id: UUID | None
    status_changed_at: datetime | None
    employee_replied_at: datetime | None
    submitted_at: datetime
    # The deadlines last announced (a met first response keeps showing its own).
    first_response_due: datetime | None = None
    resolution_due: datetime | None = None
    # The highest ladder level announced for the case, whichever clock reached it.
    escalated_level: int = 0


@dataclass(frozen=True)
class DueTimer:
    id: int
    case_id: UUID
    clock: ClockName
    kind: TimerKind
    level: int
    fire_at: datetime


@dataclass(frozen=True)
class Employee:
    employee_id: str
    name: str
    email: str | None
    manager_id: str | None
    department: str | None
    active: bool


async def take_round_robin_cursor(conn: asyncpg.Connection, team: str) -> int:
    """Atomically take the team's next position; the row lock serialises replicas."""
    value = await conn.fetchval(
        "INSERT INTO routing.team_cursors (team, next_index) VALUES ($1, 1)"
        " ON CONFLICT (team) DO UPDATE SET next_index = routing.team_cursors.next_index + 1"
        " RETURNING next_index - 1",
        team,
    )
    return int(value)


async def insert_case(conn: asyncpg.Connection, case: RoutedCase) -> bool:
    """Insert a routed case; False when the case was already routed (a second submission)."""
    inserted = await conn.fetchval(
        """INSERT INTO routing.cases (case_id, reference, channel, category, category_source,
               matched_terms, sensitivity, priority, team, owner_id, status, submitted_at,
               routed_at, first_response_due, resolution_due, policy_hash, priority_reasons,
               priority_raises, respondent_ids, correlation_id, status_changed_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$12)
           ON CONFLICT (case_id) DO NOTHING RETURNING true""",
        case.case_id,
        case.reference,
        case.channel,
        case.category,
        case.category_source,
        list(case.matched_terms),
        case.sensitivity,
        case.priority,
        case.team,
        case.owner_id,
        case.status,
        case.submitted_at,
        case.routed_at,
        case.first_response_due,
        case.resolution_due,
        case.policy_hash,
        list(case.priority_reasons),
        list(case.priority_raises),
        list(case.respondent_ids),
        case.correlation_id,
    )
    return bool(inserted)


async def lock_case(conn: asyncpg.Connection, case_id: UUID) -> CaseRow | None:
    """The case, row-locked for this transaction: a case's events apply one at a time."""
    row = await conn.fetchrow(
        """SELECT case_id, reference, channel, category, sensitivity, priority, team, owner_id,
                  status, respondent_ids, priority_raises, correlation_id, status_changed_at,
                  employee_replied_at, submitted_at, first_response_due, resolution_due,
                  escalated_level
           FROM routing.cases WHERE case_id = $1 FOR UPDATE""",
        case_id,
    )
    if row is None:
        return None
    return CaseRow(
        **{
            **dict(row),
            "respondent_ids": tuple(row["respondent_ids"]),
            "priority_raises": tuple(row["priority_raises"]),
        }
    )


_UPDATABLE = frozenset(
    {
        "category",
        "category_source",
        "matched_terms",
        "sensitivity",
        "priority",
        "priority_reasons",
        "priority_raises",
        "team",
        "owner_id",
        "status",
        "status_changed_at",
        "employee_replied_at",
        "first_response_due",
        "resolution_due",
        "policy_hash",
        "escalated_level",
        "respondent_ids",
    }
)


async def update_case(conn: asyncpg.Connection, case_id: UUID, **fields: Any) -> None:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    names = list(fields)
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    await conn.execute(
        f"UPDATE routing.cases SET {assignments}, version = version + 1, updated_at = now()"
        " WHERE case_id = $1",
        case_id,
        *(list(v) if isinstance(v, tuple) else v for v in fields.values()),
    )


async def open_case_counts(conn: asyncpg.Connection, owner_ids: Sequence[str]) -> dict[str, int]:
    rows = await conn.fetch(
        """SELECT owner_id, count(*) AS n FROM routing.cases
           WHERE owner_id = ANY($1::text[])
             AND status IN ('assigned', 'in_progress', 'waiting_on_employee')
           GROUP BY owner_id""",
        list(owner_ids),
    )
    return {row["owner_id"]: int(row["n"]) for row in rows}


async def conflicted_ids(conn: asyncpg.Connection, respondent_ids: Sequence[str]) -> frozenset[str]:
    """The respondents and everyone above them in the directory's management chain."""
    if not respondent_ids:
        return frozenset()
    rows = await conn.fetch(
        """WITH RECURSIVE chain(employee_id, depth) AS (
               SELECT unnest($1::text[]), 0
               UNION
               SELECT e.manager_id, c.depth + 1
               FROM chain c JOIN routing.employees e ON e.employee_id = c.employee_id
               WHERE e.manager_id IS NOT NULL AND c.depth < 50
           )
           SELECT DISTINCT employee_id FROM chain""",
        list(respondent_ids),
    )
    return frozenset(row["employee_id"] for row in rows)


async def inactive_ids(conn: asyncpg.Connection, employee_ids: Sequence[str]) -> frozenset[str]:
    """Those of `employee_ids` the directory marks inactive (left, on long leave)."""
    rows = await conn.fetch(
        "SELECT employee_id FROM routing.employees"
        " WHERE employee_id = ANY($1::text[]) AND NOT active",
        list(employee_ids),
    )
    return frozenset(row["employee_id"] for row in rows)


async def load_clocks(conn: asyncpg.Connection, case_id: UUID) -> dict[ClockName, Clock]:
    rows = await conn.fetch(
        """SELECT clock, target, consumed, running_since, stopped_at, warned, breached,
                  escalated_level
           FROM routing.sla_clocks WHERE case_id = $1""",
        case_id,
    )
    return {
        row["clock"]: Clock(name=row["clock"], **{k: row[k] for k in _CLOCK_FIELDS}) for row in rows
    }


_CLOCK_FIELDS = (
    "target",
    "consumed",
    "running_since",
    "stopped_at",
    "warned",
    "breached",
    "escalated_level",
)


async def save_clock(
    conn: asyncpg.Connection, case_id: UUID, clock: Clock, due_at: datetime | None
) -> None:
    await save_clocks(conn, case_id, [(clock, due_at)])


async def save_clocks(
    conn: asyncpg.Connection, case_id: UUID, clocks: Sequence[tuple[Clock, datetime | None]]
) -> None:
    """Upsert clocks with their current due time (pipelined: one round trip)."""
    await conn.executemany(
        """INSERT INTO routing.sla_clocks (case_id, clock, target, consumed, running_since,
               stopped_at, warned, breached, escalated_level, due_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (case_id, clock) DO UPDATE SET target = EXCLUDED.target,
               consumed = EXCLUDED.consumed, running_since = EXCLUDED.running_since,
               stopped_at = EXCLUDED.stopped_at, warned = EXCLUDED.warned,
               breached = EXCLUDED.breached, escalated_level = EXCLUDED.escalated_level,
               due_at = EXCLUDED.due_at""",
        [
            (
                case_id,
                clock.name,
                clock.target,
                clock.consumed,
                clock.running_since,
                clock.stopped_at,
                clock.warned,
                clock.breached,
                clock.escalated_level,
                due_at,
            )
            for clock, due_at in clocks
        ],
    )


async def replace_timers(
    conn: asyncpg.Connection,
    case_id: UUID,
    clocks: Sequence[ClockName],
    timers: Iterable[PlannedTimer],
) -> None:
    """Drop the clocks' pending timers and schedule the ones they need now (one statement:
    the DELETE in a CTE sees the table as before the INSERT, and no unique index can make
    the two meet)."""
    planned = list(timers)
    await conn.execute(
        "WITH dropped AS (DELETE FROM routing.timers WHERE case_id = $1"
        " AND clock = ANY($2::text[]) AND fired_at IS NULL)"
        " INSERT INTO routing.timers (case_id, clock, kind, level, fire_at)"
        " SELECT $1, t.clock, t.kind, t.level, t.fire_at FROM unnest($3::text[], $4::text[],"
        " $5::integer[], $6::timestamptz[]) AS t(clock, kind, level, fire_at)",
        case_id,
        list(clocks),
        [t.clock for t in planned],
        [t.kind for t in planned],
        [t.level for t in planned],
        [t.fire_at for t in planned],
    )


async def claim_due_timers(conn: asyncpg.Connection, limit: int) -> list[DueTimer]:
    """Due timers, locked with their case; rows another replica holds are skipped, never waited on.

    Skipping a locked case too means a timer never fires while an event for its case is
    being applied (that event may re-plan or cancel it); it is picked up next tick.
    """
    rows = await conn.fetch(
        """SELECT t.id, t.case_id, t.clock, t.kind, t.level, t.fire_at
           FROM routing.timers t JOIN routing.cases c ON c.case_id = t.case_id
           WHERE t.fired_at IS NULL AND t.fire_at <= now()
           ORDER BY t.fire_at, t.id
           LIMIT $1
           FOR UPDATE OF t, c SKIP LOCKED""",
        limit,
    )
    return [DueTimer(**dict(row)) for row in rows]


async def sla_timer_counts(conn: asyncpg.Connection) -> dict[str, tuple[int, int]]:
    """Unfired SLA timers by kind: (due now, still to come). Every kind is present."""
    rows = await conn.fetch(
        """SELECT kind, count(*) FILTER (WHERE fire_at <= now()) AS due,
                  count(*) FILTER (WHERE fire_at > now()) AS scheduled
           FROM routing.timers WHERE fired_at IS NULL GROUP BY kind"""
    )
    counts = {kind: (0, 0) for kind in ("warning", "breach", "escalation")}
    counts.update({row["kind"]: (row["due"], row["scheduled"]) for row in rows})
    return counts


async def mark_timer_fired(conn: asyncpg.Connection, timer_id: int, event_id: UUID | None) -> None:
    await conn.execute(
        "UPDATE routing.timers SET fired_at = now(), fired_event_id = $2 WHERE id = $1",
        timer_id,
        event_id,
    )


async def upsert_employees(conn: asyncpg.Connection, employees: Sequence[Employee]) -> None:
    await conn.executemany(
        """INSERT INTO routing.employees (employee_id, name, email, manager_id, department, active)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (employee_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email,
               manager_id = EXCLUDED.manager_id, department = EXCLUDED.department,
               active = EXCLUDED.active, updated_at = now()""",
        [(e.employee_id, e.name, e.email, e.manager_id, e.department, e.active) for e in employees],
    )


async def deactivate_missing(conn: asyncpg.Connection, present_ids: Sequence[str]) -> int:
    """Mark everyone not in a full export inactive (kept: they may be in old cases' chains)."""
    status = await conn.execute(
        "UPDATE routing.employees SET active = false, updated_at = now()"
        " WHERE active AND NOT (employee_id = ANY($1::text[]))",
        list(present_ids),
    )
    return int(status.split()[-1])


async def record_policy_load(
    conn: asyncpg.Connection, policy_hash: str, version: int, source: str
) -> bool:
    """True the first time this policy content is loaded."""
    inserted = await conn.fetchval(
        "INSERT INTO routing.policy_loads (policy_hash, version, source) VALUES ($1, $2, $3)"
        " ON CONFLICT (policy_hash) DO NOTHING RETURNING true",
        policy_hash,
        version,
        source,
    )
    return bool(inserted)


async def record_assignment(
    conn: asyncpg.Connection,
    case_id: UUID,
    *,
    owner_id: str,
    previous_owner_id: str | None,
    reason: str,
    event_id: UUID,
) -> None:
    await conn.execute(
        "INSERT INTO routing.assignments (case_id, owner_id, previous_owner_id, reason, event_id)"
        " VALUES ($1, $2, $3, $4, $5)",
        case_id,
        owner_id,
        previous_owner_id,
        reason,
        event_id,
    )
