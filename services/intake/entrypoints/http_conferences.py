"""Case conferences over the JSON API (staff: hr_agent, hr_manager, investigator).

- POST /cases/{id}/conferences: plan one (202 with the conference id; routing decides:
  conference.planned or case.request_refused).
- GET /cases/{id}/conferences, GET /cases/{id}/conferences/{conference_id}: as intake last
  heard of them from routing and notifications.
- POST .../conferences/{conference_id}/changes | /cancellation | /attendance | /summary,
  .../actions/{action_id}/completion | /replanning: 202; routing decides.
- POST /cases/{id}/consents: staff, or the worker (the case's reporter) for themselves.
A case the caller may not read is 404, the same answer as no such case.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Request, status
from pydantic import BaseModel

from services.intake.application import conference_consents, conference_views, conferences
from services.intake.domain.conferences import (
    CONFERENCE_ROLES,
    ActionCompletion,
    ActionReplanning,
    ConferenceCancellation,
    ConferenceChange,
    ConferencePlanInput,
    ConferenceStatus,
    ConsentInput,
    HoldRecording,
    SummaryRecording,
)
from services.intake.entrypoints.http import ACTION_RESPONSES, ActionAccepted, _accepted
from services.intake.entrypoints.web import RefusalRoute, client_of, runtime_of
from shared.auth import Principal, current_principal, require_roles

router = APIRouter(prefix="/api/v1", tags=["case conferences"], route_class=RefusalRoute)
ConferenceStaff = Annotated[Principal, Depends(require_roles(*CONFERENCE_ROLES))]
Caller = Annotated[Principal, Depends(current_principal)]
RESPONSES: dict[int | str, dict[str, Any]] = {
    **ACTION_RESPONSES,
    422: {"description": "bad input, naming the field"},
}


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class ConferenceAccepted(ActionAccepted):
    conference_id: UUID
    status: ConferenceStatus = "requested"


class SummaryAccepted(ActionAccepted):
    action_ids: list[UUID]  # in the order the actions were given


class ConferenceView(BaseModel):
    """A conference as intake shows it; `plan`, `participants` (with `invitation`, `mails`,
    `acknowledged_at`, `objection`), `attendance`, `summary` and `actions` (with `status`
    open|done|replanned|ended and `due_at`) are described in domain/conferences.py."""

    conference_id: UUID
    status: ConferenceStatus
    refused_reason: str | None
    cancelled_reason: str | None
    last_refusal: str | None  # routing's reason for the last refused change, if any
    plan: dict[str, Any]
    participants: list[dict[str, Any]]
    attendance: list[dict[str, Any]] | None
    held_at: datetime | None
    summary: dict[str, Any] | None
    actions: list[dict[str, Any]]
    sequence: int
    notice_working_days: int | None
    requested_by: str
    created_at: datetime
    updated_at: datetime


class ConferenceList(BaseModel):
    conferences: list[ConferenceView]


def _view(row: dict[str, Any]) -> ConferenceView:
    return ConferenceView.model_validate(row)


@router.post(
    "/cases/{case_id}/conferences",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ConferenceAccepted,
    responses=RESPONSES,
)
async def plan_conference(
    case_id: UUID, body: ConferencePlanInput, request: Request, principal: ConferenceStaff
) -> ConferenceAccepted:
    """Record the conference and publish `conference.planning_requested`; routing answers
    conference.planned or case.request_refused (the conference then shows as refused)."""
    accepted, conference_id = await conferences.plan_conference(
        runtime_of(request), principal, case_id, body
    )
    return ConferenceAccepted(**_accepted(accepted).model_dump(), conference_id=conference_id)


@router.get("/cases/{case_id}/conferences", response_model=ConferenceList, responses=RESPONSES)
async def list_conferences(
    case_id: UUID, request: Request, principal: ConferenceStaff
) -> ConferenceList:
    rows = await conference_views.list_conferences(
        runtime_of(request), principal, case_id, client_of(request), view="api:conferences"
    )
    return ConferenceList(conferences=[_view(row) for row in rows])


@router.get(
    "/cases/{case_id}/conferences/{conference_id}",
    response_model=ConferenceView,
    responses=RESPONSES,
)
async def get_conference(
    case_id: UUID, conference_id: UUID, request: Request, principal: ConferenceStaff
) -> ConferenceView:
    _, row = await conference_views.get_conference(
        runtime_of(request),
        principal,
        case_id,
        conference_id,
        client_of(request),
        view="api:conference",
    )
    return _view(row)


def _post(path: str, model: type[BaseModel] = ActionAccepted) -> Decorator:
    return router.post(
        f"/cases/{{case_id}}/conferences/{{conference_id}}{path}",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=model,
        responses=RESPONSES,
    )


@_post("/changes")
async def change_conference(
    case_id: UUID,
    conference_id: UUID,
    body: ConferenceChange,
    request: Request,
    principal: ConferenceStaff,
) -> ActionAccepted:
    """The complete new plan and participants (those keeping their participant_id keep
    their invitation); routing answers conference.rescheduled."""
    return _accepted(
        await conferences.change_conference(
            runtime_of(request), principal, case_id, conference_id, body
        )
    )


@_post("/cancellation")
async def cancel_conference(
    case_id: UUID,
    conference_id: UUID,
    body: ConferenceCancellation,
    request: Request,
    principal: ConferenceStaff,
) -> ActionAccepted:
    return _accepted(
        await conferences.cancel_conference(
            runtime_of(request), principal, case_id, conference_id, body
        )
    )


@_post("/attendance")
async def record_attendance(
    case_id: UUID,
    conference_id: UUID,
    body: HoldRecording,
    request: Request,
    principal: ConferenceStaff,
) -> ActionAccepted:
    return _accepted(
        await conferences.record_attendance(
            runtime_of(request), principal, case_id, conference_id, body
        )
    )


@_post("/summary", SummaryAccepted)
async def record_summary(
    case_id: UUID,
    conference_id: UUID,
    body: SummaryRecording,
    request: Request,
    principal: ConferenceStaff,
) -> SummaryAccepted:
    accepted, action_ids = await conferences.record_summary(
        runtime_of(request), principal, case_id, conference_id, body
    )
    return SummaryAccepted(**_accepted(accepted).model_dump(), action_ids=action_ids)


@_post("/actions/{action_id}/completion")
async def complete_action(
    case_id: UUID,
    conference_id: UUID,
    action_id: UUID,
    request: Request,
    principal: ConferenceStaff,
    body: Annotated[ActionCompletion | None, Body()] = None,
) -> ActionAccepted:
    return _accepted(
        await conferences.complete_action(
            runtime_of(request),
            principal,
            case_id,
            conference_id,
            action_id,
            body or ActionCompletion(),
        )
    )


@_post("/actions/{action_id}/replanning")
async def replan_action(
    case_id: UUID,
    conference_id: UUID,
    action_id: UUID,
    body: ActionReplanning,
    request: Request,
    principal: ConferenceStaff,
) -> ActionAccepted:
    return _accepted(
        await conferences.replan_action(
            runtime_of(request), principal, case_id, conference_id, action_id, body
        )
    )


@router.post(
    "/cases/{case_id}/consents",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ActionAccepted,
    responses=RESPONSES,
)
async def record_consent(
    case_id: UUID, body: ConsentInput, request: Request, principal: Caller
) -> ActionAccepted:
    """Publish `conference.consent_recorded`: staff record any consent, the worker their own."""
    return _accepted(
        await conference_consents.record_consent(runtime_of(request), principal, case_id, body)
    )
