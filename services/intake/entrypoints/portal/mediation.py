"""Independent case management in the portal. Plain forms, no JavaScript.

- /portal/cases/{id}/mediation: the case manager's page (staff who may read the case see
  it; privileged notes only for the case manager role holder): assessments, ground rules,
  meetings, the written agreement, obligations and follow-ups, with a form for each door.
- /portal/cases/{id}/mediation/mine: a party's page (mediation_party.py).

Each form posts on its own with the page's CSRF token; bad input re-renders the page with
the messages beside the form (422), a refusal of the process's state re-renders it with
the reason (409); other refusals become the error page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from services.intake.adapters import documents as files
from services.intake.application import mediation
from services.intake.application.actions import MAX_ATTACHMENTS
from services.intake.application.cases import NewAttachment
from services.intake.application.conferences import default_time_zone
from services.intake.domain.mediation import (
    OBLIGATION_LABELS,
    PARTY_LABELS,
    AgreementInput,
    AssessmentInput,
    GroundRulesInput,
    MeetingInput,
    MeetingRecordInput,
    ObligationMetInput,
)
from services.intake.domain.refusals import Refused
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.portal.pages import (
    field_errors,
    guarded,
    portal_router,
    render,
    see_other,
    sign_in_redirect,
    text,
    uploads,
)
from services.intake.entrypoints.web import as_http_error, client_of, runtime_of
from shared.auth import Principal

router = portal_router()
TERM_ROWS = 5
MAX_FORM_FIELDS = 120
DONE = {
    "assessment": "Assessment recorded.",
    "ground_rules": "Ground rules proposed. Each party accepts them on their own page.",
    "meeting": "Meeting scheduled.",
    "record": "Meeting recorded.",
    "agreement": "Agreement drafted. Each party accepts this version on their own page.",
    "met": "Obligation recorded as met.",
}
AGREEMENT_STATES = {
    "draft": "Draft: waiting for both parties",
    "accepted_by_one": "Accepted by one party",
    "accepted_by_both": "Accepted by both parties: coming into force",
    "in_force": "In force",
}


async def _form(request: Request, *, max_files: int = 0) -> FormData:
    try:
        form = await request.form(max_files=max_files, max_fields=MAX_FORM_FIELDS)
    except Exception as exc:  # malformed body, too many fields
        raise HTTPException(400, f"unreadable form: {exc}") from exc
    token = form.get(session.CSRF_FIELD)
    session.check_csrf(request, token if isinstance(token, str) else None)
    return form


def lines(value: str) -> list[str]:
    """A textarea's non-blank lines (one item per line)."""
    return [line.strip() for line in value.splitlines() if line.strip()]


def local_instant(value: str, zone: str) -> str | None:
    """A datetime-local value read in `zone`, as ISO 8601 with its offset (the API's
    shape); the text itself when it cannot be read (the model then names the field)."""
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
        if naive.tzinfo is not None:
            return naive.isoformat()
        return naive.replace(tzinfo=ZoneInfo(zone)).isoformat()
    except (ValueError, ZoneInfoNotFoundError):
        return value


