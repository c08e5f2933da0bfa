"""Tasks on a case over the JSON API (staff: hr_agent, hr_manager, investigator).

- POST /cases/{id}/tasks: title, assignee_id, exactly one of due_in_working_hours / due_at,
  description?; 202 with the task id (routing computes the due instant: task.created).
- POST /cases/{id}/tasks/{task_id}/complete | /reassign | /cancel: 202; routing decides.
- GET /cases/{id}/tasks: the case's tasks as intake last heard of them from routing.
A case the caller may not read is 404, the same answer as no such case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Request, status
from pydantic import BaseModel

from services.intake.application import tasks
from services.intake.domain.tasks import (
    TASK_ROLES,
    NewTask,
    TaskCancellation,
    TaskCompletion,
    TaskReassignment,
    TaskState,
)
from services.intake.entrypoints.http import ACTION_RESPONSES, ActionAccepted, _accepted
from services.intake.entrypoints.web import RefusalRoute, client_of, runtime_of
from shared.auth import Principal, require_roles

router = APIRouter(prefix="/api/v1", tags=["tasks"], route_class=RefusalRoute)
TaskStaff = Annotated[Principal, Depends(require_roles(*TASK_ROLES))]


class TaskAccepted(ActionAccepted):
    task_id: UUID


class TaskView(BaseModel):
    task_id: UUID
    title: str
    description: str | None
    assignee_id: str
    assignee_name: str | None
    # requested: waiting for routing; refused: routing said no (refused_reason).
    status: TaskState
    due_at: datetime | None  # routing's, in working time; None until accepted
    requested_due_in_hours: float | None
    requested_due_at: datetime | None
    created_by: str
    refused_reason: str | None
    escalated_to_name: str | None
    created_at: datetime
    updated_at: datetime


class TaskList(BaseModel):
    tasks: list[TaskView]


@router.post(
    "/cases/{case_id}/tasks",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskAccepted,
    responses=ACTION_RESPONSES,
)
async def add_task(
    case_id: UUID, body: NewTask, request: Request, principal: TaskStaff
) -> TaskAccepted:
    """Record the task and publish `task.creation_requested`; routing answers task.created
    (with the due instant) or case.request_refused (the task then shows as refused)."""
    accepted, task_id = await tasks.add_task(runtime_of(request), principal, case_id, body)
    return TaskAccepted(**_accepted(accepted).model_dump(), task_id=task_id)


@router.get("/cases/{case_id}/tasks", response_model=TaskList, responses=ACTION_RESPONSES)
async def list_tasks(case_id: UUID, request: Request, principal: TaskStaff) -> TaskList:
    rows = await tasks.list_tasks(
        runtime_of(request), principal, case_id, client_of(request), view="api:tasks"
    )
    return TaskList(tasks=[TaskView.model_validate(row) for row in rows])


@router.post(
    "/cases/{case_id}/tasks/{task_id}/complete",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ActionAccepted,
    responses=ACTION_RESPONSES,
)
async def complete_task(
    case_id: UUID,
    task_id: UUID,
    request: Request,
    principal: TaskStaff,
    body: Annotated[TaskCompletion | None, Body()] = None,
) -> ActionAccepted:
    """Publish `task.completion_requested`; routing cancels the task's timers."""
    return _accepted(await tasks.complete_task(runtime_of(request), principal, case_id, task_id))


@router.post(
    "/cases/{case_id}/tasks/{task_id}/reassign",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ActionAccepted,
    responses=ACTION_RESPONSES,
)
async def reassign_task(
    case_id: UUID, task_id: UUID, body: TaskReassignment, request: Request, principal: TaskStaff
) -> ActionAccepted:
    return _accepted(
        await tasks.reassign_task(runtime_of(request), principal, case_id, task_id, body)
    )


@router.post(
    "/cases/{case_id}/tasks/{task_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ActionAccepted,
    responses=ACTION_RESPONSES,
)
async def cancel_task(
    case_id: UUID, task_id: UUID, body: TaskCancellation, request: Request, principal: TaskStaff
) -> ActionAccepted:
    return _accepted(
        await tasks.cancel_task(runtime_of(request), principal, case_id, task_id, body)
    )
