"""Statutory clocks on a case over the JSON API (staff: hr_agent, hr_manager, investigator).

- GET /cases/{id}/statutory-clocks: the case's clocks as routing last announced them
  (label, citation, due instant and state running | due_soon | breached | met).
- POST /cases/{id}/statutory-clocks/{pack}/{clock}/completion `{"note"?}`: 202; staff
  record the obligation as fulfilled outside hrcase; routing answers statutory_clock.met
  or case.request_refused.
A case the caller may not read is 404, the same answer as no such case (or clock).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Path, Request, status
from pydantic import BaseModel

from services.intake.application import statutory_clocks
from services.intake.domain.statutory_clocks import (
    CLOCK_ROLES,
    KEY_PATTERN,
    ClockCompletion,
    ClockState,
)
from services.intake.entrypoints.http import ACTION_RESPONSES, ActionAccepted, _accepted
from services.intake.entrypoints.web import RefusalRoute, client_of, runtime_of
from shared.auth import Principal, require_roles

router = APIRouter(prefix="/api/v1", tags=["statutory clocks"], route_class=RefusalRoute)
ClockStaff = Annotated[Principal, Depends(require_roles(*CLOCK_ROLES))]
PackKey = Annotated[str, Path(pattern=KEY_PATTERN, max_length=64)]
ClockKey = Annotated[str, Path(pattern=KEY_PATTERN, max_length=64)]


class StatutoryClockView(BaseModel):
    pack: str  # "conference_rules" or a jurisdiction key such as "nsw"
    clock: str
    conference_id: UUID | None  # set for a clock that runs per conference
    label: str
    citation: str
    basis: str  # working | calendar
    trigger: str  # the event type that started it
    started_at: datetime
    due_at: datetime
    due_soon_at: datetime | None
    due_local: str | None  # due_at in the owning team's zone
    time_zone: str
    state: ClockState
    breached_at: datetime | None
    escalated_to_name: str | None
    met_at: datetime | None
    met_by: str | None  # the event type that met it, or "staff"
    met_on_time: bool | None


class StatutoryClockList(BaseModel):
    clocks: list[StatutoryClockView]


@router.get(
    "/cases/{case_id}/statutory-clocks",
    response_model=StatutoryClockList,
    responses=ACTION_RESPONSES,
)
async def list_statutory_clocks(
    case_id: UUID, request: Request, principal: ClockStaff
) -> StatutoryClockList:
    rows = await statutory_clocks.list_clocks(
        runtime_of(request), principal, case_id, client_of(request), view="api:statutory_clocks"
    )
    return StatutoryClockList(clocks=[StatutoryClockView.model_validate(row) for row in rows])


@router.post(
    "/cases/{case_id}/statutory-clocks/{pack}/{clock}/completion",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ActionAccepted,
    responses=ACTION_RESPONSES,
)
async def record_clock_completion(
    case_id: UUID,
    pack: PackKey,
    clock: ClockKey,
    request: Request,
    principal: ClockStaff,
    body: Annotated[ClockCompletion | None, Body()] = None,
) -> ActionAccepted:
    """Publish `statutory_clock.completion_requested` (404: the case has no such clock;
    409: it is met already or the case is closed)."""
    return _accepted(
        await statutory_clocks.request_completion(
            runtime_of(request), principal, case_id, pack, clock, body or ClockCompletion()
        )
    )