async def _render(
    request: Request,
    principal: Principal,
    case_id: UUID,
    *,
    form_key: str | None = None,
    errors: dict[str, str] | None = None,
    action_error: str | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    runtime = runtime_of(request)
    case, shown = await mediation.staff_view(
        runtime, principal, case_id, client_of(request), view="portal:mediation"
    )
    case_files = await files.list_documents(runtime.pool, case_id, staff_view=True)
    return render(
        request,
        "mediation.html.j2",
        status_code,
        principal=principal,
        case=case,
        m=shown,
        case_files=case_files,
        zone=await default_time_zone(runtime, case_id),
        party_labels=PARTY_LABELS,
        obligation_labels=OBLIGATION_LABELS,
        agreement_states=AGREEMENT_STATES,
        term_rows=range(TERM_ROWS),
        form_key=form_key,
        errors=errors or {},
        action_error=action_error,
        values=values or {},
        done=DONE.get(request.query_params.get("done", "")),
    )


@router.get("/portal/cases/{case_id}/mediation")
async def mediation_page(case_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)
    return await guarded(request, lambda: _render(request, principal, case_id))


Read = Callable[[FormData, Request, UUID], Awaitable[dict[str, Any]]]
Run = Callable[[Principal, BaseModel], Awaitable[object]]


async def _post(
    request: Request,
    case_id: UUID,
    key: str,
    model: type[BaseModel],
    read: Read,
    run: Run,
    *,
    max_files: int = 0,
) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        form = await _form(request, max_files=max_files)
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        body = await read(form, request, case_id)
        try:
            parsed = model.model_validate(body)
        except ValidationError as exc:
            return await _render(
                request, principal, case_id, form_key=key, errors=field_errors(exc),
                values=values, status_code=422,
            )  # fmt: skip
        try:
            await run(principal, parsed)
        except (HTTPException, Refused) as caught:
            refusal = as_http_error(caught)
            if refusal.status_code not in (403, 409, 422):
                raise refusal from None
            return await _render(
                request, principal, case_id, form_key=key, action_error=str(refusal.detail),
                values=values, status_code=refusal.status_code,
            )  # fmt: skip
        return see_other(f"/portal/cases/{case_id}/mediation?done={key}#{key}")

    return await guarded(request, page)


@router.post("/portal/cases/{case_id}/mediation/assessments")
async def record_assessment(case_id: UUID, request: Request) -> Response:
    """The assessment form; its files (at most 5) are stored on the case with it."""
    files: dict[str, tuple[NewAttachment, ...]] = {}

    async def read(form: FormData, _: Request, __: UUID) -> dict[str, Any]:
        files["uploads"] = await uploads(form, "files")
        return {
            "party": {
                "role": text(form, "party_role"),
                "employee_id": text(form, "employee_id").strip(),
                "name": text(form, "name").strip(),
                "email": text(form, "email").strip(),
            },
            "account": text(form, "account"),
            "desired_outcomes": lines(text(form, "desired_outcomes")),
            "documents": [d for d in form.getlist("documents") if isinstance(d, str)],
        }

    async def run(principal: Principal, parsed: BaseModel) -> object:
        assert isinstance(parsed, AssessmentInput)
        return await mediation.record_assessment(
            runtime_of(request), principal, case_id, parsed, files.get("uploads", ())
        )

    return await _post(
        request, case_id, "assessment", AssessmentInput, read, run,
        max_files=MAX_ATTACHMENTS + 1,
    )  # fmt: skip


@router.post("/portal/cases/{case_id}/mediation/ground-rules")
async def propose_ground_rules(case_id: UUID, request: Request) -> Response:
    async def read(form: FormData, _: Request, __: UUID) -> dict[str, Any]:
        return {"rules": lines(text(form, "rules"))}

    async def run(principal: Principal, parsed: BaseModel) -> object:
        assert isinstance(parsed, GroundRulesInput)
        return await mediation.propose_ground_rules(runtime_of(request), principal, case_id, parsed)

    return await _post(request, case_id, "ground_rules", GroundRulesInput, read, run)


@router.post("/portal/cases/{case_id}/mediation/meetings")
async def schedule_meeting(case_id: UUID, request: Request) -> Response:
    async def read(form: FormData, req: Request, cid: UUID) -> dict[str, Any]:
        zone = text(form, "time_zone").strip() or await default_time_zone(runtime_of(req), cid)
        return {
            "scheduled_for": local_instant(text(form, "scheduled_for"), zone),
            "duration_minutes": text(form, "duration_minutes") or None,
            "time_zone": zone,
            "location": text(form, "location").strip() or None,
            "video_link": text(form, "video_link").strip() or None,
        }

    async def run(principal: Principal, parsed: BaseModel) -> object:
        assert isinstance(parsed, MeetingInput)
        return await mediation.schedule_meeting(runtime_of(request), principal, case_id, parsed)

    return await _post(request, case_id, "meeting", MeetingInput, read, run)


@router.post("/portal/cases/{case_id}/mediation/meetings/{meeting_id}/record")
async def record_meeting(case_id: UUID, meeting_id: UUID, request: Request) -> Response:
    async def read(form: FormData, _: Request, __: UUID) -> dict[str, Any]:
        zone = text(form, "time_zone") or "UTC"
        return {
            "held_at": local_instant(text(form, "held_at"), zone),
            "discussed": text(form, "discussed"),
            "proposals": lines(text(form, "proposals")),
            "privileged_notes": text(form, "privileged_notes").strip() or None,
        }

    async def run(principal: Principal, parsed: BaseModel) -> object:
        assert isinstance(parsed, MeetingRecordInput)
        return await mediation.record_meeting(
            runtime_of(request), principal, case_id, meeting_id, parsed
        )

    return await _post(request, case_id, "record", MeetingRecordInput, read, run)


@router.post("/portal/cases/{case_id}/mediation/agreement")
async def draft_agreement(case_id: UUID, request: Request) -> Response:
    async def read(form: FormData, _: Request, __: UUID) -> dict[str, Any]:
        terms = []
        for row in range(TERM_ROWS):
            term_text = text(form, f"term_{row}_text").strip()
            if not term_text:
                continue
            terms.append(
                {
                    "text": term_text,
                    "owner_role": text(form, f"term_{row}_owner_role") or None,
                    "due_on": text(form, f"term_{row}_due_on") or None,
                }
            )
        return {"terms": terms}

    async def run(principal: Principal, parsed: BaseModel) -> object:
        assert isinstance(parsed, AgreementInput)
        return await mediation.draft_agreement(runtime_of(request), principal, case_id, parsed)

    return await _post(request, case_id, "agreement", AgreementInput, read, run)


@router.post("/portal/cases/{case_id}/mediation/agreement/obligations/{term_id}/met")
async def obligation_met(case_id: UUID, term_id: UUID, request: Request) -> Response:
    async def read(form: FormData, _: Request, __: UUID) -> dict[str, Any]:
        return {"met_on": text(form, "met_on") or None, "note": text(form, "note").strip() or None}

    async def run(principal: Principal, parsed: BaseModel) -> object:
        assert isinstance(parsed, ObligationMetInput)
        return await mediation.obligation_met(
            runtime_of(request), principal, case_id, term_id, parsed
        )

    return await _post(request, case_id, "met", ObligationMetInput, read, run)
