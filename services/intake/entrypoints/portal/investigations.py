"""The investigator's page: /portal/cases/{id}/investigation, one section per part of the
investigation (allegations, interim measures, interviews, statements, evidence log,
findings, outcome and approval, appeal) and a plain form for each (no JavaScript).

Each form posts on its own with the page's CSRF token to the same use case as the JSON
API (application/investigations.py): bad input re-renders the page with the messages
(422), a rule of the process or stage re-renders it with the reason (409); other refusals
(403, 404) become the error page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from services.intake.application import (
    actions,
    investigation_outcome,
    investigation_views,
    investigations,
)
from services.intake.domain.investigations import (
    ALLEGATION_LABELS,
    APPROVAL_LABELS,
    FINDING_LABELS,
    REVIEW_LABELS,
    AllegationInput,
    AppealDecisionInput,
    EvidenceItemInput,
    FindingInput,
    InterimMeasureInput,
    InterviewInput,
    OutcomeInput,
    StatementInput,
)
from services.intake.domain.refusals import Refused
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.portal.pages import (
    csrf_form,
    field_errors,
    guarded,
    portal_router,
    render,
    see_other,
    sign_in_redirect,
    text,
)
from services.intake.entrypoints.web import client_of, runtime_of
from shared.auth import Principal

router = portal_router()
OUTCOME_ROWS = 4
DONE = {
    "allegation": "Allegation recorded.",
    "measure": "Interim measure recorded.",
    "interview": "Interview scheduled.",
    "statement": "Statement recorded. The person confirms or corrects it in their portal.",
    "evidence": "Added to the evidence log.",
    "finding": "Finding recorded.",
    "outcome": "Outcome decided. It needs a second person's approval.",
    "approval": "Approval requested. The outcome shows as approved once routing accepts it.",
    "appeal": "Appeal decision recorded.",
}
Call = Callable[[Principal, UUID], Awaitable[Any]]


def _page(case_id: UUID) -> str:
    return f"/portal/cases/{case_id}/investigation"


async def render_investigation(
    request: Request,
    principal: Principal,
    case_id: UUID,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    failed: str | None = None,
    action_error: str | None = None,
    status_code: int = 200,
) -> Response:
    runtime = runtime_of(request)
    found = await investigation_views.staff_investigation(
        runtime, principal, case_id, client_of(request), view="portal:investigation"
    )
    hearer = found["roles"].get("appeal_hearer")
    return render(
        request,
        "investigation.html.j2",
        status_code,
        principal=principal,
        inv=found,
        allegation_labels=ALLEGATION_LABELS,
        finding_labels=FINDING_LABELS,
        review_labels=REVIEW_LABELS,
        approval_labels=APPROVAL_LABELS,
        names={str(a["allegation_id"]): a for a in found["allegations"]},
        is_hearer=hearer is not None and hearer["staff_id"] == principal.subject,
        pending_appeals=[a for a in found["appeals"] if a["decision"] is None],
        outcome_rows=range(OUTCOME_ROWS),
        done=DONE.get(request.query_params.get("done", "")),
        errors=errors or {},
        values=values or {},
        failed=failed,
        action_error=action_error,
    )


@router.get("/portal/cases/{case_id}/investigation")
async def investigation_page(case_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        return await render_investigation(request, principal, case_id)

    return await guarded(request, page)


def _values(form: FormData) -> dict[str, str]:
    return {k: v[:5000] for k, v in form.items() if isinstance(v, str) and k != session.CSRF_FIELD}


async def _post(
    request: Request,
    case_id: UUID,
    name: str,
    parse: Callable[[FormData], Any],
    call: Callable[[Principal, Any, FormData], Awaitable[Any]],
) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        form = await csrf_form(request)
        try:
            body = parse(form)
        except ValidationError as exc:
            return await render_investigation(
                request,
                principal,
                case_id,
                errors=field_errors(exc),
                values=_values(form),
                failed=name,
                status_code=422,
            )
        except Refused as refused:
            if refused.kind != "invalid":
                raise
            field, _, message = refused.detail.partition(": ")
            return await render_investigation(
                request,
                principal,
                case_id,
                errors={field: message or refused.detail},
                values=_values(form),
                failed=name,
                status_code=422,
            )
        try:
            await call(principal, body, form)
        except Refused as refused:
            if refused.kind not in ("conflict", "invalid"):
                raise
            return await render_investigation(
                request,
                principal,
                case_id,
                action_error=refused.detail,
                values=_values(form),
                failed=name,
                status_code=409 if refused.kind == "conflict" else 422,
            )
        return see_other(f"{_page(case_id)}?done={name}#{name}")

    return await guarded(request, page)


def _blank(form: FormData, name: str) -> str | None:
    return text(form, name).strip() or None


def _ids(form: FormData, name: str = "allegation_ids") -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str) and v]


def _model(model: type[BaseModel], data: dict[str, Any]) -> Any:
    return model.model_validate(data)


def _scheduled_for(form: FormData) -> Any:
    """The datetime-local field read in the form's time zone (UTC when none)."""
    raw = text(form, "scheduled_for")
    zone_name = _blank(form, "time_zone") or "UTC"
    try:
        zone = ZoneInfo(zone_name)
        return datetime.fromisoformat(raw).replace(tzinfo=zone).isoformat()
    except (ValueError, ZoneInfoNotFoundError):
        return raw  # the model names what is wrong with it


