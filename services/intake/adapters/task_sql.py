"""Intake's task table (intake.case_tasks); only this module knows its SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


async def insert_task(
    conn: asyncpg.Connection,
    *,
    task_id: UUID,
    case_id: UUID,
    title: str,
    description: str | None,
    assignee_id: str,
    requested_due_in_hours: float | None,
    requested_due_at: datetime | None,
    created_by: str,
    request_event_id: UUID,
    created_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO intake.case_tasks (task_id, case_id, title, description, assignee_id,
               status, requested_due_in_hours, requested_due_at, created_by, request_event_id,
               created_at)
           VALUES ($1, $2, $3, $4, $5, 'requested', $6, $7, $8, $9, $10)""",
        task_id,
        case_id,
        title,
        description,
        assignee_id,
        requested_due_in_hours,
        requested_due_at,
        created_by,
        request_event_id,
        created_at,
    )


async def lock_task(
    conn: asyncpg.Connection, case_id: UUID, task_id: UUID
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM intake.case_tasks WHERE task_id = $1 AND case_id = $2 FOR UPDATE",
        task_id,
        case_id,
    )
    return dict(row) if row else None


async def list_tasks(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID
) -> list[dict[str, Any]]:
    """A case's tasks, open ones first by due time, then the ended ones, newest first."""
    rows = await conn.fetch(
        """SELECT task_id, title, description, assignee_id, assignee_name, status, due_at,
                  requested_due_in_hours, requested_due_at, created_by, refused_reason,
                  escalated_to_name, created_at, updated_at
           FROM intake.case_tasks WHERE case_id = $1
           ORDER BY status IN ('done', 'cancelled', 'refused'), due_at NULLS FIRST,
                    created_at DESC""",
        case_id,
    )
    return [dict(row) for row in rows]


_UPDATABLE = frozenset(
    {"status", "assignee_id", "assignee_name", "due_at", "refused_reason", "escalated_to_name"}
)


async def update_task(conn: asyncpg.Connection, task_id: UUID, **fields: Any) -> bool:
    """Set projected columns; False when intake has no such task (not one it recorded)."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    names = list(fields)
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    status = await conn.execute(
        f"UPDATE intake.case_tasks SET {assignments}, updated_at = now() WHERE task_id = $1",
        task_id,
        *fields.values(),
    )
    return bool(status != "UPDATE 0")


async def refuse_request(conn: asyncpg.Connection, request_event_id: UUID, reason: str) -> bool:
    """Routing refused a task creation: the task shows as refused, with the reason."""
    status = await conn.execute(
        "UPDATE intake.case_tasks SET status = 'refused', refused_reason = $2, updated_at = now()"
        " WHERE request_event_id = $1 AND status = 'requested'",
        request_event_id,
        reason,
    )
    return bool(status != "UPDATE 0")
