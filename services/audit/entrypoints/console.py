"""The auditors' console: server-rendered pages (no JavaScript) under /audit/console/.

Intake runs the portal and its sign-in but may not show audit data, so the audit service
serves these pages itself and authenticates them with the portal's session cookie: a
token for the portal's audience (shared.auth.PORTAL_AUDIENCE), signed with the shared
key and verified here without calling intake. Accepted from the cookie only, never from
an Authorization header (the JSON API keeps refusing portal tokens). Refused, as if
signed out (so: sent to the portal's sign-in with `next`), when it is invalid, expired,
carries no session id, or intake has announced that session's end
(`portal.session_ended`, recorded in the chain like every event). Signed in without the
auditor role: 403.

The one form that changes something (the export, which records `audit.export_created`)
is a POST with a CSRF token derived from the session id (HMAC with the signing key: audit
cannot read intake's per-session token) and a same-origin Origin/Referer check.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit
from uuid import UUID

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.audit.adapters.checkpoints import CheckpointFile, current_database
from services.audit.application import console
from services.audit.application.export import export_case
from services.audit.config import AuditSettings
from services.audit.domain.checkpoint import CheckedCheckpoints
from services.audit.entrypoints.http import reader_of
from shared.auth import (
    PORTAL_AUDIENCE,
    PORTAL_SESSION_COOKIE,
    InvalidToken,
    Principal,
    TokenService,
)
from shared.envelope import utcnow
from shared.service import Runtime
from shared.settings import get_settings

PREFIX = "/audit/console"
# Where a signed-out visitor is sent back to after the portal's sign-in: intake forwards
# /portal/audit-console/<path> to this console (services/intake/entrypoints/portal).
PORTAL_RETURN = "/portal/audit-console/"
CSRF_FIELD = "csrf_token"
CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@lru_cache(maxsize=1)
def console_templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(
            # The console's pages, then the sections it shares with the case file.
            [
                Path(__file__).parent.parent / "templates" / "console",
                Path(__file__).parent.parent / "templates",
            ]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["shown"] = lambda value: "—" if value is None else value
    return env


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _tokens(request: Request) -> TokenService:
    service = getattr(request.app.state, "token_service", None)
    if service is None:
        service = TokenService.from_settings(get_settings())
        request.app.state.token_service = service
    assert isinstance(service, TokenService)
    return service


async def signed_in(request: Request) -> Principal | None:
    """The portal session's person, if the cookie holds a live session token."""
    token = request.cookies.get(PORTAL_SESSION_COOKIE)
    if not token:
        return None
    try:
        principal = _tokens(request).verify(token, audience=PORTAL_AUDIENCE)
    except InvalidToken:
        return None
    if principal.session_id is None:
        return None
    if await console.session_has_ended(_runtime(request).pool, principal.session_id):
        return None
    return principal


def csrf_token(principal: Principal) -> str:
    key = get_settings().auth_jwt_secret.encode()
    message = f"hrcase-audit-console-csrf:{principal.session_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _same_origin(request: Request, value: str) -> bool:
    origin = urlsplit(value)
    return origin.scheme in ("http", "https") and origin.netloc == request.headers.get("host")


def csrf_refusal(request: Request, principal: Principal, submitted: str | None) -> str | None:
    """Why a POST is refused (foreign Origin/Referer, missing or foreign token), or None."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin and not _same_origin(request, origin):
        return "cross-site form submission refused"
    if not submitted or not hmac.compare_digest(
        csrf_token(principal).encode(), submitted.encode("utf-8", "backslashreplace")
    ):
        return "the form has expired or was not sent from this page; reload it and retry"
    return None


def render(
    request: Request,
    name: str,
    status_code: int = 200,
    principal: Principal | None = None,
    **context: Any,
) -> HTMLResponse:
    html = (
        console_templates()
        .get_template(name)
        .render(
            principal=principal,
            portal=get_settings().portal_base_url.rstrip("/") + "/portal/",
            console=PREFIX + "/",
            csrf_field=CSRF_FIELD,
            csrf_token=csrf_token(principal) if principal and principal.session_id else "",
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status_code)
    # Case content: never cached, never framed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def error(
    request: Request, status_code: int, message: str, principal: Principal | None = None
) -> HTMLResponse:
    return render(request, "error.html.j2", status_code, principal, message=message)


def sign_in_redirect(request: Request) -> RedirectResponse:
    """To the portal's sign-in, returning to this console page (a GET) afterwards."""
    sign_in = get_settings().portal_base_url.rstrip("/") + "/portal/sign-in"
    if request.method != "GET":
        return RedirectResponse(sign_in, status_code=303)
    rest = request.url.path.removeprefix(PREFIX).lstrip("/")
    wanted = PORTAL_RETURN + quote(rest, safe="/")
    if request.url.query:
        wanted += f"?{request.url.query}"
    return RedirectResponse(f"{sign_in}?{urlencode({'next': wanted})}", status_code=303)