@router.post("/portal/cases/{case_id}/investigation/allegations")
async def post_allegation(case_id: UUID, request: Request) -> Response:
    def parse(form: FormData) -> Any:
        return _model(
            AllegationInput,
            {
                "allegation_type": text(form, "allegation_type"),
                "summary": text(form, "summary"),
                "respondent_employee_id": text(form, "respondent_employee_id").strip(),
                "respondent_name": _blank(form, "respondent_name"),
                "occurred_on": _blank(form, "occurred_on"),
            },
        )

    async def call(principal: Principal, body: Any, _: FormData) -> Any:
        return await investigations.record_allegation(runtime_of(request), principal, case_id, body)

    return await _post(request, case_id, "allegation", parse, call)


@router.post("/portal/cases/{case_id}/investigation/interim-measures")
async def post_measure(case_id: UUID, request: Request) -> Response:
    def parse(form: FormData) -> Any:
        applies = [p.strip() for p in text(form, "applies_to").split(",") if p.strip()]
        return _model(
            InterimMeasureInput,
            {
                "kind": text(form, "kind"),
                "description": text(form, "description"),
                "applies_to": applies,
            },
        )

    async def call(principal: Principal, body: Any, _: FormData) -> Any:
        return await investigations.record_interim_measure(
            runtime_of(request), principal, case_id, body
        )

    return await _post(request, case_id, "measure", parse, call)


@router.post("/portal/cases/{case_id}/investigation/interviews")
async def post_interview(case_id: UUID, request: Request) -> Response:
    def parse(form: FormData) -> Any:
        return _model(
            InterviewInput,
            {
                "interviewee": {
                    "role": text(form, "interviewee_role"),
                    "name": text(form, "interviewee_name"),
                    "email": text(form, "interviewee_email").strip(),
                    "employee_id": _blank(form, "interviewee_employee_id"),
                },
                "scheduled_for": _scheduled_for(form),
                "duration_minutes": text(form, "duration_minutes") or "0",
                "time_zone": _blank(form, "time_zone"),
                "location": _blank(form, "location"),
                "video_link": _blank(form, "video_link"),
            },
        )

    async def call(principal: Principal, body: Any, _: FormData) -> Any:
        return await investigations.schedule_interview(
            runtime_of(request), principal, case_id, body
        )

    return await _post(request, case_id, "interview", parse, call)


