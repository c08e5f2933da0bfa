"""Signed, expiring links for people without an account (a conference's participants).

Notifications mints a link into each participant's mail; intake's portal verifies it and
shows that participant only what the link names (one conference), never the rest of the
case. A link is a JWT (PyJWT, HS256) under a key derived from AUTH_JWT_SECRET for this one
purpose, with its own audience: it can never stand in for a session or an API token, and a
session or API token can never stand in for it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import jwt

ISSUER = "hrcase"
AUDIENCE = "hrcase-conference-participant"
ALGORITHM = "HS256"
PATH_PREFIX = "/portal/conference-links/"


class InvalidLink(Exception):
    """The link is malformed, forged, for another purpose, or expired (the message says)."""


@dataclass(frozen=True)
class ParticipantLink:
    """What a valid link grants: one participant's view of one conference."""

    case_id: UUID
    conference_id: UUID
    participant_id: UUID
    expires_at: datetime


def _key(secret: str) -> bytes:
    # A key of its own: rotating or leaking a link key never touches session tokens.
    return hmac.new(secret.encode(), b"hrcase participant links v1", hashlib.sha256).digest()


def mint_participant_link(
    secret: str,
    *,
    case_id: UUID,
    conference_id: UUID,
    participant_id: UUID,
    expires_at: datetime,
    issued_at: datetime | None = None,
) -> str:
    """A URL-safe token (the last segment of `PATH_PREFIX` + token) valid until
    `expires_at` (aware datetime). Raises ValueError for a naive `expires_at`."""
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    now = issued_at or datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(participant_id),
        "case": str(case_id),
        "conf": str(conference_id),
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(claims, _key(secret), algorithm=ALGORITHM)


def verify_participant_link(secret: str, token: str) -> ParticipantLink:
    """The grant of a valid, unexpired link; raises InvalidLink otherwise."""
    try:
        claims = jwt.decode(
            token,
            _key(secret),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
        return ParticipantLink(
            case_id=UUID(str(claims["case"])),
            conference_id=UUID(str(claims["conf"])),
            participant_id=UUID(str(claims["sub"])),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidLink("this link has expired") from exc
    except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
        raise InvalidLink("this link is not valid") from exc


def participant_link_url(portal_base_url: str, token: str) -> str:
    return portal_base_url.rstrip("/") + PATH_PREFIX + token
