"""Intake's HTTP API: every call acts as a principal (bearer token), except anonymous reports.

- POST /cases: an employee raises a case for themselves; hr_agent/hr_manager on behalf.
- GET /cases, /cases/{id}: my cases; one case if the caller may read it (404 otherwise).
- Documents (the files on a case, adding and opening them): documents_http.py.
- POST /cases/{id}/messages: the reporter or staff who may read the case add a message.
- POST /phone-calls: an agent logs a call as a case (channel phone).
- POST /anonymous-reports: no token; returns the reference and a secret key once. The key
  (header X-Report-Key) then reads the report's status and updates and posts replies.
- Agent actions (202; routing decides, the case view follows its events):
  POST /cases/{id}/notes (hr_agent, hr_manager, investigator), /status (same roles),
  /category (hr_agent, hr_manager), /assignment (hr_manager), /injury (staff: a later
  decision on a workplace injury's facts).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, Response, status
from pydantic import BaseModel

from services.intake.adapters import sql
from services.intake.application import (
    actions,
    agent_actions,
    case_page,
    injury_facts,
    respondent_resolution,
)
from services.intake.domain.case import (
    ASSIGNMENT_ROLES,
    CATEGORY_ROLES,
    INJURY_ROLES,
    NOTE_ROLES,
    RESPONDENT_ROLES,
    STATUS_ROLES,
    AgentNote,
    AnonymousReport,
    AssignmentChange,
    InjuryFactsChange,
    NewMessage,
    PhoneCall,
    Recategorisation,
    RespondentResolutionChange,
    StatusChange,
    SubmitCase,
    idempotency_scope,
    reporter_email_refusal,
)
from services.intake.entrypoints.case_page_http import (
    AnonymousReporter,
    RelatedCase,
    ReporterView,
    reporter_view,
)
from services.intake.entrypoints.web import (
    RefusalRoute,
    client_of,
    runtime_of,
)
from shared.auth import Principal, current_principal, require_roles
from shared.uow import unit_of_work

router = APIRouter(prefix="/api/v1", tags=["cases"], route_class=RefusalRoute)

Caller = Annotated[Principal, Depends(current_principal)]
# Role checks as dependencies run before the body is parsed: a caller without the role
# gets 403 whatever they send (agent_actions checks again for the portal's sake).
NoteTaker = Annotated[Principal, Depends(require_roles(*NOTE_ROLES))]
StatusChanger = Annotated[Principal, Depends(require_roles(*STATUS_ROLES))]
Categoriser = Annotated[Principal, Depends(require_roles(*CATEGORY_ROLES))]
Assigner = Annotated[Principal, Depends(require_roles(*ASSIGNMENT_ROLES))]
InjuryRecorder = Annotated[Principal, Depends(require_roles(*INJURY_ROLES))]
RespondentResolver = Annotated[Principal, Depends(require_roles(*RESPONDENT_ROLES))]
ReportKey = Annotated[str, Header(alias="X-Report-Key", min_length=8, max_length=200)]


class SubmitAccepted(BaseModel):
    case_id: UUID
    reference: str
    status: str


class AnonymousAccepted(BaseModel):
    reference: str
    status: str
    # Shown once: only its hash is stored, nobody can recover it.
    secret_key: str


class Assignment(BaseModel):
    team: str | None
    owner_id: str | None
    owner_name: str | None
    # True while nobody could be assigned automatically (every candidate conflicted out):
    # an HR manager must assign a person (case.assignment_needed).
    needs_person: bool = False


class Sla(BaseModel):
    first_response_due: datetime | None
    resolution_due: datetime | None


class MessageView(BaseModel):
    message_id: UUID
    channel: str
    sender_role: str
    body: str
    attachments: list[str]
    received_at: datetime


class NoteView(BaseModel):
    note_id: UUID
    body: str
    internal: bool
    created_at: datetime
    author_id: str | None  # staff views only
    author_name: str | None = None  # staff views only: the author by name (else the id)


class AttachmentView(BaseModel):
    attachment_id: UUID
    filename: str
    content_type: str
    size: int
    sha256: str


class CaseSummary(BaseModel):
    case_id: UUID
    reference: str
    status: str
    channel: str
    subject: str
    category: str | None
    submitted_at: datetime
    updated_at: datetime


class CaseList(BaseModel):
    cases: list[CaseSummary]


class LinkedCase(BaseModel):
    """A case linked by a follow-up (a reply to a case closed too long ago)."""

    case_id: UUID
    reference: str
    relation: Literal["follows_up", "followed_up_by"]


class RespondentView(BaseModel):
    """A respondent as named, and what routing's directory made of it (staff only)."""

    # Its place among the case's respondents: resolve an unresolved one at
    # POST /cases/{case_id}/respondents/{position}/resolution.
    position: int
    employee_id: str | None
    name: str | None
    email: str | None
    # pending: routing has not answered yet; resolved: `resolved_employee_id` is who it
    # is; unresolved: a person must resolve it (`problem`: not_found or ambiguous).
    state: Literal["pending", "resolved", "unresolved"]
    resolved_employee_id: str | None
    matched_by: str | None
    problem: str | None


