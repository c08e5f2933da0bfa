"""The staff parts of a case in the JSON API: who raised it, its history, related cases.

- GET /api/v1/cases/{id}/history: staff who may read the case (404 otherwise, the same
  answer as a missing case; 403 for an employee, and for the member of staff who reported
  it). Oldest first; people by name; internal notes included (staff only).
The case view (`GET /api/v1/cases/{id}`, http.py) carries `reporter` and `related_cases`
for the same viewers and leaves them out for everyone else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from services.intake.application import case_page
from services.intake.domain.case import STAFF_ROLES
from services.intake.entrypoints.web import RefusalRoute, client_of, runtime_of
from shared.auth import Principal, require_roles

router = APIRouter(prefix="/api/v1", tags=["cases"], route_class=RefusalRoute)
Staff = Annotated[Principal, Depends(require_roles(*STAFF_ROLES))]


class PhoneCallerView(BaseModel):
    """What the agent took down about a call."""

    caller_details: str | None
    callback_number: str | None
    called_at: datetime
    duration_seconds: int
    logged_by: str
    logged_by_name: str  # the agent's name, their id when no name is known


class AnonymousReporter(BaseModel):
    """An anonymous report: "anonymous" and nothing else."""

    anonymous: Literal[True] = True


class ReporterView(BaseModel):
    """Who raised the case: the reporter on file and, for a phone case, what the agent took
    down (a caller who gave only details has no name, id or address here)."""

    anonymous: bool
    employee_id: str | None = None
    name: str | None = None
    email: str | None = None
    phone: PhoneCallerView | None = None


class RelatedCase(BaseModel):
    """Another case of the same reporter that the viewer may read."""

    case_id: UUID
    reference: str
    subject: str
    status: str


class HistoryActor(BaseModel):
    type: str
    id: str | None
    name: str  # display name: stored name, a known name, a system label or the id


class HistoryEntryView(BaseModel):
    event_id: UUID
    occurred_at: datetime
    event_type: str
    kind: str
    actor: HistoryActor
    description: str
    summary: dict[str, Any]
    text: str | None = None  # a message's or note's text
    internal: bool | None = None  # notes: internal (staff only) or shared


class CaseHistory(BaseModel):
    case_id: UUID
    entries: list[HistoryEntryView]


def reporter_view(details: dict[str, Any]) -> ReporterView | AnonymousReporter:
    if set(details) == {"anonymous"}:
        return AnonymousReporter()
    return ReporterView.model_validate(details)


def history_views(items: list[case_page.HistoryItem]) -> list[HistoryEntryView]:
    return [HistoryEntryView.model_validate(item, from_attributes=True) for item in items]


@router.get(
    "/cases/{case_id}/history",
    response_model=CaseHistory,
    responses={
        403: {"description": "not staff, or the caller reported the case"},
        404: {"description": "no such case, or the caller may not read it"},
    },
)
async def case_history(case_id: UUID, request: Request, principal: Staff) -> CaseHistory:
    """Everything that happened on the case, oldest first, people by name."""
    items = await case_page.case_history(
        runtime_of(request), principal, case_id, client_of(request), view="api:history"
    )
    return CaseHistory(case_id=case_id, entries=history_views(items))
