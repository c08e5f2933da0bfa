"""Portal sessions and CSRF protection.

A sign-in creates a server-side session (intake.portal_sessions) and puts a signed token
for the portal's own audience, whose `jti` is the session id, in an HttpOnly, SameSite=Lax
cookie (Secure outside development). Every request checks the session is still active, so
signing out revokes the token at once, whether it is replayed as the cookie or as an
`Authorization: Bearer` header; the JSON APIs never accept it (other audience). The audit
console accepts it from the cookie only, and refuses it once intake's
`portal.session_ended` for the session is in the audit log. A bearer token minted for the
API (no session) is still accepted by the portal.

Every form carries a CSRF token. With a session it is the session's own token (random, new
at every sign-in, stored with the session): a token from another session is refused.
Before sign-in it must equal the `hrcase_csrf` cookie (double submit). A POST whose Origin
or Referer names another site is refused before either check.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit
from uuid import UUID, uuid4

from fastapi import HTTPException, Request, Response, status

from services.intake.adapters import sql
from services.intake.adapters.oidc import OidcClient
from services.intake.application.sessions import end_portal_session
from services.intake.config import dev_sign_in_wanted
from services.intake.domain.case import STAFF_ROLES
from shared.auth import (
    PORTAL_AUDIENCE,
    PORTAL_SESSION_COOKIE,
    InvalidToken,
    Principal,
    TokenService,
    bearer_token,
)
from shared.service import Runtime
from shared.settings import get_settings
from shared.uow import unit_of_work

SESSION_COOKIE = PORTAL_SESSION_COOKIE
CSRF_COOKIE = "hrcase_csrf"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class DemoIdentity:
    key: str
    subject: str
    roles: tuple[str, ...]
    employee_id: str | None
    name: str
    email: str
    description: str


# Dev sign-in only (ENVIRONMENT=development): staff ids match the routing policy's teams.
DEMO_IDENTITIES: tuple[DemoIdentity, ...] = (
    # The README quick start's reporter and the first demo case's (hrcase/demo_cases.yaml).
    DemoIdentity(
        "maria", "u-maria", ("employee",), "E-1001", "Maria Lopez", "maria.lopez@example.com",
        "Employee, reporter of the quick start's case",
    ),
    # The worker of the demo's serious injury claim (a case conference is required).
    DemoIdentity(
        "peter", "u-peter", ("employee",), "E-1004", "Peter Novak", "peter.novak@example.com",
        "Employee, injured in the warehouse (case conference consent)",
    ),
    DemoIdentity(
        "sam", "u-sam", ("employee",), "E-7001", "Sam Rivera", "sam.rivera@example.com",
        "Employee, warehouse",
    ),
    DemoIdentity(
        "alex", "u-alex", ("employee",), "E-7002", "Alex Chen", "alex.chen@example.com",
        "Employee, finance",
    ),
    DemoIdentity(
        "priya", "A-1001", ("hr_agent", "employee"), "A-1001", "Priya Shah",
        "priya.shah@example.com", "HR agent, HR Operations (logs phone calls)",
    ),
    DemoIdentity(
        "helen", "A-3001", ("investigator", "employee"), "A-3001", "Helen Carter",
        "helen.carter@example.com", "Investigator",
    ),
    DemoIdentity(
        "victor", "M-9002", ("hr_manager", "employee"), "M-9002", "Victor Almeida",
        "victor.almeida@example.com", "HR manager",
    ),
    DemoIdentity(
        "sofia", "A-4001", ("hr_agent", "employee"), "A-4001", "Sofia Rossi",
        "sofia.rossi@example.com", "HR agent, Injury Management (plans case conferences)",
    ),
    DemoIdentity(
        "ines", "AU-1001", ("auditor", "employee"), "AU-1001", "Ines Duarte",
        "ines.duarte@example.com", "Auditor (audit console)",
    ),
    # Sam Rivera's manager: a respondent in an investigation, the employer's representative
    # in case management; and a case manager of Employee Relations.
    DemoIdentity(
        "jordan", "u-jordan", ("employee",), "E-7100", "Jordan Blake", "jordan.blake@example.com",
        "Employee, warehouse manager (a respondent; the employer's representative)",
    ),
    DemoIdentity(
        "grace", "A-2001", ("hr_agent", "employee"), "A-2001", "Grace Okafor",
        "grace.okafor@example.com", "HR agent, Employee Relations (case manager)",
    ),
    # Data-subject requests (access, erasure) and legal holds: README "Data-subject rights".
    DemoIdentity(
        "nadia", "PO-1001", ("privacy_officer", "employee"), "PO-1001", "Nadia Karimi",
        "nadia.karimi@example.com", "Privacy officer (access and erasure requests)",
    ),
    # The second privacy officer: decides the erasure requests Nadia places (four-eyes).
    DemoIdentity(
        "omar", "PO-1002", ("privacy_officer", "employee"), "PO-1002", "Omar Haddad",
        "omar.haddad@example.com", "Privacy officer (decides the other's erasure requests)",
    ),
)  # fmt: skip
DEMO_BY_KEY = {identity.key: identity for identity in DEMO_IDENTITIES}
DEMO_BY_SUBJECT = {identity.subject: identity for identity in DEMO_IDENTITIES}


# Where sign-in returns by default, and the only tree a `next` path may point into.
AFTER_SIGN_IN = "/portal/cases"
# Staff land on their work queue instead.
STAFF_LANDING = "/portal/work-queue"


# Privacy officers land on their data-subject requests and legal holds.
PRIVACY_LANDING = "/portal/privacy"


def landing_page(roles: Iterable[str]) -> str:
    """Where a person lands after sign-in (without a `next`): privacy officers on the
    privacy page, staff on the work queue, everyone else on their own cases."""
    if "privacy_officer" in roles:
        return PRIVACY_LANDING
    return STAFF_LANDING if set(STAFF_ROLES).intersection(roles) else AFTER_SIGN_IN


NEXT_PREFIX = "/portal/"
MAX_NEXT_LENGTH = 2000


def safe_next(value: str | None) -> str | None:
    """`value` if it is a same-origin path under /portal/ to return to after sign-in, else None.

    Refused (open redirects and their disguises): anything with a scheme or host
    (`https://x`, `//x`), a backslash, whitespace or a control character (browsers drop or
    reinterpret them), encoded or not, dot segments, `//` inside the path, the sign-in and
    sign-out pages themselves, and anything longer than MAX_NEXT_LENGTH characters.
    """
    if not value or len(value) > MAX_NEXT_LENGTH or not value.startswith(NEXT_PREFIX):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.fragment:
        return None
    decoded = unquote(value)
    if any(c == "\\" or c.isspace() or not c.isprintable() for c in decoded):
        return None
    path = unquote(parts.path)
    if "//" in path or any(seg in (".", "..") for seg in path.split("/")):
        return None
    if path.rstrip("/") in ("/portal/sign-in", "/portal/sign-out"):
        return None
    return value


def dev_sign_in_enabled() -> bool:
    """The development sign-in is offered (ENVIRONMENT=development, and DEV_SIGN_IN=1 or
    single sign-on not configured: services/intake/config.py dev_sign_in_wanted)."""
    return dev_sign_in_wanted(get_settings())


def sso_client(request: Request) -> OidcClient | None:
    """The portal's OpenID Connect client when single sign-on is configured, else None."""
    runtime = getattr(request.app.state, "runtime", None)
    client = runtime.state.get("oidc") if runtime is not None else None
    return client if isinstance(client, OidcClient) else None