class InjuryView(BaseModel):
    date_of_injury: date | None = None
    serious: bool = False
    suitable_employment_available: bool | None = None


class ConferenceView(BaseModel):
    required_at: datetime
    reasons: list[str]
    due_by: datetime | None


class RespondentRelatedCase(BaseModel):
    case_id: UUID
    reference: str
    status: str
    relation: Literal["same_respondent"] = "same_respondent"


class StatusUpdateView(BaseModel):
    kind: str  # in_progress, waiting_on_employee, resolved, closed, reopened
    reason: str | None
    occurred_at: datetime


class CaseView(BaseModel):
    case_id: UUID
    reference: str
    status: str
    channel: str
    subject: str
    category: str | None
    sensitivity: str | None
    priority: str | None
    sla: Sla
    assignment: Assignment
    submitted_at: datetime
    routed_at: datetime | None
    assigned_at: datetime | None
    updated_at: datetime
    anonymous: bool
    logged_by: str | None
    attachments: list[AttachmentView]
    messages: list[MessageView]
    # Reporters see only the notes shared with them; staff see internal ones too.
    notes: list[NoteView]
    linked_cases: list[LinkedCase] = []
    # The injury facts as they stand (the reporter sees their own).
    injury: InjuryView | None = None
    conference: ConferenceView | None = None
    # Staff only (null for the reporter): who the case is about, and other cases naming them.
    respondents: list[RespondentView] | None = None
    respondents_unresolved: int | None = None
    related_by_respondent: list[RespondentRelatedCase] | None = None
    # Staff who see the case as staff only (never the reporter or another employee):
    reporter: ReporterView | AnonymousReporter | None = None
    related_cases: list[RelatedCase] = []
    # The status changes the reporter is told of, with staff's reason where it is for them.
    status_updates: list[StatusUpdateView] = []


class AnonymousView(BaseModel):
    """What an anonymous reporter sees: status and the conversation, no staff names."""

    reference: str
    status: str
    category: str | None
    submitted_at: datetime
    updated_at: datetime
    messages: list[MessageView]
    notes: list[NoteView]
    # Status changes the reporter is told of, with staff's reason where it is meant for them.
    status_updates: list[StatusUpdateView] = []


class MessageAccepted(BaseModel):
    message_id: UUID


class ActionAccepted(BaseModel):
    """The request is recorded and will be published; routing's events update the case."""

    case_id: UUID
    reference: str
    event_id: UUID
    event_type: str


class NoteAccepted(ActionAccepted):
    note_id: UUID