@router.post("/portal/cases/{case_id}/investigation/statements")
async def post_statement(case_id: UUID, request: Request) -> Response:
    def parse(form: FormData) -> Any:
        return _model(
            StatementInput,
            {
                "interview_id": _blank(form, "interview_id"),
                "given_by_role": text(form, "given_by_role"),
                "given_by_name": text(form, "given_by_name"),
                "given_by_employee_id": _blank(form, "given_by_employee_id"),
                "text": text(form, "text"),
                "allegation_ids": _ids(form),
                "companion_name": _blank(form, "companion_name"),
            },
        )

    async def call(principal: Principal, body: Any, _: FormData) -> Any:
        return await investigations.record_statement(runtime_of(request), principal, case_id, body)

    return await _post(request, case_id, "statement", parse, call)


@router.post("/portal/cases/{case_id}/investigation/evidence")
async def post_evidence(case_id: UUID, request: Request) -> Response:
    def parse(form: FormData) -> Any:
        return _model(
            EvidenceItemInput,
            {
                "description": text(form, "description"),
                "source": text(form, "source"),
                "sha256": _blank(form, "sha256"),
                "allegation_ids": _ids(form),
            },
        )

    async def call(principal: Principal, body: Any, form: FormData) -> Any:
        upload = None
        file = form.get("file")
        if isinstance(file, UploadFile) and file.filename:
            content = await file.read(actions.MAX_ATTACHMENT_BYTES + 1)
            upload = actions.attachment(file.filename, file.content_type, content)
        return await investigations.add_evidence(
            runtime_of(request), principal, case_id, body, upload
        )

    return await _post(request, case_id, "evidence", parse, call)


@router.post("/portal/cases/{case_id}/investigation/findings")
async def post_finding(case_id: UUID, request: Request) -> Response:
    def parse(form: FormData) -> Any:
        return _model(
            FindingInput,
            {
                "allegation_id": text(form, "allegation_id"),
                "finding": text(form, "finding"),
                "reasoning": text(form, "reasoning"),
            },
        )

    async def call(principal: Principal, body: Any, _: FormData) -> Any:
        return await investigations.record_finding(runtime_of(request), principal, case_id, body)

    return await _post(request, case_id, "finding", parse, call)


@router.post("/portal/cases/{case_id}/investigation/outcome")
async def post_outcome(case_id: UUID, request: Request) -> Response:
    def parse(form: FormData) -> Any:
        rows = [
            {
                "kind": text(form, f"action_kind_{i}"),
                "description": text(form, f"action_description_{i}"),
                "concerns_employee_id": _blank(form, f"action_concerns_{i}"),
            }
            for i in range(OUTCOME_ROWS)
            if text(form, f"action_description_{i}").strip()
        ]
        return _model(OutcomeInput, {"summary": text(form, "summary"), "actions": rows})

    async def call(principal: Principal, body: Any, _: FormData) -> Any:
        return await investigation_outcome.decide_outcome(
            runtime_of(request), principal, case_id, body
        )

    return await _post(request, case_id, "outcome", parse, call)


@router.post("/portal/cases/{case_id}/investigation/outcome/approval")
async def post_approval(case_id: UUID, request: Request) -> Response:
    async def call(principal: Principal, body: Any, _: FormData) -> Any:
        return await investigation_outcome.request_outcome_approval(
            runtime_of(request), principal, case_id
        )

    return await _post(request, case_id, "approval", lambda form: None, call)


@router.post("/portal/cases/{case_id}/investigation/appeal/decision")
async def post_appeal_decision(case_id: UUID, request: Request) -> Response:
    def parse(form: FormData) -> Any:
        return _model(
            AppealDecisionInput,
            {"decision": text(form, "decision"), "reasoning": text(form, "reasoning")},
        )

    async def call(principal: Principal, body: Any, _: FormData) -> Any:
        return await investigation_outcome.decide_appeal(
            runtime_of(request), principal, case_id, body
        )

    return await _post(request, case_id, "appeal", parse, call)
