"""Single sign-on use cases: start a sign-in, finish it, and end sessions the provider ends.

A sign-in is bound three ways: the browser holds the `state` (a cookie), the server holds
the nonce and the PKCE verifier under the state's hash (single use, ten minutes), and the
provider must return the same state. The ID token is verified by the OpenID Connect
client (adapters/oidc.py) before the claims mean anything here.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from services.intake.adapters import sso_sql
from services.intake.adapters.oidc import OidcClient, ProviderLogout, SignInFailed
from services.intake.application.sessions import end_portal_session
from services.intake.domain.sso import ClaimNames, SsoIdentity, identity_from_claims
from shared.envelope import Actor
from shared.service import Runtime
from shared.uow import unit_of_work

log = structlog.get_logger()

PENDING_SIGN_IN_SECONDS = 600
# The actor of a session ended by the provider's back-channel logout (ids only).
PROVIDER_LOGOUT_ACTOR = Actor(type="system", id="sso-backchannel-logout")


@dataclass(frozen=True)
class SignInStarted:
    """Where to send the browser, and the state it must keep (in a cookie) meanwhile."""

    provider_url: str
    state: str


async def start_sign_in(
    runtime: Runtime, client: OidcClient, next_page: str | None
) -> SignInStarted:
    """A new authorization request, remembered server-side. Raises SignInFailed when the
    provider cannot be reached."""
    request = await client.authorization_request()
    await sso_sql.record_pending_sign_in(
        runtime.pool,
        state=request.state,
        nonce=request.nonce,
        code_verifier=request.code_verifier,
        next_page=next_page,
        ttl_seconds=PENDING_SIGN_IN_SECONDS,
    )
    return SignInStarted(provider_url=request.url, state=request.state)


@dataclass(frozen=True)
class SignedIn:
    identity: SsoIdentity
    next_page: str | None


async def finish_sign_in(
    runtime: Runtime, client: OidcClient, *, state: str, code: str
) -> SignedIn:
    """The person the provider vouches for, from the code it returned with `state`.

    Raises SignInFailed (unknown, expired or reused state; a code or ID token that does
    not hold) or domain SignInRefused (no mapped role, no employee id)."""
    pending = await sso_sql.take_pending_sign_in(runtime.pool, state)
    if pending is None:
        raise SignInFailed("the sign-in is unknown, has expired or was already used")
    claims = await client.redeem(
        code=code, code_verifier=pending["code_verifier"], nonce=pending["nonce"]
    )
    config = client.config
    identity = identity_from_claims(
        claims,
        names=ClaimNames(
            groups=config.groups_claim,
            employee_id=config.employee_id_claim,
            email=config.email_claim,
            name=config.name_claim,
        ),
        role_map=config.role_map,
    )
    return SignedIn(identity=identity, next_page=pending["next_page"])


async def end_provider_sessions(runtime: Runtime, logout: ProviderLogout) -> int:
    """End every active portal session the logout names (by `sid`, else by `sub`), each
    revoked and announced (`portal.session_ended`, reason provider_logout). Returns how
    many ended; none is not an error (the provider tells every client it knows)."""
    sessions = await sso_sql.sessions_of_provider(
        runtime.pool,
        issuer=logout.issuer,
        subject=logout.subject,
        provider_session=logout.session,
    )
    ended = 0
    for row in sessions:
        if await end_portal_session(
            unit_of_work(runtime),
            session_id=row["session_id"],
            subject=str(row["subject"]),
            roles=frozenset(),
            reason="provider_logout",
            actor=PROVIDER_LOGOUT_ACTOR,
        ):
            ended += 1
    log.info("provider logout", sessions_ended=ended)
    return ended