@router.post(
    "/cases",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmitAccepted,
    responses={
        403: {"description": "an employee raising a case for someone else"},
        409: {"description": "Idempotency-Key reused with a different request"},
        422: {
            "description": "invalid body; also `reporter.email` other than the address on"
            " the caller's record (the token's `email` claim) when raising for themselves"
        },
    },
)
async def submit_case(
    body: SubmitCase,
    request: Request,
    response: Response,
    principal: Caller,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> SubmitAccepted:
    """Record the case and its `case.submitted` event in one transaction (outbox)."""
    refusal = reporter_email_refusal(principal, body.reporter)
    if refusal:
        # The shape of FastAPI's own validation errors, naming the field.
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            [{"loc": ["body", "reporter", "email"], "msg": refusal, "type": "value_error"}],
        )
    key = idempotency_scope(principal, idempotency_key) if idempotency_key else None
    submitted = await actions.submit_case(
        unit_of_work(runtime_of(request)),
        principal,
        body,
        channel="api",
        idempotency_key=key,
    )
    if submitted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return SubmitAccepted(
        case_id=submitted.case_id, reference=submitted.reference, status=submitted.status
    )


@router.get("/cases", response_model=CaseList)
async def my_cases(request: Request, principal: Caller) -> CaseList:
    """Cases I reported, or (staff) logged or raised on someone's behalf."""
    rows = await actions.my_cases(runtime_of(request), principal)
    return CaseList(cases=[CaseSummary.model_validate(row) for row in rows])


@router.get("/cases/{case_id}", response_model=CaseView)
async def read_case(case_id: UUID, request: Request, principal: Caller) -> CaseView:
    runtime = runtime_of(request)
    row = await actions.readable_case(runtime, principal, case_id, client_of(request), view="api")
    found = await actions.details(runtime.pool, row, principal)
    extras = None
    if found.staff_view:  # who raised it, history, related cases: staff with need-to-know
        extras = await case_page.staff_extras(runtime.pool, found, principal)
    view = _view(found, extras)
    updates = await sql.list_reporter_status_updates(runtime.pool, case_id)
    return view.model_copy(
        update={"status_updates": [StatusUpdateView.model_validate(u) for u in updates]}
    )


@router.post(
    "/cases/{case_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageAccepted,
    responses={
        409: {
            "description": "the case is closed (staff reopen it first), or its personal data"
            " was erased (data-subject erasure or retention): it takes no new messages"
        }
    },
)
async def post_message(
    case_id: UUID, body: NewMessage, request: Request, principal: Caller
) -> MessageAccepted:
    """Add a message to the case (its reporter, or staff who may read it); 409 with the
    reason when the case is closed to staff or erased (application/erased_cases.py)."""
    message_id = await actions.post_message(
        runtime_of(request),
        principal,
        case_id,
        client_of(request),
        body=body.body,
        channel="api",
        view="api:message",
    )
    return MessageAccepted(message_id=message_id)


ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "the caller lacks the role, or reported the case themselves"},
    404: {"description": "no such case, or the caller may not read it"},
    409: {"description": "the case's status does not allow the request (e.g. closed)"},
}


def _accepted(accepted: agent_actions.ActionAccepted) -> ActionAccepted:
    return ActionAccepted(
        case_id=accepted.case_id,
        reference=accepted.reference,
        event_id=accepted.event_id,
        event_type=accepted.event_type,
    )


@router.post(
    "/cases/{case_id}/notes",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=NoteAccepted,
    responses=ACTION_RESPONSES,
)
async def add_note(
    case_id: UUID, body: AgentNote, request: Request, principal: NoteTaker
) -> NoteAccepted:
    """Store a note (internal unless `internal: false`) and publish `case.note_added`."""
    accepted = await agent_actions.add_note(runtime_of(request), principal, case_id, body)
    assert accepted.note_id is not None
    return NoteAccepted(**_accepted(accepted).model_dump(), note_id=accepted.note_id)


@router.post(
    "/cases/{case_id}/status",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ActionAccepted,
    responses=ACTION_RESPONSES,
)
async def request_status(
    case_id: UUID, body: StatusChange, request: Request, principal: StatusChanger
) -> ActionAccepted:
    """Publish `case.status_change_requested`; the status shows once routing applies it."""
    return _accepted(
        await agent_actions.request_status(runtime_of(request), principal, case_id, body)
    )


