"""Case conferences in the staff portal: plan one, then follow it on its own page (change,
cancel, attendance, summary, actions, consents). Plain forms, no JavaScript.

Each form posts on its own with the page's CSRF token; bad input re-renders the page with
the message beside the field (422), a request the conference's state does not allow
re-renders it with the reason (409); other refusals become the error page. Routing
decides on every request: the page says so, and shows its decisions once they arrive.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import HTTPException, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from services.intake.application import conference_consents, conference_views, conferences
from services.intake.domain.conferences import (
    ROLE_LABELS,
    STATUS_LABELS,
    ActionCompletion,
    ActionReplanning,
    ConferenceCancellation,
    ConferenceChange,
    ConferencePlanInput,
    ConsentInput,
    HoldRecording,
    SummaryRecording,
    local_time,
)
from services.intake.domain.refusals import Refused
from services.intake.entrypoints.portal import conference_forms as forms
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.portal.pages import (
    TEMPLATES,
    guarded,
    portal_router,
    render,
    see_other,
    sign_in_redirect,
)
from services.intake.entrypoints.web import as_http_error, client_of, runtime_of
from shared.auth import Principal

router = portal_router()
# The plan form has fixed participant and outcome rows: more fields than other forms.
MAX_FORM_FIELDS = 200
DONE = {
    "planned": "Conference requested. It shows as planned once routing accepts it.",
    "changed": "Change requested. Everyone invited is told once routing accepts it.",
    "cancelled": "Cancellation requested. Everyone invited is told once routing applies it.",
    "attendance": "Attendance recorded. The summary is due once routing confirms the hold.",
    "summary": "Summary sent to routing. Participants get their link once it is accepted.",
    "action": "Request sent. The action's status updates once routing applies it.",
    "consent": "Consent recorded.",
}
CONSENT_LABELS = {
    "practitioner_involvement": "Treating doctor or psychologist may be invited",
    "medical_consultation": "Conference may be held within the medical consultation",
}
MAIL_LABELS = {
    "notice": "notice",
    "agenda": "agenda",
    "cancellation": "cancellation",
    "summary": "summary link",
}


def _done(key: str, status: str) -> str | None:
    """What the page says after a form: the "waiting for routing" line only while it waits."""
    if key == "planned" and status != "requested":
        return None
    return DONE.get(key)


def in_zone(value: Any, zone: str = "UTC") -> str:
    """An instant (datetime or ISO text) in `zone`, as staff read a conference's time."""
    if not value:
        return ""
    try:
        instant = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        shown = local_time(instant, zone)
    except (ValueError, OverflowError):
        return str(value)
    return f"{shown:%a %d %b %Y, %H:%M} ({zone})"


TEMPLATES.filters["in_zone"] = in_zone


async def _form(request: Request) -> FormData:
    try:
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    except Exception as exc:  # malformed body, too many fields
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unreadable form: {exc}") from exc
    token = form.get(session.CSRF_FIELD)
    session.check_csrf(request, token if isinstance(token, str) else None)
    return form


def _common(case: dict[str, Any]) -> dict[str, Any]:
    return {
        "case": case,
        "role_labels": ROLE_LABELS,
        "status_labels": STATUS_LABELS,
        "participant_rows": range(forms.PARTICIPANT_ROWS),
        "outcome_rows": range(forms.OUTCOME_ROWS),
    }


# --- Planning ------------------------------------------------------------------------------


async def _render_new(
    request: Request,
    principal: Principal,
    case: dict[str, Any],
    *,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    action_error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "conference_new.html.j2",
        status_code,
        principal=principal,
        values=values,
        errors=errors or {},
        action_error=action_error,
        prefix="",
        **_common(case),
    )


async def _staff_case(request: Request, principal: Principal, case_id: UUID) -> dict[str, Any]:
    return await conference_views.staff_case(
        runtime_of(request), principal, case_id, client_of(request), "portal:conferences"
    )


