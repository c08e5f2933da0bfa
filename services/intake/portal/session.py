"""Portal sessions and CSRF protection.

The session is the same signed bearer token the API takes, kept in an HttpOnly,
SameSite=Lax cookie (Secure outside development). Every form carries a CSRF token that must
equal the `hrcase_csrf` cookie (double submit), and a POST whose Origin or Referer names
another site is refused before that.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, Response, status

from shared.auth import InvalidToken, Principal, TokenService, bearer_token
from shared.settings import get_settings

SESSION_COOKIE = "hrcase_session"
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
)  # fmt: skip
DEMO_BY_KEY = {identity.key: identity for identity in DEMO_IDENTITIES}
DEMO_BY_SUBJECT = {identity.subject: identity for identity in DEMO_IDENTITIES}


def dev_sign_in_enabled() -> bool:
    return get_settings().environment == "development"


def token_service(request: Request) -> TokenService:
    # Shares the instance shared.auth caches on app.state, so API and portal agree.
    service = getattr(request.app.state, "token_service", None)
    if service is None:
        service = TokenService.from_settings(get_settings())
        request.app.state.token_service = service
    assert isinstance(service, TokenService)
    return service


def session_principal(request: Request) -> Principal | None:
    """The signed-in person (cookie, or a bearer header for scripted clients), if any."""
    token = request.cookies.get(SESSION_COOKIE) or bearer_token(request)
    if not token:
        return None
    try:
        return token_service(request).verify(token)
    except InvalidToken:
        return None


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


def csrf_token(request: Request) -> str:
    """The token forms embed; a new one is minted (and set by `remember_csrf`) if absent."""
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


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a cross-site POST: foreign Origin/Referer, or a token that does not match."""
    origin = request.headers.get("origin")
    if origin and not _same_origin(request, origin):  # includes the opaque origin "null"
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site form submission refused")
    if not origin:
        referer = request.headers.get("referer")
        if referer and not _same_origin(request, referer):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site form submission refused")
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "the form has expired or was not sent from this site; reload the page and retry",
        )