@router.post(
    "/cases/{case_id}/category",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ActionAccepted,
    responses=ACTION_RESPONSES,
)
async def request_category(
    case_id: UUID, body: Recategorisation, request: Request, principal: Categoriser
) -> ActionAccepted:
    """Publish `case.recategorisation_requested`; routing re-runs priority and SLA."""
    return _accepted(
        await agent_actions.request_category(runtime_of(request), principal, case_id, body)
    )


@router.post(
    "/cases/{case_id}/assignment",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ActionAccepted,
    responses=ACTION_RESPONSES,
)
async def request_assignment(
    case_id: UUID, body: AssignmentChange, request: Request, principal: Assigner
) -> ActionAccepted:
    """Publish `case.assignment_requested` (HR managers); routing checks conflicts."""
    return _accepted(
        await agent_actions.request_assignment(runtime_of(request), principal, case_id, body)
    )


@router.post(
    "/cases/{case_id}/injury",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ActionAccepted,
    responses=ACTION_RESPONSES,
)
async def record_injury(
    case_id: UUID, body: InjuryFactsChange, request: Request, principal: InjuryRecorder
) -> ActionAccepted:
    """Record a later decision on the injury facts (only the fields given change) and
    publish `case.injury_facts_recorded`; routing requires a case conference if the facts
    now call for one and none was required yet."""
    return _accepted(
        await injury_facts.record_injury_facts(runtime_of(request), principal, case_id, body)
    )


@router.post(
    "/cases/{case_id}/respondents/{position}/resolution",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ActionAccepted,
    responses=ACTION_RESPONSES,
)
async def resolve_respondent(
    case_id: UUID,
    position: Annotated[int, Path(ge=0, le=1000)],
    body: RespondentResolutionChange,
    request: Request,
    principal: RespondentResolver,
) -> ActionAccepted:
    """Say which employee a flagged respondent (`state: unresolved`) is, and publish
    `case.respondent_resolution_requested`; routing checks the id against its directory,
    answers with `case.respondents_resolved` (or `case.request_refused`) and reassigns the
    case if its owner is now the respondent or in their management chain. 404 also when the
    case names nobody at `position`; 409 when that respondent is not flagged."""
    return _accepted(
        await respondent_resolution.request_resolution(
            runtime_of(request), principal, case_id, position, body
        )
    )


@router.post("/phone-calls", status_code=status.HTTP_202_ACCEPTED, response_model=SubmitAccepted)
async def log_phone_call(
    call: PhoneCall,
    request: Request,
    principal: Annotated[Principal, Depends(require_roles("hr_agent", "hr_manager"))],
) -> SubmitAccepted:
    opened = await actions.log_phone_call(unit_of_work(runtime_of(request)), principal, call)
    return SubmitAccepted(case_id=opened.case_id, reference=opened.reference, status=opened.status)


@router.post(
    "/anonymous-reports", status_code=status.HTTP_201_CREATED, response_model=AnonymousAccepted
)
async def anonymous_report(
    report: AnonymousReport, request: Request, response: Response
) -> AnonymousAccepted:
    """No token is read even if one is sent: nothing ties the report to a person."""
    opened, key = await actions.raise_anonymous(
        unit_of_work(runtime_of(request)), report, channel="api"
    )
    response.headers["Cache-Control"] = "no-store"
    return AnonymousAccepted(reference=opened.reference, status=opened.status, secret_key=key)


@router.get("/anonymous-reports/{reference}", response_model=AnonymousView)
async def anonymous_status(reference: str, request: Request, key: ReportKey) -> AnonymousView:
    runtime = runtime_of(request)
    case = await actions.anonymous_case(runtime, reference, key, client_of(request))
    return anonymous_view(
        case,
        await sql.list_messages(runtime.pool, case["case_id"]),
        await sql.list_notes(runtime.pool, case["case_id"], include_internal=False),
        await sql.list_reporter_status_updates(runtime.pool, case["case_id"]),
    )


