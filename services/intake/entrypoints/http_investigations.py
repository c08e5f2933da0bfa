"""Investigations over the JSON API.

Staff who may act on the case (hr_agent, hr_manager, investigator), case in the
investigation process and not ended (409 otherwise, naming the process or stage):
- POST /cases/{id}/investigation/allegations | /interim-measures | /interviews |
  /statements | /evidence (JSON item, or multipart with a `file`) | /findings (stage
  findings or outcome) | /outcome (stage outcome, a finding on every allegation):
  201 with the new fact's id.
- POST .../investigation/outcome/approval: 202; routing judges the approver.
- POST .../investigation/appeal/decision: the appeal hearer only (403 otherwise).
- GET /cases/{id}/investigation: everything recorded (audited like every staff read).
The parties (complainant, respondent), signed in as employees:
- GET /cases/{id}/investigation/mine: what concerns them, nothing else.
- POST .../investigation/statements/{statement_id}/review: confirm or correct their own.
- POST .../investigation/appeal: while the appeal window is open (409 after it).
Anyone who may not see the case or is not a party gets 404, as for a missing case.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from services.intake.application import (
    actions,
    investigation_outcome,
    investigation_parties,
    investigation_views,
    investigations,
)
from services.intake.domain.investigations import (
    INVESTIGATION_ROLES,
    AllegationInput,
    AppealDecisionInput,
    AppealInput,
    EvidenceItemInput,
    FindingInput,
    InterimMeasureInput,
    InterviewInput,
    OutcomeInput,
    StatementInput,
    StatementReviewInput,
)
from services.intake.domain.refusals import Refused
from services.intake.entrypoints.http import ACTION_RESPONSES, ActionAccepted, _accepted
from services.intake.entrypoints.web import RefusalRoute, client_of, runtime_of
from shared.auth import Principal, current_principal, require_roles

router = APIRouter(prefix="/api/v1", tags=["investigations"], route_class=RefusalRoute)
Staff = Annotated[Principal, Depends(require_roles(*INVESTIGATION_ROLES))]
Caller = Annotated[Principal, Depends(current_principal)]
RESPONSES: dict[int | str, dict[str, Any]] = {
    **ACTION_RESPONSES,
    409: {"description": "the case is not in the investigation process, has ended, or is"
          " not in the stage this needs (the reason names it)"},
    422: {"description": "bad input, naming the field"},
}  # fmt: skip
BASE = "/cases/{case_id}/investigation"


class FactAccepted(ActionAccepted):
    """The fact is recorded and its event will be published; `fact_id` is the new
    allegation's, measure's, interview's, statement's, evidence's, finding's, outcome's
    or appeal's id (also under its own name)."""

    fact_id: UUID


class AllegationAccepted(FactAccepted):
    allegation_id: UUID


class MeasureAccepted(FactAccepted):
    measure_id: UUID


class InterviewAccepted(FactAccepted):
    interview_id: UUID


class StatementAccepted(FactAccepted):
    statement_id: UUID


class EvidenceAccepted(FactAccepted):
    evidence_id: UUID


class FindingAccepted(FactAccepted):
    finding_id: UUID


class OutcomeAccepted(FactAccepted):
    outcome_id: UUID


class AppealAccepted(BaseModel):
    case_id: UUID
    appeal_id: UUID
    event_id: UUID
    event_type: str = "case.appeal_lodged"


class ReviewAccepted(BaseModel):
    case_id: UUID
    statement_id: UUID
    event_id: UUID
    event_type: str = "investigation.statement_reviewed"


def _fact(model: type[FactAccepted], name: str, fact: investigations.FactAccepted) -> Any:
    return model(
        **_accepted(fact.accepted).model_dump(), fact_id=fact.fact_id, **{name: fact.fact_id}
    )


def _created(path: str, model: type[BaseModel]) -> Callable[[Any], Any]:
    return router.post(
        BASE + path,
        status_code=status.HTTP_201_CREATED,
        response_model=model,
        responses=RESPONSES,
    )


