"""The process on a case over the JSON API (staff: hr_agent, hr_manager, investigator;
the holders of a process role on the case read and act on it like its owner).

- GET /cases/{id}/process: the process, its stages (done/current/next), endings, the
  stage clock (UTC and the owning team's zone), role holders, declared conflicts and
  routing's last refusal of a process request.
- POST /cases/{id}/process {process, reason}: case.process_change_requested.
- POST /cases/{id}/stage {stage, ending?, reason?}: case.stage_change_requested.
- POST /cases/{id}/process-roles {role, staff_id, reason?}:
  case.process_role_assignment_requested.
- POST /cases/{id}/conflicts {staff_id?, reason}: case.conflict_declared (the signed-in
  person when staff_id is omitted).
Each POST answers 202 with the request's event id; routing decides (its decision or
case.request_refused, shown by the GET). 403 without a staff role or on one's own case,
404 for a case the caller may not read (as for no such case), 409 for a closed case or a
request intake already knows cannot apply (no such stage or ending, the process ended),
422 naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel

from services.intake.application import processes
from services.intake.domain.processes import (
    PROCESS_ROLES,
    ConflictDeclaration,
    ProcessChange,
    ProcessRoleAssignment,
    StageChange,
)
from services.intake.entrypoints.http import ACTION_RESPONSES, ActionAccepted, _accepted
from services.intake.entrypoints.web import RefusalRoute, client_of, runtime_of
from shared.auth import Principal, require_roles

router = APIRouter(prefix="/api/v1", tags=["case process"], route_class=RefusalRoute)
ProcessStaff = Annotated[Principal, Depends(require_roles(*PROCESS_ROLES))]
RESPONSES: dict[int | str, dict[str, Any]] = {
    **ACTION_RESPONSES,
    409: {
        "description": "the case is closed, or intake already knows the request cannot"
        " apply (no such stage or ending in the case's process, the process has ended)"
    },
    422: {"description": "bad input, naming the field"},
}


class ProcessInfo(BaseModel):
    process: str
    label: str
    stage: str | None  # None until routing announces the first stage
    stage_label: str | None
    stage_entered_at: datetime | None
    ended: bool
    ending: str | None
    ending_reason: str | None
    assigned_by: str | None  # policy | staff
    reason: str | None


class StageInfo(BaseModel):
    name: str
    label: str
    target_working_days: float | None = None
    position: str  # done | current | next


class StageClock(BaseModel):
    """The current stage's target: instants in UTC and in `time_zone` (the owning team's)."""

    target_at: datetime | None
    due_soon_at: datetime | None
    state: str  # on_track | due_soon | overdue | ended
    state_label: str
    time_zone: str
    target_at_local: str | None
    due_soon_at_local: str | None


class RoleHolder(BaseModel):
    role: str
    role_label: str
    staff_id: str
    name: str
    email: str
    assigned_at: datetime


class DeclaredConflict(BaseModel):
    staff_id: str | None
    staff_name: str | None
    reason: str | None
    declared_by: str | None
    declared_at: datetime


class Refusal(BaseModel):
    """Routing's reason for not applying the last refused process request."""

    request_type: str
    request: str  # e.g. "stage change"
    reason: str | None
    refused_at: datetime


class ProcessView(BaseModel):
    case_id: UUID
    reference: str
    process: ProcessInfo | None  # None until routing puts the case in a process
    stages: list[StageInfo]
    endings: list[str]
    final_stage: str | None
    clock: StageClock | None
    roles: list[RoleHolder]
    conflicts: list[DeclaredConflict]
    last_refusal: Refusal | None
    time_zone: str


@router.get("/cases/{case_id}/process", response_model=ProcessView, responses=RESPONSES)
async def read_process(case_id: UUID, request: Request, principal: ProcessStaff) -> ProcessView:
    """The case's process as intake last heard of it from routing."""
    case, details = await processes.process_view(
        runtime_of(request), principal, case_id, client_of(request), view="api:process"
    )
    return ProcessView.model_validate(
        {"case_id": case["case_id"], "reference": case["reference"], **details}
    )


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _post(path: str) -> Decorator:
    return router.post(
        f"/cases/{{case_id}}{path}",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=ActionAccepted,
        responses=RESPONSES,
    )


@_post("/process")
async def change_process(
    case_id: UUID, body: ProcessChange, request: Request, principal: ProcessStaff
) -> ActionAccepted:
    """Switch the case to another of the policy's processes, with a reason; routing
    answers case.process_assigned or case.request_refused."""
    return _accepted(
        await processes.request_process_change(runtime_of(request), principal, case_id, body)
    )


@_post("/stage")
async def change_stage(
    case_id: UUID, body: StageChange, request: Request, principal: ProcessStaff
) -> ActionAccepted:
    """Move the case to a stage of its process; routing answers case.stage_entered or
    case.request_refused (requirements unmet, a move back or the final stage without a
    reason, ...)."""
    return _accepted(
        await processes.request_stage_change(runtime_of(request), principal, case_id, body)
    )


@_post("/process-roles")
async def assign_process_role(
    case_id: UUID, body: ProcessRoleAssignment, request: Request, principal: ProcessStaff
) -> ActionAccepted:
    """Name who holds a process role; routing answers case.process_role_assigned or
    case.request_refused (a respondent, in a respondent's management chain, conflicted)."""
    return _accepted(
        await processes.request_role_assignment(runtime_of(request), principal, case_id, body)
    )


@_post("/conflicts")
async def declare_conflict(
    case_id: UUID, body: ConflictDeclaration, request: Request, principal: ProcessStaff
) -> ActionAccepted:
    """Declare a conflict of interest on the case (for oneself unless staff_id is given):
    routing never gives that person a process role on it."""
    return _accepted(
        await processes.declare_conflict(runtime_of(request), principal, case_id, body)
    )
