"""Single sign-on pages: off to the provider, back with a code, and the provider's
back-channel logout (README "Single sign-on").

- GET /portal/sign-in/sso: a new authorization request (code + PKCE S256, state, nonce);
  the browser keeps the state in the `hrcase_sso` cookie (HttpOnly, SameSite=Lax, ten
  minutes, only sent to /portal/sign-in), the server keeps the nonce and the verifier.
- GET /portal/sign-in/callback: the state must equal the cookie's and be pending (once);
  then the code is redeemed and the ID token verified. A person with no mapped role, a
  wrong state, a refused code: a page saying so (400 or 403), never a session, never a 500.
- POST /portal/sso/backchannel-logout: the provider's logout token (form field
  `logout_token`), verified; the sessions it names end at once. 200 when it verified
  (even if no session was open), 400 with an OAuth-style error otherwise.
"""

from __future__ import annotations

import hmac

import structlog
from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse, Response

from services.intake.adapters import sso_sql
from services.intake.adapters.oidc import InvalidLogoutToken, SignInFailed
from services.intake.application import sso as sso_app
from services.intake.domain.sso import SignInRefused
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.portal.pages import portal_router, render, see_other
from services.intake.entrypoints.web import runtime_of
from shared.settings import get_settings

log = structlog.get_logger()

router = portal_router()
# The provider calls this one server to server: no session, no CSRF token, no page.
backchannel_router = APIRouter(include_in_schema=False)

STATE_COOKIE = "hrcase_sso"
STATE_COOKIE_PATH = "/portal/sign-in"


def _refusal(
    request: Request, status_code: int, heading: str, reason: str, *, retry: bool
) -> Response:
    response = render(
        request,
        "sign_in_refused.html.j2",
        status_code,
        heading=heading,
        reason=reason,
        retry=retry,
    )
    response.delete_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH, httponly=True, samesite="lax")
    return response


def _not_configured(request: Request) -> Response:
    return _refusal(
        request,
        404,
        "Single sign-on is not configured",
        "This installation has no single sign-on provider.",
        retry=False,
    )


@router.get("/portal/sign-in/sso")
async def start(request: Request) -> Response:
    client = session.sso_client(request)
    if client is None:
        return _not_configured(request)
    try:
        started = await sso_app.start_sign_in(
            runtime_of(request), client, session.safe_next(request.query_params.get("next"))
        )
    except SignInFailed as exc:
        log.warning("sso start failed", error=str(exc))
        return _refusal(
            request,
            503,
            "Sign-in is unavailable",
            "The sign-in service cannot be reached. Try again in a few minutes.",
            retry=True,
        )
    response = see_other(started.provider_url)
    response.set_cookie(
        STATE_COOKIE,
        started.state,
        max_age=sso_app.PENDING_SIGN_IN_SECONDS,
        httponly=True,
        samesite="lax",
        secure=get_settings().environment != "development",
        path=STATE_COOKIE_PATH,
    )
    return response


@router.get("/portal/sign-in/callback")
async def callback(request: Request) -> Response:
    client = session.sso_client(request)
    if client is None:
        return _not_configured(request)
    params = request.query_params
    state, expected = params.get("state", ""), request.cookies.get(STATE_COOKIE, "")
    if not state or not expected or not hmac.compare_digest(state.encode(), expected.encode()):
        log.warning("sso callback refused", reason="state does not match this browser's")
        return _refusal(
            request,
            400,
            "Sign-in could not be completed",
            "This sign-in was not started in this browser, or it has expired."
            " Start again from the sign-in page.",
            retry=True,
        )
    if params.get("error") or not params.get("code"):
        await sso_sql.take_pending_sign_in(runtime_of(request).pool, state)  # spent
        log.info("sso provider declined", error=params.get("error", "no code"))
        return _refusal(
            request,
            403,
            "Sign-in was not completed",
            "The sign-in service did not sign you in.",
            retry=True,
        )
    try:
        signed_in = await sso_app.finish_sign_in(
            runtime_of(request), client, state=state, code=params["code"]
        )
    except SignInFailed as exc:
        log.warning("sso callback refused", reason=str(exc))
        return _refusal(
            request,
            400,
            "Sign-in could not be completed",
            "The sign-in service's answer could not be verified. Start again"
            " from the sign-in page.",
            retry=True,
        )
    except SignInRefused as exc:
        log.info("sso sign-in refused", reason=exc.reason)
        return _refusal(request, 403, "No access to HR Case Desk", exc.reason, retry=False)
    identity = signed_in.identity
    response = see_other(signed_in.next_page or session.landing_page(identity.roles))
    session_id = await session.start_session(
        request,
        response,
        identity.subject,
        identity.roles,
        employee_id=identity.employee_id,
        name=identity.name,
        email=identity.email,
        email_verified=identity.email_verified,
    )
    await sso_sql.link_provider_session(
        runtime_of(request).pool,
        session_id,
        issuer=identity.issuer,
        subject=identity.provider_subject,
        provider_session=identity.provider_session,
    )
    response.delete_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH, httponly=True, samesite="lax")
    return response


async def provider_sign_out_url(request: Request) -> str | None:
    """Where signing out continues (the provider's end_session_endpoint) when the current
    session was signed in by single sign-on; None otherwise."""
    current = getattr(request.state, "portal_session", None)
    client = session.sso_client(request)
    if client is None or current is None or not current.get("provider_issuer"):
        return None
    return await client.logout_url()


@backchannel_router.post("/portal/sso/backchannel-logout")
async def backchannel_logout(request: Request) -> Response:
    headers = {"Cache-Control": "no-store"}
    client = session.sso_client(request)
    if client is None:
        return JSONResponse({"error": "not_found"}, status.HTTP_404_NOT_FOUND, headers=headers)
    try:
        form = await request.form(max_files=0, max_fields=5)
    except Exception:  # not a form at all
        form = None
    token = form.get("logout_token") if form is not None else None
    if not isinstance(token, str) or not token or len(token) > 16_000:
        return _bad_logout("logout_token: a form field with the logout token is required")
    try:
        logout = await client.verify_logout_token(token)
    except InvalidLogoutToken as exc:
        log.warning("backchannel logout refused", reason=str(exc))
        return _bad_logout(f"logout_token: {exc}")
    except SignInFailed:
        return JSONResponse(
            {"error": "temporarily_unavailable"},
            status.HTTP_503_SERVICE_UNAVAILABLE,
            headers=headers,
        )
    await sso_app.end_provider_sessions(runtime_of(request), logout)
    return Response(status_code=status.HTTP_200_OK, headers=headers)


def _bad_logout(description: str) -> Response:
    return JSONResponse(
        {"error": "invalid_request", "error_description": description},
        status.HTTP_400_BAD_REQUEST,
        headers={"Cache-Control": "no-store"},
    )
