"""The way from the portal to the auditors' console, which the audit service serves itself.

Intake cannot show audit data (no service reads another's tables): it links to
AUDIT_CONSOLE_URL for auditors, and `/portal/audit-console/<path>` forwards a signed-in
visitor there. The console sends a signed-out visitor to the portal's sign-in with
`next=/portal/audit-console/<path>` (a path `session.safe_next` accepts), so signing in
lands back on the console page that was asked for.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from services.intake.entrypoints.portal import session
from services.intake.entrypoints.portal.pages import (
    TEMPLATES,
    portal_router,
    see_other,
    sign_in_redirect,
)
from shared.settings import get_settings

router = portal_router()


def audit_console_url() -> str:
    """The console's root (AUDIT_CONSOLE_URL, or derived: shared.settings)."""
    return get_settings().audit_console_address()


TEMPLATES.globals["audit_console_url"] = audit_console_url


@router.get("/portal/audit-console")
@router.get("/portal/audit-console/{rest:path}")
async def to_audit_console(request: Request, rest: str = "") -> Response:
    """Signed in: on to the console page (it checks the auditor role itself); signed out:
    sign-in first, then back here."""
    if session.session_principal(request) is None:
        return sign_in_redirect(request)
    # `rest` is a path inside the console: the redirect never leaves its root.
    target = audit_console_url() + rest.lstrip("/")
    if request.url.query:
        target += f"?{request.url.query}"
    if urlsplit(target).netloc in ("", request.headers.get("host")):
        return see_other(target)
    return continue_page(target)


def continue_page(target: str) -> HTMLResponse:
    """The console on another origin (development: another port). Arriving here from the
    sign-in form, a redirect there would be blocked by the portal's CSP (`form-action
    'self'` covers a form's redirects), so this page moves on by itself (meta refresh,
    no script) and offers the link."""
    url = escape(target, quote=True)
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={url}">'
        "<title>Audit console · HR Case Desk</title></head><body><main>"
        f'<p><a href="{url}">Continue to the audit console</a></p></main></body></html>'
    )
    return HTMLResponse(
        html,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
            "Referrer-Policy": "same-origin",
        },
    )