def form_targets(request: Request) -> tuple[str, ...]:
    """Origins besides this one that a portal form may lead to (CSP form-action): signing
    out continues at the single sign-on provider."""
    client = sso_client(request)
    return client.form_targets() if client is not None else ()


def token_service(request: Request) -> TokenService:
    # Shares the instance shared.auth caches on app.state, so API and portal agree.
    service = getattr(request.app.state, "token_service", None)
    if service is None:
        service = TokenService.from_settings(get_settings())
        request.app.state.token_service = service
    assert isinstance(service, TokenService)
    return service


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def load_session(request: Request) -> None:
    """Router dependency: resolve the signed-in person once per request.

    Sets `request.state.principal` (or None) and `request.state.portal_session` (the active
    session row, or None). A portal token whose session was revoked or has expired counts
    as signed out.
    """
    request.state.principal = None
    request.state.portal_session = None
    service = token_service(request)
    offered = ((request.cookies.get(SESSION_COOKIE), True), (bearer_token(request), False))
    for token, from_cookie in offered:
        if not token:
            continue
        try:
            principal = service.verify(token, audience=PORTAL_AUDIENCE)
        except InvalidToken:
            if from_cookie:
                continue
            try:  # a scripted client's API token: stateless, as the API takes it
                request.state.principal = service.verify(token)
            except InvalidToken:
                continue
            return
        found = await _active_session(request, principal.session_id)
        if found is None or found["subject"] != principal.subject:
            continue
        request.state.principal = principal
        request.state.portal_session = found
        return


