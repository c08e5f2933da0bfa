"""Independent case management (mediation) over the JSON API.

The case manager (the `case_manager` role holder, or an HR manager who may act on the
case), on a case in the `case_management` process that has not ended (409 otherwise):
- POST /cases/{id}/mediation/assessments -> mediation.assessment_recorded (JSON; the same
  as multipart/form-data with uploaded files at .../assessments/upload)
- POST /cases/{id}/mediation/ground-rules -> mediation.ground_rules_proposed (409 until
  both parties are assessed)
- POST /cases/{id}/mediation/meetings -> mediation.meeting_scheduled
- POST /cases/{id}/mediation/meetings/{meeting_id}/record -> mediation.meeting_held
- POST /cases/{id}/mediation/agreement -> agreement.drafted (the `agreement` stage only)
- POST /cases/{id}/mediation/agreement/obligations/{term_id}/met -> agreement.obligation_met
- GET /cases/{id}/mediation: everything for staff who may read the case; privileged
  notes only for the case manager role holder.
The parties (signed-in employees whose employee_id is a party's; 404 for anyone else):
- GET /cases/{id}/mediation/mine: their own part
- POST /cases/{id}/mediation/ground-rules/{ground_rules_id}/accept
- POST /cases/{id}/mediation/agreement/{agreement_id}/accept {version}
Each POST answers 202 with the event's id once it is recorded (published by the outbox).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from services.intake.application import mediation
from services.intake.domain.mediation import (
    MEDIATION_ROLES,
    AgreementAcceptanceInput,
    AgreementInput,
    AssessmentInput,
    GroundRulesInput,
    MeetingInput,
    MeetingRecordInput,
    ObligationMetInput,
)
from services.intake.entrypoints.documents_http import read_uploads
from services.intake.entrypoints.http import ACTION_RESPONSES, ActionAccepted, _accepted
from services.intake.entrypoints.web import RefusalRoute, client_of, runtime_of
from shared.auth import Principal, current_principal, require_roles

router = APIRouter(prefix="/api/v1", tags=["independent case management"], route_class=RefusalRoute)
Staff = Annotated[Principal, Depends(require_roles(*MEDIATION_ROLES))]
Caller = Annotated[Principal, Depends(current_principal)]
RESPONSES: dict[int | str, dict[str, Any]] = {
    **ACTION_RESPONSES,
    409: {"description": "not in case management, ended, or the wrong stage (reason given)"},
    422: {"description": "bad input, naming the field"},
}


class GroundRulesAccepted(ActionAccepted):
    ground_rules_id: UUID


class MeetingAccepted(ActionAccepted):
    meeting_id: UUID


class AgreementDraftAccepted(ActionAccepted):
    agreement_id: UUID
    version: int
    term_ids: list[UUID]  # in the order the terms were given


class MediationView(BaseModel):
    """Staff's view: `process` (stage, clock), `case_manager` {staff_id, name, email},
    `assessments` [{party_role, employee_id, name, email, account, desired_outcomes,
    documents, recorded_at}], `missing_party_roles`, `ground_rules` {ground_rules_id,
    rules, parties, acceptances {role: instant}} (the latest; `earlier_ground_rules`),
    `meetings` [{meeting_id, scheduled_for, duration_minutes, time_zone, location,
    video_link, case_manager, held_at, discussed, proposals, privileged_notes (None unless
    the caller is the case manager)}], `agreement` {agreement_id, version, terms, state
    draft|accepted_by_one|accepted_by_both|in_force, accepted_by {role: instant}, in_force_at,
    follow_ups_at}, `obligations` [{term_id, text, owner_role, due_on, due_at,
    due_soon_at, state draft|open|due_soon|overdue|met, met_on, escalated_to}],
    `follow_ups` [{check_in, due_at, fell_due_at}]."""

    process: dict[str, Any] | None
    stage: str | None
    case_manager: dict[str, Any] | None
    viewer_is_case_manager: bool
    privileged_notes_hidden: bool
    assessments: list[dict[str, Any]]
    missing_party_roles: list[str]
    ground_rules: dict[str, Any] | None
    earlier_ground_rules: list[dict[str, Any]]
    meetings: list[dict[str, Any]]
    agreement: dict[str, Any] | None
    obligations: list[dict[str, Any]]
    follow_ups: list[dict[str, Any]]


class PartyView(BaseModel):
    """A party's view: `role`, `assessment` (their own: account, desired_outcomes,
    documents' names), `ground_rules` {ground_rules_id, rules, accepted_by, you_accepted},
    `meetings` (dates and the shared summary: discussed, proposals), `agreement`
    {agreement_id, version, terms, state, accepted_by, you_accepted, in_force_at},
    `obligations` (their own, with state)."""

    case_id: UUID
    reference: str
    role: str
    role_label: str
    stage: str | None
    ended: bool
    assessment: dict[str, Any] | None
    ground_rules: dict[str, Any] | None
    meetings: list[dict[str, Any]]
    agreement: dict[str, Any] | None
    obligations: list[dict[str, Any]]


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _post(path: str, model: type[BaseModel] = ActionAccepted) -> Decorator:
    return router.post(
        f"/cases/{{case_id}}/mediation{path}",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=model,
        responses=RESPONSES,
    )


@_post("/assessments")
async def record_assessment(
    case_id: UUID, body: AssessmentInput, request: Request, principal: Staff
) -> ActionAccepted:
    """A party's initial assessment (a new one of the same role replaces it)."""
    return _accepted(
        await mediation.record_assessment(runtime_of(request), principal, case_id, body)
    )


