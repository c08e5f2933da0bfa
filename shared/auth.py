"""Identity on the APIs: signed bearer tokens (JWT via PyJWT) naming a subject and roles
(the portal signs people in through the company's OpenID Connect provider, intake's
`application/sso.py`, and keeps a server-side session).

Every API call and portal page acts as a `Principal`. Services verify tokens locally with
the shared signing key (no call to another service). Roles:
- employee: raises cases and sees only their own;
- hr_agent: works cases assigned to them or their team, logs phone calls;
- hr_manager: assigns and reassigns, sees their teams' cases;
- investigator: works restricted cases assigned to them;
- auditor: reads the audit record (timelines, exports, access log);
- admin: operates the system (policy, directory imports);
- privacy_officer: handles data-subject requests (access, erasure) and legal holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal, get_args

import jwt
from fastapi import Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict

from shared.settings import DEV_JWT_SECRET, Settings, get_settings

Role = Literal[
    "employee",
    "hr_agent",
    "hr_manager",
    "investigator",
    "auditor",
    "admin",
    "privacy_officer",
]
ROLES: frozenset[str] = frozenset(get_args(Role))
ISSUER = "hrcase"
AUDIENCE = "hrcase"
ALGORITHM = "HS256"
# The portal's session token (cookie PORTAL_SESSION_COOKIE): its own audience, so the JSON
# APIs refuse it; only the portal and the audit console (cookie only) accept it.
PORTAL_AUDIENCE = "hrcase-portal"
PORTAL_SESSION_COOKIE = "hrcase_session"


class InvalidToken(Exception):
    pass


class InsecureConfiguration(RuntimeError):
    """A process must not start with these settings (the message says which and why)."""


def refuse_insecure_signing_key(settings: Settings) -> None:
    """Raise InsecureConfiguration unless the token signing key is fit for `settings`.

    Checked when every service process and the `hrcase` CLI start, before anything else:
    in production the published development key (AUTH_JWT_SECRET unset or set to it)
    would let anyone mint tokens for any role. A key under 32 characters is refused in
    every environment.
    """
    if settings.environment == "production" and settings.auth_jwt_secret == DEV_JWT_SECRET:
        raise InsecureConfiguration(
            "refusing to start: ENVIRONMENT=production with the development token signing key"
            " (AUTH_JWT_SECRET is unset or the published development value, so anyone could"
            " mint tokens); set AUTH_JWT_SECRET to a secret of at least 32 characters"
        )
    if len(settings.auth_jwt_secret) < 32:
        raise InsecureConfiguration(
            "refusing to start: AUTH_JWT_SECRET is shorter than 32 characters"
        )


class Principal(BaseModel):
    """Who is acting: a stable subject id and roles; `employee_id` links to HR records."""

    model_config = ConfigDict(frozen=True)
    subject: str
    roles: frozenset[Role]
    employee_id: str | None = None
    name: str | None = None
    # The address on the person's HR record (identity provider / directory), when the token
    # carries one: an employee's own case is raised with it, never with a typed one.
    email: str | None = None
    # True only when the portal's own sign-in vouched for `email` (the development
    # directory, or a provider's `email_verified` claim) in a portal session token. An API
    # token's `email` is whatever its minter wrote: never verified, so nothing that trusts
    # the address alone (a case opened by mail from it) opens to it.
    email_verified: bool = False
    # The token's `jti` when it belongs to a server-side session (the portal's), which the
    # service that issued it checks on every request so signing out revokes it at once.
    session_id: str | None = None

    def has_any(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))


class TokenService:
    def __init__(self, secret: str, *, ttl_seconds: int = 8 * 3600) -> None:
        if len(secret) < 32:
            raise ValueError("the token signing key must be at least 32 characters")
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenService:
        if settings.environment == "production" and settings.auth_jwt_secret == DEV_JWT_SECRET:
            raise RuntimeError("AUTH_JWT_SECRET must be set in production")
        return cls(settings.auth_jwt_secret, ttl_seconds=settings.auth_token_ttl_seconds)

    def mint(
        self,
        subject: str,
        roles: Iterable[str],
        *,
        employee_id: str | None = None,
        name: str | None = None,
        email: str | None = None,
        email_verified: bool = False,
        ttl_seconds: int | None = None,
        audience: str = AUDIENCE,
        session_id: str | None = None,
    ) -> str:
        unknown = set(roles) - ROLES
        if unknown:
            raise ValueError(f"unknown roles: {sorted(unknown)}")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": now + (ttl_seconds or self.ttl_seconds),
            "roles": sorted(set(roles)),
        }
        if employee_id:
            claims["employee_id"] = employee_id
        if name:
            claims["name"] = name
        if email:
            claims["email"] = email
            if email_verified:
                claims["email_verified"] = True
        if session_id:
            claims["jti"] = session_id
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str, *, audience: str = AUDIENCE) -> Principal:
        """The principal of a valid token for `audience`; InvalidToken otherwise."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],  # never trust the token's own `alg`
                audience=audience,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not set(roles) <= ROLES:
            raise InvalidToken("token carries unknown roles")
        email = _claimed_email(claims.get("email"))
        return Principal(
            subject=str(claims["sub"]),
            roles=frozenset(roles),
            employee_id=claims.get("employee_id"),
            name=claims.get("name"),
            email=email,
            # Honoured for the portal's audience only: those tokens are minted by the
            # portal's sign-in alone, and each request checks their session server-side.
            email_verified=(
                audience == PORTAL_AUDIENCE
                and email is not None
                and claims.get("email_verified") is True
            ),
            session_id=str(claims["jti"]) if claims.get("jti") else None,
        )


def _claimed_email(value: Any) -> str | None:
    """The token's `email` claim if it is a plausible address (a string with an @), else
    None: a malformed claim must not stand in for the address on file."""
    if isinstance(value, str) and "@" in value and len(value) <= 320:
        return value
    return None


def _token_service(request: Request) -> TokenService:
    service = getattr(request.app.state, "token_service", None)
    if service is None:
        service = TokenService.from_settings(get_settings())
        request.app.state.token_service = service
    assert isinstance(service, TokenService)
    return service


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, from `Authorization: Bearer <jwt>`; 401 otherwise."""
    token = bearer_token(request)
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return _token_service(request).verify(token)
    except InvalidToken as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"invalid token: {exc}",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from exc


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    """FastAPI dependency factory: 403 unless the caller holds one of `roles`."""

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.has_any(*roles):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"requires one of the roles: {', '.join(roles)}"
            )
        return principal

    return check
