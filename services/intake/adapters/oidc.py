"""The portal's OpenID Connect relying party, on Authlib (and joserfc for logout tokens).

Discovery, PKCE (S256), the nonce, the token request and the ID token's signature
(against the provider's JWKS, fetched again when a token names an unknown key) are
Authlib's; this module only holds the calls together and says what went wrong in words
the portal can show. Nothing here trusts a token's own `alg`: the algorithms are the
ones the provider's discovery document announces, never `none` or a symmetric one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from services.intake.config import OidcConfig
from services.intake.domain.sso import BACKCHANNEL_LOGOUT_EVENT

# Asymmetric signatures only: an HMAC "signed" with the client secret, or `none`, is refused
# whatever the discovery document says.
ACCEPTED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                       "ES512", "EdDSA")  # fmt: skip
LEEWAY_SECONDS = 60
# How long a logout token may have been issued before it is refused as stale.
LOGOUT_TOKEN_MAX_AGE_SECONDS = 300


class SignInFailed(Exception):
    """The provider's answer could not be used (bad code, bad token, provider error)."""


class InvalidLogoutToken(Exception):
    """A back-channel logout token that is not one (the message says which check)."""


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class ProviderLogout:
    """A verified back-channel logout: the provider session (`sid`) and/or subject."""

    issuer: str
    subject: str | None
    session: str | None


