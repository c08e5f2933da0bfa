"""The employee and agent portal: server-rendered pages, plain HTML forms, no JavaScript.

Pages call the same `actions` as the JSON API, so the rules are the API's rules; this
module only turns forms into calls and HTTPException into pages.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from services.intake.adapters import sql
from services.intake.application import actions, agent_actions
from services.intake.application.cases import NewAttachment
from services.intake.domain.case import (
    ASSIGNMENT_ROLES,
    CATEGORIES,
    CATEGORY_ROLES,
    CLOSED_STATUSES,
    NOTE_ROLES,
    STATUS_ROLES,
    AgentNote,
    AnonymousReport,
    AssignmentChange,
    NewMessage,
    PhoneCall,
    Recategorisation,
    StatusChange,
    SubmitCase,
    status_options,
)
from services.intake.domain.refusals import Refused
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.web import (
    RefusalRoute,
    as_http_error,
    attachment_response,
    client_of,
    runtime_of,
)
from shared.auth import Principal
from shared.service import Runtime
from shared.uow import unit_of_work

# Every portal request first resolves its session (revoked or expired ones count as none).
router = APIRouter(
    include_in_schema=False,
    dependencies=[Depends(session.load_session)],
    route_class=RefusalRoute,
)
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
STATUS_LABELS = {
    "new": "Received",
    "routed": "Being reviewed",
    "assigned": "With a case handler",
    "in_progress": "In progress",
    "waiting_on_employee": "Waiting for your reply",
    "resolved": "Resolved",
    "closed": "Closed",
    "reopened": "Reopened",
}
TEMPLATES.filters["status_label"] = lambda value: STATUS_LABELS.get(value, value)
# Staff read the status from the case handler's side, not the employee's.
STAFF_CASE_STATUS = {**STATUS_LABELS, "waiting_on_employee": "Waiting on the employee"}
TEMPLATES.filters["staff_status_label"] = lambda value: STAFF_CASE_STATUS.get(value, value)


def _when(value: datetime | None) -> str:
    """A stored instant for people; an odd stored value is shown as it is, never a 500."""
    if not value:
        return ""
    try:
        return value.astimezone(UTC).strftime("%d %b %Y, %H:%M UTC")
    except (OverflowError, ValueError):
        return value.isoformat()


TEMPLATES.filters["when"] = _when
TEMPLATES.globals["categories"] = CATEGORIES


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    principal = context.pop("principal", None) or session.session_principal(request)
    html = TEMPLATES.get_template(name).render(
        request=request,
        principal=principal,
        csrf_field=session.CSRF_FIELD,
        csrf_token=session.csrf_token(request),
        dev_sign_in=session.dev_sign_in_enabled(),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    # Pages carry case details: never cached, never framed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self';"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    session.remember_csrf(request, response)
    return response


def error_page(request: Request, exc: HTTPException) -> HTMLResponse:
    return render(request, "error.html.j2", exc.status_code, message=exc.detail)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def sign_in_redirect() -> RedirectResponse:
    return see_other("/portal/sign-in")


def field_errors(exc: ValidationError, prefix: str = "") -> dict[str, str]:
    """Pydantic's errors keyed by form field name, in words a person can act on."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        if loc and loc[0] == prefix:
            loc = loc[1:]
        name = loc[-1] if loc else "form"
        errors.setdefault(name, err["msg"].removeprefix("Value error, "))
    return errors


async def read_form(request: Request) -> FormData:
    try:
        return await request.form(max_files=actions.MAX_ATTACHMENTS + 1, max_fields=50)
    except Exception as exc:  # malformed multipart, too many parts
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unreadable form: {exc}") from exc


async def csrf_form(request: Request) -> FormData:
    form = await read_form(request)
    token = form.get(session.CSRF_FIELD)
    session.check_csrf(request, token if isinstance(token, str) else None)
    return form


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def uploads(form: FormData, name: str = "attachments") -> tuple[NewAttachment, ...]:
    files = [f for f in form.getlist(name) if isinstance(f, UploadFile) and f.filename]
    actions.check_attachment_count(len(files))
    stored = []
    for upload in files:
        content = await upload.read(actions.MAX_ATTACHMENT_BYTES + 1)
        stored.append(
            actions.attachment(upload.filename or "attachment", upload.content_type, content)
        )
    return tuple(stored)


Page = Callable[[], Awaitable[Response]]