@_created("/allegations", AllegationAccepted)
async def record_allegation(
    case_id: UUID, body: AllegationInput, request: Request, principal: Staff
) -> Any:
    """Publish `investigation.allegation_recorded`."""
    fact = await investigations.record_allegation(runtime_of(request), principal, case_id, body)
    return _fact(AllegationAccepted, "allegation_id", fact)


@_created("/interim-measures", MeasureAccepted)
async def record_interim_measure(
    case_id: UUID, body: InterimMeasureInput, request: Request, principal: Staff
) -> Any:
    """Publish `investigation.interim_measure_recorded`."""
    fact = await investigations.record_interim_measure(
        runtime_of(request), principal, case_id, body
    )
    return _fact(MeasureAccepted, "measure_id", fact)


@_created("/interviews", InterviewAccepted)
async def schedule_interview(
    case_id: UUID, body: InterviewInput, request: Request, principal: Staff
) -> Any:
    """Publish `investigation.interview_scheduled`; the interviewer is the caller."""
    fact = await investigations.schedule_interview(runtime_of(request), principal, case_id, body)
    return _fact(InterviewAccepted, "interview_id", fact)


@_created("/statements", StatementAccepted)
async def record_statement(
    case_id: UUID, body: StatementInput, request: Request, principal: Staff
) -> Any:
    """Publish `investigation.statement_recorded` (awaiting the person's review)."""
    fact = await investigations.record_statement(runtime_of(request), principal, case_id, body)
    return _fact(StatementAccepted, "statement_id", fact)


EVIDENCE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": EvidenceItemInput.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "description", "source"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "description": {"type": "string", "maxLength": 2000},
                        "source": {"type": "string", "maxLength": 500},
                        "sha256": {"type": "string"},
                        "allegation_ids": {"type": "array", "items": {"type": "string"}},
                    },
                }
            },
        },
    }
}