@router.get("/portal/cases/{case_id}/conferences/new")
async def new_conference(case_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        case = await _staff_case(request, principal, case_id)
        zone, people = await conference_views.planning_defaults(runtime_of(request), case)
        values = forms.plan_values(None, zone=zone, participants=people)
        return await _render_new(request, principal, case, values=values)

    return await guarded(request, page)


@router.post("/portal/cases/{case_id}/conferences")
async def plan_conference(case_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        form = await _form(request)
        runtime = runtime_of(request)
        case = await _staff_case(request, principal, case_id)
        zone, _ = await conference_views.planning_defaults(runtime, case)
        body, rows = forms.plan_body(form, zone)
        values = forms.form_values(form)
        try:
            plan = ConferencePlanInput.model_validate(body)
        except ValidationError as exc:
            errors = forms.errors_for(exc, rows)
            return await _render_new(
                request, principal, case, values=values, errors=errors, status_code=422
            )
        try:
            _, conference_id = await conferences.plan_conference(runtime, principal, case_id, plan)
        except (HTTPException, Refused) as caught:
            refusal = as_http_error(caught)
            if refusal.status_code not in (409, 422):
                raise refusal from None
            return await _render_new(
                request,
                principal,
                case,
                values=values,
                action_error=refusal.detail,
                status_code=refusal.status_code,
            )
        return see_other(f"/portal/cases/{case_id}/conferences/{conference_id}?done=planned")

    return await guarded(request, page)


# --- One conference ------------------------------------------------------------------------


async def _render_detail(
    request: Request,
    principal: Principal,
    case_id: UUID,
    conference_id: UUID,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    action_error: str | None = None,
    status_code: int = 200,
) -> Response:
    runtime = runtime_of(request)
    case, conference = await conference_views.get_conference(
        runtime, principal, case_id, conference_id, client_of(request), view="portal:conference"
    )
    shown = dict(values or {})
    if conference["status"] == "planned" and not any(k.startswith("change_") for k in shown):
        shown.update(forms.plan_values(conference, prefix="change_", zone=""))
    owner = case.get("owner_id")
    staff_owners = {principal.subject: principal.name or principal.subject}
    if owner:
        staff_owners.setdefault(owner, case.get("owner_name") or owner)
    return render(
        request,
        "conference.html.j2",
        status_code,
        principal=principal,
        conference=conference,
        zone=conference["plan"]["time_zone"],
        remote=conference["plan"]["mode"] != "in_person",
        consents=await conference_consents.list_consents(runtime, case_id),
        consent_labels=CONSENT_LABELS,
        mail_labels=MAIL_LABELS,
        staff_owners=staff_owners,
        action_rows=range(forms.ACTION_ROWS),
        objection_rows=range(forms.OBJECTION_ROWS),
        open_case=case["status"] != "closed",
        values=shown,
        errors=errors or {},
        change_errors=any(name.startswith("change_") for name in errors or {}),
        action_error=action_error,
        done=_done(request.query_params.get("done", ""), conference["status"]),
        prefix="change_",
        **_common(case),
    )


@router.get("/portal/cases/{case_id}/conferences/{conference_id}")
async def conference_page(case_id: UUID, conference_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)
    return await guarded(
        request, lambda: _render_detail(request, principal, case_id, conference_id)
    )


# What a detail-page form turns into: the API body, its rows and the prefix of its fields.
Read = Callable[[FormData, dict[str, Any]], tuple[dict[str, Any], forms.Rows, str]]
Run = Callable[[Principal, BaseModel], Awaitable[object]]


async def _detail_form(
    request: Request,
    case_id: UUID,
    conference_id: UUID,
    model: type[BaseModel],
    read: Read,
    run: Run,
    done: str,
) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        form = await _form(request)
        _, conference = await conference_views.get_conference(
            runtime_of(request),
            principal,
            case_id,
            conference_id,
            client_of(request),
            view="portal:conference",
        )
        body, rows, prefix = read(form, conference)
        values = forms.form_values(form)
        try:
            parsed = model.model_validate(body)
        except ValidationError as exc:
            errors = forms.errors_for(exc, rows, prefix)
            return await _render_detail(
                request,
                principal,
                case_id,
                conference_id,
                values=values,
                errors=errors,
                status_code=422,
            )
        try:
            await run(principal, parsed)
        except (HTTPException, Refused) as caught:
            refusal = as_http_error(caught)
            if refusal.status_code not in (409, 422):
                raise refusal from None
            return await _render_detail(
                request,
                principal,
                case_id,
                conference_id,
                values=values,
                action_error=refusal.detail,
                status_code=refusal.status_code,
            )
        return see_other(f"/portal/cases/{case_id}/conferences/{conference_id}?done={done}")

    return await guarded(request, page)


def _simple(prefix: str, *names: str) -> Read:
    def read(form: FormData, _: dict[str, Any]) -> tuple[dict[str, Any], forms.Rows, str]:
        body: dict[str, Any] = {}
        for name in names:
            value = form.get(prefix + name)
            body[name] = value.strip() or None if isinstance(value, str) else None
        return body, forms.Rows(), prefix

    return read


@router.post("/portal/cases/{case_id}/conferences/{conference_id}/changes")
async def change_conference(case_id: UUID, conference_id: UUID, request: Request) -> Response:
    def read(form: FormData, conference: dict[str, Any]) -> tuple[dict[str, Any], forms.Rows, str]:
        body, rows = forms.plan_body(form, conference["plan"]["time_zone"], prefix="change_")
        return body, rows, "change_"

    async def run(principal: Principal, parsed: BaseModel) -> object:
        assert isinstance(parsed, ConferenceChange)
        return await conferences.change_conference(
            runtime_of(request), principal, case_id, conference_id, parsed
        )

    return await _detail_form(
        request, case_id, conference_id, ConferenceChange, read, run, "changed"
    )


@router.post("/portal/cases/{case_id}/conferences/{conference_id}/cancellation")
async def cancel_conference(case_id: UUID, conference_id: UUID, request: Request) -> Response:
    async def run(principal: Principal, parsed: BaseModel) -> object:
        assert isinstance(parsed, ConferenceCancellation)
        return await conferences.cancel_conference(
            runtime_of(request), principal, case_id, conference_id, parsed
        )

    return await _detail_form(
        request,
        case_id,
        conference_id,
        ConferenceCancellation,
        _simple("cancel_", "reason"),
        run,
        "cancelled",
    )


@router.post("/portal/cases/{case_id}/conferences/{conference_id}/attendance")
async def record_attendance(case_id: UUID, conference_id: UUID, request: Request) -> Response:
    def read(form: FormData, conference: dict[str, Any]) -> tuple[dict[str, Any], forms.Rows, str]:
        body = forms.attendance_body(
            form, conference["participants"], conference["plan"]["time_zone"]
        )
        return body, forms.Rows(), ""

    async def run(principal: Principal, parsed: BaseModel) -> object:
        assert isinstance(parsed, HoldRecording)
        return await conferences.record_attendance(
            runtime_of(request), principal, case_id, conference_id, parsed
        )

    return await _detail_form(
        request, case_id, conference_id, HoldRecording, read, run, "attendance"
    )


@router.post("/portal/cases/{case_id}/conferences/{conference_id}/summary")
async def record_summary(case_id: UUID, conference_id: UUID, request: Request) -> Response:
    def read(form: FormData, _: dict[str, Any]) -> tuple[dict[str, Any], forms.Rows, str]:
        body, rows = forms.summary_body(form)
        return body, rows, ""

    async def run(principal: Principal, parsed: BaseModel) -> object:
        assert isinstance(parsed, SummaryRecording)
        return await conferences.record_summary(
            runtime_of(request), principal, case_id, conference_id, parsed
        )

    return await _detail_form(
        request, case_id, conference_id, SummaryRecording, read, run, "summary"
    )


@router.post("/portal/cases/{case_id}/conferences/{conference_id}/actions/{action_id}/completion")
async def complete_action(
    case_id: UUID, conference_id: UUID, action_id: UUID, request: Request
) -> Response:
    async def run(principal: Principal, parsed: BaseModel) -> object:
        assert isinstance(parsed, ActionCompletion)
        return await conferences.complete_action(
            runtime_of(request), principal, case_id, conference_id, action_id, parsed
        )

    return await _detail_form(
        request,
        case_id,
        conference_id,
        ActionCompletion,
        _simple(f"done-{action_id}_", "note"),
        run,
        "action",
    )


@router.post("/portal/cases/{case_id}/conferences/{conference_id}/actions/{action_id}/replanning")
async def replan_action(
    case_id: UUID, conference_id: UUID, action_id: UUID, request: Request
) -> Response:
    async def run(principal: Principal, parsed: BaseModel) -> object:
        assert isinstance(parsed, ActionReplanning)
        return await conferences.replan_action(
            runtime_of(request), principal, case_id, conference_id, action_id, parsed
        )

    return await _detail_form(
        request,
        case_id,
        conference_id,
        ActionReplanning,
        _simple(f"replan-{action_id}_", "reason", "due_on"),
        run,
        "action",
    )


@router.post("/portal/cases/{case_id}/conferences/{conference_id}/consents")
async def record_consent(case_id: UUID, conference_id: UUID, request: Request) -> Response:
    """Staff record a consent from the conference's page (it applies to the whole case)."""

    def read(form: FormData, _: dict[str, Any]) -> tuple[dict[str, Any], forms.Rows, str]:
        body, rows, prefix = _simple("consent_", "consent", "given_by", "basis")(form, _)
        body["granted"] = form.get("consent_granted") != "no"
        return body, rows, prefix

    async def run(principal: Principal, parsed: BaseModel) -> object:
        assert isinstance(parsed, ConsentInput)
        return await conference_consents.record_consent(
            runtime_of(request), principal, case_id, parsed
        )

    return await _detail_form(request, case_id, conference_id, ConsentInput, read, run, "consent")