async def guarded(request: Request, page: Page) -> Response:
    try:
        return await page()
    except (HTTPException, Refused) as exc:
        return error_page(request, as_http_error(exc))


# --- Home and sign-in --------------------------------------------------------------------


@router.get("/")
async def root() -> RedirectResponse:
    return see_other("/portal/")


@router.get("/portal/")
async def home(request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is not None:
        return see_other("/portal/cases")
    return render(request, "home.html.j2")


@router.get("/portal/sign-in")
async def sign_in_page(request: Request) -> Response:
    if not session.dev_sign_in_enabled():
        return error_page(request, HTTPException(404, "sign-in is provided by single sign-on"))
    return render(request, "sign_in.html.j2", identities=session.DEMO_IDENTITIES)


@router.post("/portal/sign-in")
async def sign_in(request: Request) -> Response:
    async def page() -> Response:
        if not session.dev_sign_in_enabled():
            raise HTTPException(404, "sign-in is provided by single sign-on")
        form = await csrf_form(request)
        identity = session.DEMO_BY_KEY.get(text(form, "identity"))
        if identity is None:
            return render(
                request,
                "sign_in.html.j2",
                400,
                identities=session.DEMO_IDENTITIES,
                error="Choose one of the demo identities.",
            )
        response = see_other("/portal/cases")
        await session.start_session(
            request,
            response,
            identity.subject,
            identity.roles,
            employee_id=identity.employee_id,
            name=identity.name,
        )
        return response

    return await guarded(request, page)


@router.post("/portal/sign-out")
async def sign_out(request: Request) -> Response:
    async def page() -> Response:
        await csrf_form(request)
        response = see_other("/portal/")
        await session.end_session(request, response)
        return response

    return await guarded(request, page)


# --- My cases ----------------------------------------------------------------------------


@router.get("/portal/cases")
async def my_cases(request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect()
    rows = await actions.my_cases(runtime_of(request), principal)
    return render(request, "cases.html.j2", principal=principal, cases=rows)


def _raise_form(
    request: Request,
    principal: Principal | None,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    anonymous_only: bool = False,
) -> HTMLResponse:
    identity = session.DEMO_BY_SUBJECT.get(principal.subject) if principal else None
    defaults = {
        "name": (principal.name if principal else None) or (identity.name if identity else ""),
        "email": identity.email if identity else "",
    }
    return render(
        request,
        "raise.html.j2",
        status_code,
        principal=principal,
        values={**defaults, **(values or {})},
        errors=errors or {},
        anonymous_only=anonymous_only or principal is None,
    )


@router.get("/portal/cases/new")
async def raise_page(request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect()
    return _raise_form(request, principal)


@router.get("/portal/anonymous")
async def anonymous_page(request: Request) -> Response:
    """Reporting anonymously needs no sign-in at all."""
    return _raise_form(request, None, anonymous_only=True)


@router.post("/portal/cases")
async def raise_case(request: Request) -> Response:
    async def page() -> Response:
        form = await csrf_form(request)
        anonymous = text(form, "anonymous") == "yes"
        principal = None if anonymous else session.session_principal(request)
        if not anonymous and principal is None:
            return sign_in_redirect()
        values = {k: text(form, k) for k in ("subject", "description", "category", "name", "email")}
        category = values["category"] or None
        try:
            if anonymous:
                report = AnonymousReport(
                    subject=values["subject"],
                    description=values["description"],
                    category=category,
                    urgent=text(form, "urgent") == "yes",
                )
            else:
                assert principal is not None
                submission = SubmitCase.model_validate(
                    {
                        "subject": values["subject"],
                        "description": values["description"],
                        "category": category,
                        "reporter": {
                            "employee_id": principal.employee_id or "",
                            "name": values["name"],
                            "email": values["email"],
                        },
                    }
                )
        except ValidationError as exc:
            return _raise_form(
                request,
                principal,
                values={**values, "anonymous": anonymous},
                errors=field_errors(exc, "reporter"),
                status_code=422,
                anonymous_only=anonymous and session.session_principal(request) is None,
            )
        files = await uploads(form)
        runtime = runtime_of(request)
        if anonymous:
            opened, key = await actions.raise_anonymous(
                unit_of_work(runtime), report, channel="portal", attachments=files
            )
            # The key is on this page only: not in a URL, a cookie or a log.
            return render(
                request,
                "anonymous_created.html.j2",
                201,
                principal=None,
                reference=opened.reference,
                secret_key=key,
            )
        assert principal is not None
        opened = await actions.raise_case(
            unit_of_work(runtime),
            principal,
            channel="portal",
            subject=submission.subject,
            description=submission.description,
            reporter=submission.reporter,
            category=submission.category,
            urgent=text(form, "urgent") == "yes",
            attachments=files,
        )
        return see_other(f"/portal/cases/{opened.case_id}?raised=1")

    return await guarded(request, page)


@router.get("/portal/cases/{case_id}")
async def case_page(case_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect()

    async def page() -> Response:
        return await _case(request, principal, case_id)

    return await guarded(request, page)


# Confirmation after an agent action (?done=...): requests take effect when routing applies
# them, so the message says so rather than pretending the case has already changed.
ACTION_DONE = {
    "note": "Your note was added to the case.",
    "status": "Status change requested. The status above updates once routing applies it.",
    "category": "Re-categorisation requested. Category, priority and deadlines update once"
    " routing applies it.",
    "assignment": "Reassignment requested. The case handler updates once routing applies it.",
}
STAFF_STATUS_LABELS = {
    "in_progress": "In progress",
    "waiting_on_employee": "Waiting on the employee (pauses the SLA clocks)",
    "resolved": "Resolved",
    "closed": "Closed",
    "reopened": "Reopen",
}


def _agent_forms(principal: Principal, case: dict[str, Any], staff_view: bool) -> dict[str, Any]:
    """Which action forms the page offers (the actions check again when posted)."""
    current = case["status"]
    open_case = current not in CLOSED_STATUSES
    return {
        "note": staff_view and open_case and principal.has_any(*NOTE_ROLES),
        "status": staff_view and principal.has_any(*STATUS_ROLES),
        "category": staff_view and open_case and principal.has_any(*CATEGORY_ROLES),
        "assignment": staff_view and open_case and principal.has_any(*ASSIGNMENT_ROLES),
        "status_options": [(s, STAFF_STATUS_LABELS[s]) for s in status_options(current)],
    }


async def _case(
    request: Request,
    principal: Principal,
    case_id: UUID,
    *,
    errors: dict[str, str] | None = None,
    draft: str = "",
    values: dict[str, str] | None = None,
    action_error: str | None = None,
    status_code: int = 200,
) -> Response:
    runtime = runtime_of(request)
    row = await actions.readable_case(
        runtime, principal, case_id, client_of(request), view="portal"
    )
    found = await actions.details(runtime.pool, row, principal)
    return render(
        request,
        "case.html.j2",
        status_code,
        principal=principal,
        case=found.case,
        messages=found.messages,
        attachments=found.attachments,
        phone_call=found.phone_call,
        notes=found.notes,
        staff_view=found.staff_view,
        agent=_agent_forms(principal, found.case, found.staff_view),
        # The reporter may still write to a closed case: routing reopens it or opens a
        # follow-up case. Staff reopen it first.
        open_for_messages=found.case["status"] not in CLOSED_STATUSES or not found.staff_view,
        linked_cases=found.linked_cases,
        raised=request.query_params.get("raised") == "1",
        sent=request.query_params.get("sent") == "1",
        done=ACTION_DONE.get(request.query_params.get("done", "")),
        action_error=action_error,
        errors=errors or {},
        draft=draft,
        values=values or {},
    )


@router.get("/portal/cases/{case_id}/attachments/{attachment_id}")
async def attachment(case_id: UUID, attachment_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect()

    async def page() -> Response:
        download = await actions.download(
            runtime_of(request),
            principal,
            case_id,
            attachment_id,
            client_of(request),
            view="portal:file",
        )
        return attachment_response(download)

    return await guarded(request, page)


@router.post("/portal/cases/{case_id}/messages")
async def add_message(case_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect()

    async def page() -> Response:
        form = await csrf_form(request)
        try:
            message = NewMessage(body=text(form, "body"))
        except ValidationError as exc:
            return await _case(
                request, principal, case_id, errors=field_errors(exc), status_code=422
            )
        await actions.post_message(
            runtime_of(request),
            principal,
            case_id,
            client_of(request),
            body=message.body,
            channel="portal",
            attachments=await uploads(form),
            view="portal:message",
        )
        return see_other(f"/portal/cases/{case_id}?sent=1#messages")

    return await guarded(request, page)


# --- Agent actions (staff) ----------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)
Run = Callable[[Runtime, Principal, UUID, M], Awaitable[agent_actions.ActionAccepted]]


async def _agent_action(
    request: Request,
    case_id: UUID,
    name: str,
    model: type[M],
    read: Callable[[FormData], dict[str, Any]],
    run: Run[M],
) -> Response:
    """One action form: fields are named `<name>_<field>` so the forms share one page."""
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect()

    async def page() -> Response:
        form = await csrf_form(request)
        values = {k: v for k, v in form.items() if k.startswith(f"{name}_") and isinstance(v, str)}
        try:
            parsed = model.model_validate(read(form))
        except ValidationError as exc:
            errors = {f"{name}_{field}": msg for field, msg in field_errors(exc).items()}
            return await _case(
                request, principal, case_id, errors=errors, values=values, status_code=422
            )
        try:
            await run(runtime_of(request), principal, case_id, parsed)
        except (HTTPException, Refused) as caught:
            refusal = as_http_error(caught)
            if refusal.status_code != status.HTTP_409_CONFLICT:
                raise refusal from None
            return await _case(
                request,
                principal,
                case_id,
                values=values,
                action_error=refusal.detail,
                status_code=409,
            )
        return see_other(f"/portal/cases/{case_id}?done={name}#case-actions")

    return await guarded(request, page)


@router.post("/portal/cases/{case_id}/notes")
async def add_note(case_id: UUID, request: Request) -> Response:
    return await _agent_action(
        request,
        case_id,
        "note",
        AgentNote,
        # A checkbox sends nothing when unticked: unticked means internal (the safe default).
        lambda form: {
            "body": text(form, "note_body"),
            "internal": text(form, "note_shared") != "yes",
        },
        agent_actions.add_note,
    )


@router.post("/portal/cases/{case_id}/status")
async def request_status(case_id: UUID, request: Request) -> Response:
    return await _agent_action(
        request,
        case_id,
        "status",
        StatusChange,
        lambda form: {
            "to_status": text(form, "status_to_status"),
            "reason": text(form, "status_reason"),
        },
        agent_actions.request_status,
    )


@router.post("/portal/cases/{case_id}/category")
async def request_category(case_id: UUID, request: Request) -> Response:
    return await _agent_action(
        request,
        case_id,
        "category",
        Recategorisation,
        lambda form: {
            "category": text(form, "category_category"),
            "reason": text(form, "category_reason"),
        },
        agent_actions.request_category,
    )


@router.post("/portal/cases/{case_id}/assignment")
async def request_assignment(case_id: UUID, request: Request) -> Response:
    return await _agent_action(
        request,
        case_id,
        "assignment",
        AssignmentChange,
        lambda form: {
            "owner_id": text(form, "assignment_owner_id"),
            "reason": text(form, "assignment_reason"),
        },
        agent_actions.request_assignment,
    )


# --- Anonymous follow-up -----------------------------------------------------------------


@router.get("/portal/anonymous/follow-up")
async def follow_up_page(request: Request) -> Response:
    return render(request, "follow_up.html.j2", principal=None, values={}, error=None)


async def _anonymous_status(
    request: Request, reference: str, key: str, *, sent: bool = False, error: str | None = None
) -> Response:
    runtime = runtime_of(request)
    case = await actions.anonymous_case(runtime, reference, key, client_of(request))
    messages = await sql.list_messages(runtime.pool, case["case_id"])
    notes = await sql.list_notes(runtime.pool, case["case_id"], include_internal=False)
    return render(
        request,
        "anonymous_case.html.j2",
        422 if error else 200,
        principal=None,
        case=case,
        messages=messages,
        notes=notes,
        secret_key=key,
        sent=sent,
        error=error,
        open_for_messages=case["status"] not in CLOSED_STATUSES,
    )


@router.post("/portal/anonymous/follow-up")
async def follow_up(request: Request) -> Response:
    form = await read_form(request)
    reference, key = text(form, "reference").strip(), text(form, "secret_key").strip()
    try:
        session.check_csrf(request, text(form, session.CSRF_FIELD))
        return await _anonymous_status(request, reference, key)
    except (HTTPException, Refused) as caught:
        exc = as_http_error(caught)
        if exc.status_code == 403:
            return error_page(request, exc)
        return render(
            request,
            "follow_up.html.j2",
            exc.status_code,
            principal=None,
            values={"reference": reference},
            error=exc.detail,
        )


@router.post("/portal/anonymous/reply")
async def anonymous_reply(request: Request) -> Response:
    async def page() -> Response:
        form = await csrf_form(request)
        reference, key = text(form, "reference"), text(form, "secret_key")
        try:
            message = NewMessage(body=text(form, "body"))
        except ValidationError as exc:
            error = field_errors(exc).get("body", "write a message")
            return await _anonymous_status(request, reference, key, error=error)
        runtime = runtime_of(request)
        case = await actions.anonymous_case(runtime, reference, key, client_of(request))
        await actions.anonymous_reply(
            runtime, case, body=message.body, channel="portal", attachments=await uploads(form)
        )
        return await _anonymous_status(request, reference, key, sent=True)

    return await guarded(request, page)


# --- Phone logging (agents) --------------------------------------------------------------


def _phone_form(
    request: Request,
    principal: Principal,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")
    return render(
        request,
        "phone.html.j2",
        status_code,
        principal=principal,
        values={"called_at": now, **(values or {})},
        errors=errors or {},
    )


def _agent(request: Request) -> Principal | Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect()
    if not principal.has_any("hr_agent", "hr_manager"):
        return error_page(
            request, HTTPException(403, "logging a call requires the hr_agent or hr_manager role")
        )
    return principal


@router.get("/portal/phone-calls/new")
async def phone_page(request: Request) -> Response:
    agent = _agent(request)
    if isinstance(agent, Response):
        return agent
    return _phone_form(request, agent)


PHONE_FIELDS = (
    "caller_employee_id",
    "caller_name",
    "caller_email",
    "caller_details",
    "called_at",
    "duration_minutes",
    "summary",
    "subject",
    "category",
    "callback_number",
)


# Anything beyond this cannot be a call's length (the model then says what the limit is);
# it also keeps float("inf") and "1e308" from overflowing the conversion to seconds.
MAX_CALL_MINUTES = 100_000


@router.post("/portal/phone-calls")
async def log_phone_call(request: Request) -> Response:
    agent = _agent(request)
    if isinstance(agent, Response):
        return agent

    async def page() -> Response:
        form = await csrf_form(request)
        values = {name: text(form, name).strip() for name in PHONE_FIELDS}
        errors: dict[str, str] = {}
        try:
            minutes = float(values["duration_minutes"] or "0")
            if not math.isfinite(minutes) or abs(minutes) > MAX_CALL_MINUTES:
                raise ValueError(minutes)
        except ValueError:
            minutes, errors["duration_minutes"] = 0, "give the duration in minutes"
        try:
            # datetime-local has no zone: the form says the time is UTC.
            called_at = datetime.fromisoformat(values["called_at"]).replace(tzinfo=UTC)
        except ValueError:
            called_at, errors["called_at"] = None, "give the date and time of the call"
        try:
            call = PhoneCall.model_validate(
                {
                    "caller": {
                        "employee_id": values["caller_employee_id"] or None,
                        "name": values["caller_name"] or None,
                        "email": values["caller_email"] or None,
                        "details": values["caller_details"] or None,
                    },
                    "called_at": called_at,
                    "duration_seconds": round(minutes * 60),
                    "summary": values["summary"],
                    "subject": values["subject"] or None,
                    "category": values["category"] or None,
                    "callback_number": values["callback_number"] or None,
                    "urgent": text(form, "urgent") == "yes",
                }
            )
        except ValidationError as exc:
            found = field_errors(exc)
            if "caller" in found:  # the model-level rule about who called
                found["caller_employee_id"] = found.pop("caller")
            renames = {"duration_seconds": "duration_minutes", "employee_id": "caller_employee_id"}
            for old, new in renames.items():
                if old in found:
                    found[new] = found.pop(old)
            for name in ("name", "email", "details"):
                if name in found:
                    found[f"caller_{name}"] = found.pop(name)
            errors = {**found, **errors}
        if errors:
            return _phone_form(request, agent, values=values, errors=errors, status_code=422)
        runtime = runtime_of(request)
        opened = await actions.log_phone_call(unit_of_work(runtime), agent, call)
        return see_other(f"/portal/cases/{opened.case_id}?raised=1")

    return await guarded(request, page)