def _invalid_body(exc: ValidationError) -> RequestValidationError:
    return RequestValidationError(
        [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
    )


async def _evidence_input(request: Request) -> tuple[EvidenceItemInput, Any]:
    """The evidence body: JSON (an item) or multipart (a file and its fields)."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    upload = None
    if kind == "multipart/form-data":
        try:
            form = await request.form(max_files=2, max_fields=60)
        except Exception as exc:  # malformed multipart, too many parts
            raise Refused("invalid", f"body: unreadable form: {exc}") from None
        raw: dict[str, Any] = {
            key: form.get(key)
            for key in ("description", "source", "sha256")
            if isinstance(form.get(key), str)
        }
        raw["allegation_ids"] = [v for v in form.getlist("allegation_ids") if isinstance(v, str)]
        file = form.get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            raise Refused("invalid", "file: choose the file to add to the evidence log")
        content = await file.read(actions.MAX_ATTACHMENT_BYTES + 1)
        upload = actions.attachment(file.filename, file.content_type, content)
    elif kind == "application/json":
        try:
            raw = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise Refused("invalid", "body: not valid JSON") from None
        if not isinstance(raw, dict):
            raise Refused("invalid", "body: must be a JSON object")
    else:
        raise Refused("invalid", "body: send JSON (an item) or multipart/form-data (a file)")
    try:
        return EvidenceItemInput.model_validate(raw), upload
    except ValidationError as exc:
        raise _invalid_body(exc) from None


@router.post(
    BASE + "/evidence",
    status_code=status.HTTP_201_CREATED,
    response_model=EvidenceAccepted,
    responses={**RESPONSES, 413: {"description": "the file is too large"}},
    openapi_extra=EVIDENCE_BODY,
)
async def add_evidence(case_id: UUID, request: Request, principal: Staff) -> Any:
    """Publish `investigation.evidence_added`: a file (stored as the case's evidence, its
    SHA-256 computed here) or an item (description, source, optional sha256)."""
    body, upload = await _evidence_input(request)
    fact = await investigations.add_evidence(runtime_of(request), principal, case_id, body, upload)
    return _fact(EvidenceAccepted, "evidence_id", fact)


@_created("/findings", FindingAccepted)
async def record_finding(
    case_id: UUID, body: FindingInput, request: Request, principal: Staff
) -> Any:
    """Publish `investigation.finding_recorded` (it supersedes the allegation's last)."""
    fact = await investigations.record_finding(runtime_of(request), principal, case_id, body)
    return _fact(FindingAccepted, "finding_id", fact)


@_created("/outcome", OutcomeAccepted)
async def decide_outcome(
    case_id: UUID, body: OutcomeInput, request: Request, principal: Staff
) -> Any:
    """Publish `case.outcome_decided` (every allegation needs a finding: 409 naming the
    ones missing)."""
    fact = await investigation_outcome.decide_outcome(runtime_of(request), principal, case_id, body)
    return _fact(OutcomeAccepted, "outcome_id", fact)


@router.post(
    BASE + "/outcome/approval",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OutcomeAccepted,
    responses=RESPONSES,
)
async def request_outcome_approval(case_id: UUID, request: Request, principal: Staff) -> Any:
    """Publish `case.outcome_approval_requested` with the caller as approver; routing
    answers case.outcome_approved or refuses (the outcome then shows its reason)."""
    fact = await investigation_outcome.request_outcome_approval(
        runtime_of(request), principal, case_id
    )
    return _fact(OutcomeAccepted, "outcome_id", fact)


@router.post(
    BASE + "/appeal/decision",
    status_code=status.HTTP_201_CREATED,
    response_model=FactAccepted,
    responses=RESPONSES,
)
async def decide_appeal(
    case_id: UUID, body: AppealDecisionInput, request: Request, principal: Staff
) -> Any:
    """Publish `case.appeal_decided` (the case's appeal hearer only)."""
    fact = await investigation_outcome.decide_appeal(runtime_of(request), principal, case_id, body)
    return FactAccepted(**_accepted(fact.accepted).model_dump(), fact_id=fact.fact_id)


@router.get(BASE, responses=RESPONSES)
async def staff_investigation(case_id: UUID, request: Request, principal: Staff) -> Any:
    """Everything recorded on the investigation (application/investigation_views.py)."""
    return await investigation_views.staff_investigation(
        runtime_of(request), principal, case_id, client_of(request), view="api:investigation"
    )


# --- The parties ---------------------------------------------------------------------------


@router.get(BASE + "/mine", responses={404: {"description": "not a party to the case"}})
async def my_investigation(case_id: UUID, request: Request, principal: Caller) -> Any:
    """What concerns the caller as complainant or respondent (see
    application/investigation_parties.py)."""
    return await investigation_parties.my_investigation(runtime_of(request), principal, case_id)


@router.post(
    BASE + "/statements/{statement_id}/review",
    status_code=status.HTTP_201_CREATED,
    response_model=ReviewAccepted,
    responses=RESPONSES,
)
async def review_statement(
    case_id: UUID,
    statement_id: UUID,
    body: StatementReviewInput,
    request: Request,
    principal: Caller,
) -> ReviewAccepted:
    """Publish `investigation.statement_reviewed` (the person the statement is from)."""
    event_id = await investigation_parties.review_statement(
        runtime_of(request), principal, case_id, statement_id, body
    )
    return ReviewAccepted(case_id=case_id, statement_id=statement_id, event_id=event_id)


@router.post(
    BASE + "/appeal",
    status_code=status.HTTP_201_CREATED,
    response_model=AppealAccepted,
    responses=RESPONSES,
)
async def lodge_appeal(
    case_id: UUID, body: AppealInput, request: Request, principal: Caller
) -> AppealAccepted:
    """Publish `case.appeal_lodged` while the appeal window is open (409 otherwise)."""
    appeal_id, event_id = await investigation_parties.lodge_appeal(
        runtime_of(request), principal, case_id, body
    )
    return AppealAccepted(case_id=case_id, appeal_id=appeal_id, event_id=event_id)
