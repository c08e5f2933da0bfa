"""Rendering portal pages and reading their forms: templates, error pages, uploads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from services.intake.application import actions
from services.intake.application.cases import NewAttachment
from services.intake.domain.case import (
    CATEGORIES,
)
from services.intake.domain.refusals import Refused
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.web import (
    RefusalRoute,
    as_http_error,
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
        sso=session.sso_client(request) is not None,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    # Pages carry case details: never cached, never framed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    # Forms post to this site; signing out then continues at the single sign-on provider.
    form_action = " ".join(("'self'", *session.form_targets(request)))
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self';"
        f" form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    session.remember_csrf(request, response)
    return response


def error_page(request: Request, exc: HTTPException) -> HTMLResponse:
    return render(request, "error.html.j2", exc.status_code, message=exc.detail)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def sign_in_redirect(request: Request) -> RedirectResponse:
    """To sign-in, carrying the page asked for (a GET: e.g. a case link from an email) as
    `next`, so signing in returns there. A POST's target cannot be re-done by a GET."""
    if request.method == "GET":
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if session.safe_next(wanted) and wanted != session.AFTER_SIGN_IN:
            return see_other(f"/portal/sign-in?{urlencode({'next': wanted})}")
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


def portal_router() -> APIRouter:
    """A router for portal pages: every request first resolves its session (revoked or
    expired ones count as none); a use case's refusal becomes an HTTP error."""
    return APIRouter(
        include_in_schema=False,
        dependencies=[Depends(session.load_session)],
        route_class=RefusalRoute,
    )