@router.post(
    "/anonymous-reports/{reference}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageAccepted,
)
async def anonymous_message(
    reference: str, body: NewMessage, request: Request, key: ReportKey
) -> MessageAccepted:
    runtime = runtime_of(request)
    case = await actions.anonymous_case(runtime, reference, key, client_of(request))
    message_id = await actions.anonymous_reply(runtime, case, body=body.body, channel="api")
    return MessageAccepted(message_id=message_id)


def anonymous_view(
    case: dict[str, Any],
    messages: list[dict[str, Any]],
    notes: list[dict[str, Any]],
    status_updates: list[dict[str, Any]] | None = None,
) -> AnonymousView:
    return AnonymousView(
        reference=case["reference"],
        status=case["status"],
        category=case["category"],
        submitted_at=case["submitted_at"],
        updated_at=case["updated_at"],
        messages=[MessageView.model_validate(m) for m in messages],
        notes=[_note(n, staff=False) for n in notes],
        status_updates=[StatusUpdateView.model_validate(u) for u in status_updates or []],
    )


def _note(note: dict[str, Any], *, staff: bool, names: dict[str, str] | None = None) -> NoteView:
    # Which member of staff wrote a note is for staff; the reporter sees "HR".
    if not staff:
        return NoteView.model_validate({**note, "author_id": None, "author_name": None})
    author = case_page.author_name(note, names or {})
    return NoteView.model_validate({**note, "author_name": author})


def _view(found: actions.CaseDetails, extras: case_page.StaffExtras | None = None) -> CaseView:
    row = found.case
    names = extras.names if extras else {}
    return CaseView(
        case_id=row["case_id"],
        reference=row["reference"],
        status=row["status"],
        channel=row["channel"],
        subject=row["subject"],
        category=row["category"],
        sensitivity=row["sensitivity"],
        priority=row["priority"],
        sla=Sla(first_response_due=row["first_response_due"], resolution_due=row["resolution_due"]),
        assignment=Assignment(
            team=row["team"],
            owner_id=row["owner_id"],
            owner_name=row["owner_name"],
            needs_person=row.get("assignment_needed") is not None,
        ),
        submitted_at=row["submitted_at"],
        routed_at=row["routed_at"],
        assigned_at=row["assigned_at"],
        updated_at=row["updated_at"],
        anonymous=row["anonymous"],
        logged_by=row["logged_by"],
        attachments=[AttachmentView.model_validate(a) for a in found.attachments],
        messages=[MessageView.model_validate(m) for m in found.messages],
        notes=[_note(n, staff=found.staff_view, names=names) for n in found.notes],
        linked_cases=[LinkedCase.model_validate(c) for c in found.linked_cases],
        injury=InjuryView.model_validate(row["injury"]) if row.get("injury") else None,
        conference=(
            ConferenceView(
                required_at=row["conference_required_at"],
                reasons=row["conference_reasons"] or [],
                due_by=row["conference_due_by"],
            )
            if row.get("conference_required_at")
            else None
        ),
        respondents=([respondent_view(r) for r in found.respondents] if found.staff_view else None),
        respondents_unresolved=row.get("respondents_unresolved") if found.staff_view else None,
        related_by_respondent=(
            [RespondentRelatedCase.model_validate(c) for c in found.related_by_respondent]
            if found.staff_view
            else None
        ),
        reporter=reporter_view(extras.reporter) if extras else None,
        related_cases=[RelatedCase.model_validate(c) for c in extras.related] if extras else [],
    )


def respondent_view(row: dict[str, Any]) -> RespondentView:
    state: Literal["pending", "resolved", "unresolved"] = (
        "pending"
        if row["resolved_at"] is None
        else "resolved"
        if row["resolved_employee_id"]
        else "unresolved"
    )
    return RespondentView.model_validate({**row, "state": state})
