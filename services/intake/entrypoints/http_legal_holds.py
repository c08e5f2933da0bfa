"""Legal holds over the JSON API (privacy_officer, hr_manager) — README "Retention
schedule and legal holds".

- POST /privacy/legal-holds {case_id | subject: {employee_id | email} | matter: {name,
  case_ids}, reason}: 201 with the hold id; `privacy.legal_hold_placed` is published.
- GET /privacy/legal-holds: every hold, active and released.
- POST /privacy/legal-holds/{hold_id}/release {reason}: 202; `privacy.legal_hold_released`.
Bad input answers 422 naming the field (an unknown case too); a hold already released 409;
no such hold 404; a caller without the role 403.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel

from services.intake.application import legal_holds
from services.intake.domain.legal_holds import HOLD_ROLES, HoldKind, HoldRelease, NewLegalHold
from services.intake.entrypoints.web import RefusalRoute, runtime_of
from shared.auth import Principal, require_roles

router = APIRouter(prefix="/api/v1/privacy", tags=["privacy"], route_class=RefusalRoute)
HoldOfficer = Annotated[Principal, Depends(require_roles(*HOLD_ROLES))]
RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "the caller is neither a privacy officer nor an HR manager"},
    404: {"description": "no such legal hold"},
    409: {"description": "the legal hold was already released"},
    422: {"description": "bad input, named by field (an unknown case included)"},
}


class HoldAccepted(BaseModel):
    hold_id: UUID
    event_id: UUID
    event_type: str


class HoldView(BaseModel):
    hold_id: UUID
    kind: HoldKind
    active: bool
    case_id: UUID | None
    # A data subject's id (employee:<id> or email:<sha256 hex>), never the address.
    subject_id: str | None
    matter_name: str | None
    case_ids: list[UUID]
    reason: str
    placed_by: str
    placed_at: datetime
    released_by: str | None
    released_at: datetime | None
    release_reason: str | None


class HoldList(BaseModel):
    holds: list[HoldView]


def _accepted(accepted: legal_holds.HoldAccepted) -> HoldAccepted:
    return HoldAccepted(
        hold_id=accepted.hold_id, event_id=accepted.event_id, event_type=accepted.event_type
    )


@router.post(
    "/legal-holds",
    status_code=status.HTTP_201_CREATED,
    response_model=HoldAccepted,
    responses=RESPONSES,
)
async def place_hold(body: NewLegalHold, request: Request, principal: HoldOfficer) -> HoldAccepted:
    """Place a legal hold on a case, a data subject or a matter; it blocks retention
    erasure and erasure requests of what it covers until released."""
    return _accepted(await legal_holds.place_hold(runtime_of(request), principal, body))


@router.get("/legal-holds", response_model=HoldList, responses=RESPONSES)
async def list_holds(request: Request, principal: HoldOfficer) -> HoldList:
    """Every legal hold, active ones first."""
    rows = await legal_holds.list_holds(runtime_of(request), principal)
    return HoldList(holds=[HoldView.model_validate(row) for row in rows])


@router.post(
    "/legal-holds/{hold_id}/release",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=HoldAccepted,
    responses=RESPONSES,
)
async def release_hold(
    hold_id: UUID, body: HoldRelease, request: Request, principal: HoldOfficer
) -> HoldAccepted:
    """Release the hold; a retention it blocked is checked again (and carried out unless
    another hold covers the case)."""
    return _accepted(await legal_holds.release_hold(runtime_of(request), principal, hold_id, body))
