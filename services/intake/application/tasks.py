"""Tasks on a case, for the JSON API and the portal: staff ask, routing decides.

Each request goes through the agent actions' one path (`agent_actions._act`): the caller
needs a staff role (403) and must be able to read the case (404, as for a missing case);
a closed case refuses (409). Intake records the request (a creation also writes the task
row, status `requested`) and its command event in one transaction; routing answers with
the outcome, which the projections (task_projection.py) apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.intake.adapters import task_sql
from services.intake.application import actions, agent_actions
from services.intake.application.actions import Client
from services.intake.domain.case import CLOSED_STATUSES, is_reporter
from services.intake.domain.refusals import Refused
from services.intake.domain.tasks import (
    TASK_ROLES,
    NewTask,
    TaskCancellation,
    TaskReassignment,
    task_conflict,
)
from shared.auth import Principal
from shared.envelope import Envelope
from shared.events import (
    EventPayload,
    TaskCancellationRequested,
    TaskCompletionRequested,
    TaskCreationRequested,
    TaskReassignmentRequested,
)
from shared.service import Runtime

Case = dict[str, Any]


async def add_task(
    runtime: Runtime, principal: Principal, case_id: UUID, task: NewTask
) -> tuple[agent_actions.ActionAccepted, UUID]:
    """Record the task (status requested) and publish `task.creation_requested`; returns
    the accepted request and the new task's id."""
    task_id = uuid4()

    async def record(conn: asyncpg.Connection, case: Case, event: Envelope) -> None:
        await task_sql.insert_task(
            conn,
            task_id=task_id,
            case_id=case_id,
            title=task.title,
            description=task.description,
            assignee_id=task.assignee_id,
            requested_due_in_hours=task.due_in_working_hours,
            requested_due_at=task.due_at,
            created_by=principal.subject,
            request_event_id=event.event_id,
            created_at=event.occurred_at,
        )

    accepted = await agent_actions._act(
        runtime,
        principal,
        case_id,
        roles=TASK_ROLES,
        action="adding a task",
        build=lambda case: TaskCreationRequested(
            reference=case["reference"],
            task_id=task_id,
            title=task.title,
            description=task.description,
            assignee_id=task.assignee_id,
            due_in_working_hours=task.due_in_working_hours,
            due_at=task.due_at,
        ),
        record=record,
        kind="task_requested",
        summary=lambda _case: {"title": task.title, "assignee_id": task.assignee_id},
    )
    return accepted, task_id


async def _on_task(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    task_id: UUID,
    *,
    action: str,
    build: Callable[[str], EventPayload],
) -> agent_actions.ActionAccepted:
    """A request about an existing task of the case (404 for a task not on it)."""

    async def check(conn: asyncpg.Connection, case: Case, event: Envelope) -> None:
        task = await task_sql.lock_task(conn, case_id, task_id)
        if task is None:
            raise Refused("not_found", "no such task on this case")
        reason = task_conflict(task["status"])
        if reason:
            raise agent_actions.conflict(reason)

    return await agent_actions._act(
        runtime,
        principal,
        case_id,
        roles=TASK_ROLES,
        action=action,
        build=lambda case: build(case["reference"]),
        record=check,
        kind="task_update_requested",
        summary=lambda _case: {"task_id": str(task_id), "action": action},
    )


async def complete_task(
    runtime: Runtime, principal: Principal, case_id: UUID, task_id: UUID
) -> agent_actions.ActionAccepted:
    return await _on_task(
        runtime,
        principal,
        case_id,
        task_id,
        action="completing a task",
        build=lambda reference: TaskCompletionRequested(reference=reference, task_id=task_id),
    )


async def reassign_task(
    runtime: Runtime, principal: Principal, case_id: UUID, task_id: UUID, change: TaskReassignment
) -> agent_actions.ActionAccepted:
    return await _on_task(
        runtime,
        principal,
        case_id,
        task_id,
        action="reassigning a task",
        build=lambda reference: TaskReassignmentRequested(
            reference=reference,
            task_id=task_id,
            assignee_id=change.assignee_id,
            reason=change.reason,
        ),
    )


async def cancel_task(
    runtime: Runtime, principal: Principal, case_id: UUID, task_id: UUID, change: TaskCancellation
) -> agent_actions.ActionAccepted:
    return await _on_task(
        runtime,
        principal,
        case_id,
        task_id,
        action="cancelling a task",
        build=lambda reference: TaskCancellationRequested(
            reference=reference, task_id=task_id, reason=change.reason
        ),
    )


async def list_tasks(
    runtime: Runtime, principal: Principal, case_id: UUID, client: Client, *, view: str
) -> list[dict[str, Any]]:
    """The case's tasks for staff who may read it (404 otherwise; sensitive reads audited)."""
    agent_actions.require_role(principal, TASK_ROLES, "reading a case's tasks")
    row = await actions.readable_case(runtime, principal, case_id, client, view=view)
    if is_reporter(principal, actions.facts(row)):
        raise Refused("forbidden", "tasks are for the HR staff working the case")
    return await task_sql.list_tasks(runtime.pool, case_id)


async def task_section(
    pool: asyncpg.Pool, principal: Principal, staff_view: bool, case: Case
) -> dict[str, Any]:
    """What the case page's task section shows: nothing unless the viewer is staff working
    the case (the reporter never sees tasks); the add form only while the case is open."""
    shown = staff_view and principal.has_any(*TASK_ROLES)
    return {
        "shown": shown,
        "tasks": await task_sql.list_tasks(pool, case["case_id"]) if shown else [],
        "can_add": shown and case["status"] not in CLOSED_STATUSES,
    }