async def _auditor(request: Request) -> Principal | Response:
    """The signed-in auditor, or the response for anyone else."""
    principal = await signed_in(request)
    if principal is None:
        return sign_in_redirect(request)
    if not principal.has_any("auditor"):
        return error(request, 403, "The audit console is for auditors only.", principal)
    return principal


def _instant(value: str | None) -> datetime | None:
    """`at` as typed in the form (datetime-local, read as UTC) or with an offset.
    ValueError for anything else."""
    if value is None or not value.strip():
        return None
    parsed = datetime.fromisoformat(value.strip())
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


async def _checkpoints(request: Request, conn: Any) -> CheckedCheckpoints:
    database = await current_database(conn)
    sink = CheckpointFile.for_database(AuditSettings().checkpoint_dir, database)
    return sink.check(database=database, keys=_runtime(request).state.get("public_keys", []))


def _verification(request: Request) -> console.LogVerification:
    state = _runtime(request).state
    found = state.get("console_verification")
    if not isinstance(found, console.LogVerification):
        found = console.LogVerification(max_age=AuditSettings().console_verify_max_age)
        state["console_verification"] = found
    return found


@router.get("")
async def console_root() -> RedirectResponse:
    return RedirectResponse(PREFIX + "/", status_code=303)


@router.get("/")
async def search(request: Request, q: str | None = None) -> Response:
    """Find a case by reference or case id; one match opens it."""
    who = await _auditor(request)
    if isinstance(who, Response):
        return who
    async with _runtime(request).pool.acquire() as conn:
        found = await console.find_cases(conn, q) if q and q.strip() else None
        latest = await console.recent(conn)
    if found is not None and len(found.case_ids) == 1:
        return RedirectResponse(f"{PREFIX}/cases/{found.case_ids[0]}", status_code=303)
    status_code = 404 if found is not None and not found.case_ids else 200
    return render(
        request,
        "search.html.j2",
        status_code,
        who,
        q=q or "",
        found=found.case_ids if found else None,
        recent=latest,
    )


@router.get("/cases/{case_id}")
async def case(request: Request, case_id: str, at: str | None = None) -> Response:
    """The case's timeline, its state now and at `at`, its access log and the log's
    verification status. The read is recorded first."""
    who = await _auditor(request)
    if isinstance(who, Response):
        return who
    try:
        case_uuid = UUID(case_id)
    except ValueError:
        return error(request, 404, "No case with that id is in the audit log.", who)
    try:
        instant = _instant(at)
    except (ValueError, OverflowError):
        return error(request, 422, "`at`: give an instant as YYYY-MM-DDTHH:MM[:SS] (UTC).", who)
    runtime = _runtime(request)
    async with runtime.pool.acquire() as conn:
        page = await console.case_page(
            conn, case_uuid, reader_of(who, request), at=instant, keys=runtime.keys
        )
        if page is None:
            return error(request, 404, "No case with that id is in the audit log.", who)
        status = await _verification(request).status(
            conn, lambda: _checkpoints(request, conn), utcnow
        )
    return render(
        request,
        "case.html.j2",
        200,
        who,
        page=page,
        log=status.as_view(),
        at_value=(instant.strftime("%Y-%m-%dT%H:%M:%S") if instant else ""),
    )


@router.post("/cases/{case_id}/export")
async def export(request: Request, case_id: str) -> Response:
    """The case file as an HTML download; recorded as `audit.export_created`."""
    who = await _auditor(request)
    if isinstance(who, Response):
        return who
    try:
        form = await request.form(max_fields=5, max_files=0)
    except Exception:  # malformed or oversized form: refused, never a 500
        return error(request, 400, "The form could not be read; reload the page and retry.", who)
    submitted = form.get(CSRF_FIELD)
    refusal = csrf_refusal(request, who, submitted if isinstance(submitted, str) else None)
    if refusal:
        return error(request, 403, refusal, who)
    try:
        case_uuid = UUID(case_id)
    except ValueError:
        return error(request, 404, "No case with that id is in the audit log.", who)
    runtime = _runtime(request)
    async with runtime.pool.acquire() as conn:
        checked = await _checkpoints(request, conn)
        case_file = await export_case(
            conn,
            case_uuid,
            reader_of(who, request),
            checkpoints=checked,
            now=utcnow(),
            keys=runtime.keys,
        )
    if case_file is None:
        return error(request, 404, "No case with that id is in the audit log.", who)
    name = f"case-file-{case_file.document.get('reference') or case_uuid}.html"
    safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in name)
    return HTMLResponse(
        case_file.html,
        headers={
            "Content-Disposition": f'attachment; filename="{safe}"',
            "Cache-Control": "no-store",
            "Content-Security-Policy": CSP,
            "X-Case-File-SHA256": case_file.sha256,
        },
    )