@router.post(
    "/cases/{case_id}/mediation/assessments/upload",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ActionAccepted,
    responses={**RESPONSES, 413: {"description": "a file or the case's files over the limit"}},
)
async def record_assessment_with_files(
    case_id: UUID,
    request: Request,
    principal: Staff,
    party_role: Annotated[str, Form()],
    employee_id: Annotated[str, Form()],
    name: Annotated[str, Form()],
    email: Annotated[str, Form()],
    account: Annotated[str, Form()],
    desired_outcomes: Annotated[list[str], Form(description="one field per outcome")],
    documents: Annotated[list[str] | None, Form(description="ids of files on the case")] = None,
    files: Annotated[list[UploadFile] | None, File(description="0 to 5 files")] = None,
) -> ActionAccepted:
    """The same assessment as multipart/form-data, with the party's documents uploaded
    (stored on the case as staff's documents, `case.document_added` each) and/or named."""
    try:
        body = AssessmentInput.model_validate(
            {
                "party": {"role": party_role, "employee_id": employee_id, "name": name,
                          "email": email},
                "account": account,
                "desired_outcomes": desired_outcomes,
                "documents": documents or [],
            }
        )  # fmt: skip
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    uploads = await read_uploads(files or [])
    return _accepted(
        await mediation.record_assessment(runtime_of(request), principal, case_id, body, uploads)
    )


@_post("/ground-rules", GroundRulesAccepted)
async def propose_ground_rules(
    case_id: UUID, body: GroundRulesInput, request: Request, principal: Staff
) -> GroundRulesAccepted:
    accepted, ground_rules_id = await mediation.propose_ground_rules(
        runtime_of(request), principal, case_id, body
    )
    return GroundRulesAccepted(**_accepted(accepted).model_dump(), ground_rules_id=ground_rules_id)


@_post("/meetings", MeetingAccepted)
async def schedule_meeting(
    case_id: UUID, body: MeetingInput, request: Request, principal: Staff
) -> MeetingAccepted:
    accepted, meeting_id = await mediation.schedule_meeting(
        runtime_of(request), principal, case_id, body
    )
    return MeetingAccepted(**_accepted(accepted).model_dump(), meeting_id=meeting_id)


@_post("/meetings/{meeting_id}/record")
async def record_meeting(
    case_id: UUID, meeting_id: UUID, body: MeetingRecordInput, request: Request, principal: Staff
) -> ActionAccepted:
    return _accepted(
        await mediation.record_meeting(runtime_of(request), principal, case_id, meeting_id, body)
    )


@_post("/agreement", AgreementDraftAccepted)
async def draft_agreement(
    case_id: UUID, body: AgreementInput, request: Request, principal: Staff
) -> AgreementDraftAccepted:
    """The next version of the written agreement (every acceptance starts again)."""
    accepted, agreement_id, version, term_ids = await mediation.draft_agreement(
        runtime_of(request), principal, case_id, body
    )
    return AgreementDraftAccepted(
        **_accepted(accepted).model_dump(),
        agreement_id=agreement_id,
        version=version,
        term_ids=term_ids,
    )


@_post("/agreement/obligations/{term_id}/met")
async def obligation_met(
    case_id: UUID, term_id: UUID, body: ObligationMetInput, request: Request, principal: Staff
) -> ActionAccepted:
    return _accepted(
        await mediation.obligation_met(runtime_of(request), principal, case_id, term_id, body)
    )


@router.get("/cases/{case_id}/mediation", response_model=MediationView, responses=RESPONSES)
async def get_mediation(case_id: UUID, request: Request, principal: Staff) -> MediationView:
    _, shown = await mediation.staff_view(
        runtime_of(request), principal, case_id, client_of(request), view="api:mediation"
    )
    return MediationView.model_validate(shown)


@router.get("/cases/{case_id}/mediation/mine", response_model=PartyView, responses=RESPONSES)
async def my_mediation(case_id: UUID, request: Request, principal: Caller) -> PartyView:
    return PartyView.model_validate(
        await mediation.party_view(runtime_of(request), principal, case_id)
    )


@_post("/ground-rules/{ground_rules_id}/accept")
async def accept_ground_rules(
    case_id: UUID, ground_rules_id: UUID, request: Request, principal: Caller
) -> ActionAccepted:
    return _accepted(
        await mediation.accept_ground_rules(
            runtime_of(request), principal, case_id, ground_rules_id
        )
    )


@_post("/agreement/{agreement_id}/accept")
async def accept_agreement(
    case_id: UUID,
    agreement_id: UUID,
    body: AgreementAcceptanceInput,
    request: Request,
    principal: Caller,
) -> ActionAccepted:
    return _accepted(
        await mediation.accept_agreement(
            runtime_of(request), principal, case_id, agreement_id, body
        )
    )
