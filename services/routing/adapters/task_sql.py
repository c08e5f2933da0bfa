"""Routing's task tables (routing.tasks, routing.task_timers); only this module knows their SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.routing.domain.tasks import PlannedTaskTimer, TaskStatus, TaskTimerKind


@dataclass(frozen=True)
class TaskRow:
    task_id: UUID
    case_id: UUID
    title: str
    assignee_id: str
    status: TaskStatus
    team: str
    requested_at: datetime
    due_at: datetime
    due_soon_at: datetime | None
    overdue_at: datetime | None


@dataclass(frozen=True)
class DueTaskTimer:
    id: int
    task_id: UUID
    case_id: UUID
    kind: TaskTimerKind
    fire_at: datetime


_TASK_COLUMNS = (
    "task_id, case_id, title, assignee_id, status, team, requested_at, due_at,"
    " due_soon_at, overdue_at"
)


async def insert_task(conn: asyncpg.Connection, task: TaskRow, *, request_event_id: UUID) -> bool:
    """False when the task exists already (the same request applied twice)."""
    inserted = await conn.fetchval(
        f"""INSERT INTO routing.tasks ({_TASK_COLUMNS}, request_event_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (task_id) DO NOTHING RETURNING true""",
        task.task_id,
        task.case_id,
        task.title,
        task.assignee_id,
        task.status,
        task.team,
        task.requested_at,
        task.due_at,
        task.due_soon_at,
        task.overdue_at,
        request_event_id,
    )
    return bool(inserted)


async def lock_task(conn: asyncpg.Connection, case_id: UUID, task_id: UUID) -> TaskRow | None:
    """The case's task, row-locked for this transaction (None: no such task on the case)."""
    row = await conn.fetchrow(
        f"SELECT {_TASK_COLUMNS} FROM routing.tasks WHERE task_id = $1 AND case_id = $2 FOR UPDATE",
        task_id,
        case_id,
    )
    return TaskRow(**dict(row)) if row else None


async def lock_open_tasks(conn: asyncpg.Connection, case_id: UUID) -> list[TaskRow]:
    """The case's tasks not yet done or cancelled (overdue ones are still open), row-locked,
    oldest first."""
    rows = await conn.fetch(
        f"""SELECT {_TASK_COLUMNS} FROM routing.tasks
            WHERE case_id = $1 AND status NOT IN ('done', 'cancelled')
            ORDER BY requested_at, task_id FOR UPDATE""",
        case_id,
    )
    return [TaskRow(**dict(row)) for row in rows]


_UPDATABLE = frozenset({"assignee_id", "status", "overdue_at", "ended_at"})


async def update_task(conn: asyncpg.Connection, task_id: UUID, **fields: Any) -> None:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    names = list(fields)
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    await conn.execute(
        f"UPDATE routing.tasks SET {assignments}, updated_at = now() WHERE task_id = $1",
        task_id,
        *fields.values(),
    )


async def schedule(
    conn: asyncpg.Connection, task: TaskRow, timers: Sequence[PlannedTaskTimer]
) -> None:
    await conn.executemany(
        "INSERT INTO routing.task_timers (task_id, case_id, kind, fire_at) VALUES ($1, $2, $3, $4)",
        [(task.task_id, task.case_id, t.kind, t.fire_at) for t in timers],
    )


async def cancel_timers(conn: asyncpg.Connection, task_id: UUID) -> int:
    """Drop the task's pending timers (it is done or cancelled); how many were dropped."""
    status = await conn.execute(
        "DELETE FROM routing.task_timers WHERE task_id = $1 AND fired_at IS NULL", task_id
    )
    return int(status.split()[-1])


async def claim_due_timers(conn: asyncpg.Connection, limit: int) -> list[DueTaskTimer]:
    """Due task timers locked with their task and case; rows another replica (or a handler
    applying an event to the case) holds are skipped, never waited on: next tick. A closed
    case's timers wait: if it is reopened, its open tasks' reminders and escalations come."""
    rows = await conn.fetch(
        """SELECT t.id, t.task_id, t.case_id, t.kind, t.fire_at
           FROM routing.task_timers t
           JOIN routing.tasks k ON k.task_id = t.task_id
           JOIN routing.cases c ON c.case_id = t.case_id
           WHERE t.fired_at IS NULL AND t.fire_at <= now() AND c.status <> 'closed'
           ORDER BY t.fire_at, t.id
           LIMIT $1
           FOR UPDATE OF t, k, c SKIP LOCKED""",
        limit,
    )
    return [DueTaskTimer(**dict(row)) for row in rows]


async def mark_fired(conn: asyncpg.Connection, timer_id: int, event_id: UUID | None) -> None:
    await conn.execute(
        "UPDATE routing.task_timers SET fired_at = now(), fired_event_id = $2 WHERE id = $1",
        timer_id,
        event_id,
    )