class OidcClient:
    """One provider, one registered client (OidcConfig). Safe to share across requests."""

    def __init__(self, config: OidcConfig) -> None:
        # Authlib and joserfc (with httpx, about 5 MB of RSS) are imported by a configured
        # client only: an intake without single sign-on never loads them.
        from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App

        self.config = config
        registry = OAuth()
        auth_method = "client_secret_basic" if config.client_secret else "none"
        client = registry.register(
            name="hrcase",
            client_id=config.client_id,
            client_secret=config.client_secret,
            server_metadata_url=config.issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={
                "scope": config.scopes,
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": auth_method,
                "timeout": 10,
            },
        )
        assert isinstance(client, StarletteOAuth2App)
        self._client = client

    async def metadata(self) -> dict[str, Any]:
        """The discovery document (read once, then cached); SignInFailed when unreachable
        or not this issuer's."""
        try:
            metadata: dict[str, Any] = await self._client.load_server_metadata()
        except Exception as exc:  # network, HTTP status, JSON: all "provider unavailable"
            raise SignInFailed(f"the sign-in provider is unavailable ({exc})") from exc
        if metadata.get("issuer") != self.config.issuer:
            self._client.server_metadata.clear()
            raise SignInFailed("the provider's discovery document names another issuer")
        return metadata

    def form_targets(self) -> tuple[str, ...]:
        """Origins a portal form may lead to (CSP form-action): sign-out ends at the
        provider. The issuer's, plus the discovered endpoints' once known."""
        urls = [self.config.issuer]
        meta = self._client.server_metadata
        urls += [meta[k] for k in ("authorization_endpoint", "end_session_endpoint") if k in meta]
        origins = {f"{p.scheme}://{p.netloc}" for p in map(urlsplit, urls) if p.netloc}
        return tuple(sorted(origins))

    async def authorization_request(self) -> AuthorizationRequest:
        """A new authorization request: code flow, PKCE S256, fresh state and nonce."""
        await self.metadata()
        rv = await self._client.create_authorization_url(self.config.redirect_url)
        return AuthorizationRequest(
            url=rv["url"], state=rv["state"], nonce=rv["nonce"], code_verifier=rv["code_verifier"]
        )

    async def redeem(self, *, code: str, code_verifier: str, nonce: str) -> dict[str, Any]:
        """Exchange `code` (with the PKCE verifier) and return the verified ID token's claims.

        Raises SignInFailed when the provider refuses the code, or the ID token's
        signature, issuer, audience, expiry, nonce or at_hash does not hold."""
        from authlib.integrations.base_client import OAuthError
        from authlib.oauth2.rfc6749.errors import OAuth2Error

        await self.metadata()
        try:
            token = await self._client.fetch_access_token(
                redirect_uri=self.config.redirect_url, code=code, code_verifier=code_verifier
            )
        except (OAuthError, OAuth2Error) as exc:
            raise SignInFailed(f"the provider refused the sign-in code ({exc})") from exc
        except Exception as exc:
            raise SignInFailed(f"the token request failed ({exc})") from exc
        if "id_token" not in token:
            raise SignInFailed("the provider returned no ID token")
        try:
            userinfo = await self._client.parse_id_token(
                token,
                nonce=nonce,
                claims_options={
                    "iss": {"essential": True, "values": [self.config.issuer]},
                    "nonce": {"essential": True},
                },
                leeway=LEEWAY_SECONDS,
            )
        except Exception as exc:  # signature, claims, or the keys unreadable: no sign-in
            raise SignInFailed(f"the ID token did not verify ({exc!r})") from exc
        return dict(userinfo)

    async def logout_url(self) -> str | None:
        """Where the browser goes to end its provider session (RP-initiated logout), back
        to the portal afterwards; None when the provider announces no end_session_endpoint
        (or is unreachable: the portal session is over either way)."""
        try:
            metadata = await self.metadata()
        except SignInFailed:
            return None
        if not metadata.get("end_session_endpoint"):
            return None
        result = await self._client.create_logout_url(
            post_logout_redirect_uri=self.config.post_logout_redirect_url,
            client_id=self.config.client_id,
        )
        return str(result["url"])

    async def verify_logout_token(self, token: str) -> ProviderLogout:
        """The logout a back-channel logout token (OpenID Connect Back-Channel Logout 1.0,
        section 2.6) asks for. Raises InvalidLogoutToken naming the failed check."""
        from joserfc.errors import JoseError

        metadata = await self.metadata()
        try:
            claims = await self._decode(token, metadata)
        except JoseError as exc:
            raise InvalidLogoutToken(f"signature or format: {exc}") from exc
        now = time.time()
        checks = (
            (claims.get("iss") == self.config.issuer, "iss is not the provider"),
            (_audience_holds(claims.get("aud"), self.config.client_id), "aud is not this client"),
            (isinstance(claims.get("iat"), int | float), "iat missing"),
            (now - float(claims.get("iat") or 0) <= LOGOUT_TOKEN_MAX_AGE_SECONDS + LEEWAY_SECONDS,
             "iat too old"),
            (float(claims.get("iat") or 0) <= now + LEEWAY_SECONDS, "iat in the future"),
            (not isinstance(claims.get("exp"), int | float)
             or float(claims["exp"]) >= now - LEEWAY_SECONDS, "expired"),
            (isinstance(claims.get("jti"), str) and bool(claims["jti"]), "jti missing"),
            (isinstance(claims.get("events"), dict)
             and isinstance(claims["events"].get(BACKCHANNEL_LOGOUT_EVENT), dict),
             "events lacks the back-channel logout event"),
            ("nonce" not in claims, "a logout token carries no nonce"),
            (bool(claims.get("sid") or claims.get("sub")), "neither sid nor sub"),
        )  # fmt: skip
        for holds, failure in checks:
            if not holds:
                raise InvalidLogoutToken(failure)
        sub, sid = claims.get("sub"), claims.get("sid")
        return ProviderLogout(
            issuer=self.config.issuer,
            subject=sub if isinstance(sub, str) and sub else None,
            session=sid if isinstance(sid, str) and sid else None,
        )

    async def _decode(self, token: str, metadata: dict[str, Any]) -> dict[str, Any]:
        from joserfc import jwt
        from joserfc.errors import InvalidKeyIdError
        from joserfc.jwk import KeySet
        from joserfc.jws import JWSRegistry

        offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=[a for a in offered if a in ACCEPTED_ALGORITHMS])
        keys = KeySet.import_key_set(await self._jwks(force=False))
        try:
            decoded = jwt.decode(token, keys, registry=registry)
        except InvalidKeyIdError:  # a key this client has not seen: rotated, read again once
            keys = KeySet.import_key_set(await self._jwks(force=True))
            decoded = jwt.decode(token, keys, registry=registry)
        if decoded.header.get("typ") not in (None, "logout+jwt", "JWT"):
            raise InvalidLogoutToken("typ is not logout+jwt")
        return dict(decoded.claims)

    async def _jwks(self, *, force: bool) -> Any:
        """The provider's JWKS (cached; read again when `force`). SignInFailed if unreadable."""
        try:
            jwks = await self._client.fetch_jwk_set(force=force)
        except Exception as exc:  # network, HTTP status, no jwks_uri
            raise SignInFailed(f"the provider's keys could not be read ({exc})") from exc
        return jwks


def _audience_holds(aud: Any, client_id: str) -> bool:
    return aud == client_id or (isinstance(aud, list) and client_id in aud)
