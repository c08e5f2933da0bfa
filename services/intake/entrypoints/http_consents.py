"""The worker's consent over the JSON API: the case's own reporter (an employee).

- POST /api/v1/cases/{case_id}/consents `{"consent", "given_by", "granted"?, "basis"?}` ->
  202 with the event id; publishes conference.consent_recorded (given_by worker,
  recorded_via portal). The reporter gives only the worker's own consent: `given_by` must
  be "worker" (422 naming the field). A case the caller may not read is 404; staff who
  are not its reporter are 403 here.

The staff side of the same path (recorded_via "staff", any given_by with its basis) is
intake-staff's: at merge one route dispatches, the reporter of the case to
`record_consent_as_reporter` below, staff to theirs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from services.intake.application import participant_doors
from services.intake.entrypoints.web import RefusalRoute, runtime_of
from shared.auth import Principal, current_principal
from shared.events import ConsentKind

router = APIRouter(prefix="/api/v1", tags=["conferences"], route_class=RefusalRoute)


class ConsentRequest(BaseModel):
    """A consent given (`granted` true, the default) or withdrawn (false)."""

    model_config = ConfigDict(extra="forbid")
    consent: ConsentKind
    given_by: Literal["worker", "treating_doctor", "psychologist"]
    granted: bool = True
    basis: str | None = Field(default=None, max_length=2000)


class ConsentAccepted(BaseModel):
    case_id: UUID
    reference: str
    event_id: UUID
    event_type: str
    consent: str
    granted: bool


REPORTER_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "the caller may read the case but is not its reporter"},
    404: {"description": "no such case, or the caller may not read it"},
    422: {"description": "bad input; a reporter's given_by must be worker"},
}


async def record_consent_as_reporter(
    runtime_request: Request, principal: Principal, case_id: UUID, body: ConsentRequest
) -> ConsentAccepted:
    """The reporter's branch of POST /cases/{id}/consents (see the module docstring)."""
    if body.given_by != "worker":
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "given_by"),
                    "msg": "the case's reporter records the worker's own consent only"
                    " (given_by must be worker)",
                    "input": body.given_by,
                }
            ]
        )
    recorded = await participant_doors.record_worker_consent(
        runtime_of(runtime_request),
        principal,
        case_id,
        body.consent,
        granted=body.granted,
        basis=body.basis,
    )
    return ConsentAccepted(
        case_id=recorded.case_id,
        reference=recorded.reference,
        event_id=recorded.event_id,
        event_type="conference.consent_recorded",
        consent=recorded.consent,
        granted=recorded.granted,
    )


@router.post(
    "/cases/{case_id}/consents",
    status_code=status.HTTP_202_ACCEPTED,
    responses=REPORTER_RESPONSES,
)
async def record_consent(
    case_id: UUID,
    body: Annotated[ConsentRequest, Body()],
    request: Request,
    principal: Annotated[Principal, Depends(current_principal)],
) -> ConsentAccepted:
    """Record a consent for the case's conferences (the reporter's own, as the worker)."""
    return await record_consent_as_reporter(request, principal, case_id, body)
