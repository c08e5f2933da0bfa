"""Intake's projection of routing's task outcomes into `intake.case_tasks`.

Every handler locks the case row first (as the case projections do), so one case's task
events apply in the order routing published them. An outcome for a task intake never
recorded cannot be shown on any page: it is retried and then dead-lettered with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from services.intake.adapters import sql, task_sql
from shared.consumer import Handler, HandlerContext
from shared.events import (
    TaskCancelled,
    TaskCompleted,
    TaskCreated,
    TaskOverdue,
    TaskReassigned,
    payload_as,
)


async def _apply(ctx: HandlerContext, task_id: UUID, **fields: Any) -> None:
    case_id = ctx.envelope.case_id
    if case_id is None:
        raise ValueError(f"{ctx.envelope.event_type} without case_id")
    if await sql.lock_case_status(ctx.conn, case_id) is None:
        raise LookupError(f"case {case_id} is not known to intake")
    if not await task_sql.update_task(ctx.conn, task_id, **fields):
        raise LookupError(f"task {task_id} is not known to intake")


async def on_task_created(ctx: HandlerContext) -> None:
    created = payload_as(ctx.envelope, TaskCreated)
    await _apply(
        ctx,
        created.task_id,
        status="open",
        assignee_id=created.assignee.id,
        assignee_name=created.assignee.name,
        due_at=created.due_at,
    )


async def on_task_completed(ctx: HandlerContext) -> None:
    await _apply(ctx, payload_as(ctx.envelope, TaskCompleted).task_id, status="done")


async def on_task_cancelled(ctx: HandlerContext) -> None:
    await _apply(ctx, payload_as(ctx.envelope, TaskCancelled).task_id, status="cancelled")


async def on_task_reassigned(ctx: HandlerContext) -> None:
    moved = payload_as(ctx.envelope, TaskReassigned)
    await _apply(
        ctx, moved.task_id, assignee_id=moved.assignee.id, assignee_name=moved.assignee.name
    )


async def on_task_overdue(ctx: HandlerContext) -> None:
    overdue = payload_as(ctx.envelope, TaskOverdue)
    await _apply(
        ctx,
        overdue.task_id,
        status="overdue",
        escalated_to_name=overdue.escalated_to.name if overdue.escalated_to else None,
    )


TASK_HANDLERS: Mapping[str, Handler] = {
    "task.created": on_task_created,
    "task.completed": on_task_completed,
    "task.cancelled": on_task_cancelled,
    "task.reassigned": on_task_reassigned,
    "task.overdue": on_task_overdue,
}