async def _active_session(request: Request, session_id: str | None) -> dict[str, Any] | None:
    if not session_id:
        return None
    try:
        sid = UUID(session_id)
    except ValueError:
        return None
    return await sql.active_portal_session(_runtime(request).pool, sid)


def session_principal(request: Request) -> Principal | None:
    """The signed-in person (cookie, or a bearer header for scripted clients), if any."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal


async def start_session(
    request: Request, response: Response, subject: str, roles: tuple[str, ...], **claims: Any
) -> UUID:
    """Sign in: a new session (and CSRF token) replaces any session this browser had.
    Returns the new session's id."""
    await _revoke_current(request, "replaced")
    service = token_service(request)
    session_id = uuid4()
    await sql.create_portal_session(
        _runtime(request).pool,
        session_id=session_id,
        subject=subject,
        csrf_token=secrets.token_urlsafe(32),
        ttl_seconds=service.ttl_seconds,
    )
    token = service.mint(
        subject, roles, audience=PORTAL_AUDIENCE, session_id=str(session_id), **claims
    )
    set_session(request, response, token)
    # The pre-sign-in token is spent too: forms rendered before sign-in stop working.
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(32),
        httponly=True,
        samesite="lax",
        secure=_secure(),
        path="/",
    )
    return session_id


async def end_session(request: Request, response: Response) -> None:
    """Sign out: revoke the session server-side (and tell the audit console, which also
    accepts the cookie) and drop the cookies."""
    await _revoke_current(request, "signed_out")
    clear_session(response)


async def _revoke_current(request: Request, reason: Literal["signed_out", "replaced"]) -> None:
    current = getattr(request.state, "portal_session", None)
    principal = session_principal(request)
    if current is not None and principal is not None:
        await end_portal_session(
            unit_of_work(_runtime(request)),
            session_id=current["session_id"],
            subject=str(current["subject"]),
            roles=frozenset(principal.roles),
            reason=reason,
        )
    request.state.portal_session = None
    request.state.principal = None


def _secure() -> bool:
    return get_settings().environment != "development"


def set_session(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=token_service(request).ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=_secure(),
        path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    response.delete_cookie(CSRF_COOKIE, path="/", httponly=True, samesite="lax")


def _session_csrf(request: Request) -> str | None:
    current = getattr(request.state, "portal_session", None)
    return str(current["csrf_token"]) if current is not None else None


def csrf_token(request: Request) -> str:
    """The token forms embed: the session's; before sign-in the double-submit cookie's (a
    new one is minted, and set by `remember_csrf`, if absent)."""
    bound = _session_csrf(request)
    if bound is not None:
        return bound
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing
    token: str | None = getattr(request.state, "new_csrf", None)
    if token is None:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return token


def remember_csrf(request: Request, response: Response) -> None:
    token = getattr(request.state, "new_csrf", None)
    if token:
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="lax", secure=_secure(), path="/"
        )


def _same_origin(request: Request, value: str) -> bool:
    origin = urlsplit(value)
    return origin.scheme in ("http", "https") and origin.netloc == request.headers.get("host")


def _equal(expected: str, submitted: str) -> bool:
    # Bytes: compare_digest refuses non-ASCII str, and a form may send anything.
    encode = "utf-8", "backslashreplace"
    return hmac.compare_digest(expected.encode(*encode), submitted.encode(*encode))


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a cross-site POST: foreign Origin/Referer, or a token that is not this
    session's (before sign-in: not the cookie's)."""
    origin = request.headers.get("origin")
    if origin and not _same_origin(request, origin):  # includes the opaque origin "null"
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site form submission refused")
    if not origin:
        referer = request.headers.get("referer")
        if referer and not _same_origin(request, referer):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site form submission refused")
    expected = _session_csrf(request) or request.cookies.get(CSRF_COOKIE)
    if not expected or not submitted or not _equal(expected, submitted):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "the form has expired or was not sent from this site; reload the page and retry",
        )
