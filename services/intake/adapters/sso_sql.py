"""SQL of single sign-on: pending sign-ins and the provider's session of a portal session."""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

import asyncpg


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "backslashreplace")).hexdigest()


async def record_pending_sign_in(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    state: str,
    nonce: str,
    code_verifier: str,
    next_page: str | None,
    ttl_seconds: int,
) -> None:
    """Remember a sign-in sent to the provider (expired ones are purged on the way)."""
    await conn.execute("DELETE FROM intake.sso_sign_ins WHERE expires_at < now()")
    await conn.execute(
        """INSERT INTO intake.sso_sign_ins (state_hash, nonce, code_verifier, next_page,
               expires_at)
           VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))""",
        _state_hash(state),
        nonce,
        code_verifier,
        next_page,
        ttl_seconds,
    )


async def take_pending_sign_in(
    conn: asyncpg.Connection | asyncpg.Pool, state: str
) -> dict[str, Any] | None:
    """The unexpired sign-in with this `state`, deleted as it is read (a state works
    once); None when there is none."""
    row = await conn.fetchrow(
        """DELETE FROM intake.sso_sign_ins WHERE state_hash = $1
           RETURNING nonce, code_verifier, next_page, expires_at > now() AS fresh""",
        _state_hash(state),
    )
    return dict(row) if row and row["fresh"] else None


async def link_provider_session(
    conn: asyncpg.Connection | asyncpg.Pool,
    session_id: UUID,
    *,
    issuer: str,
    subject: str,
    provider_session: str | None,
) -> None:
    """Note which provider session signed in portal session `session_id`."""
    await conn.execute(
        """UPDATE intake.portal_sessions
           SET provider_issuer = $2, provider_subject = $3, provider_session = $4
           WHERE session_id = $1""",
        session_id,
        issuer,
        subject,
        provider_session,
    )


async def sessions_of_provider(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    issuer: str,
    subject: str | None,
    provider_session: str | None,
) -> list[dict[str, Any]]:
    """Active portal sessions signed in by this provider session (`sid`, and `sub` when
    given too), or by any session of `subject` when no sid is given; none when neither."""
    if subject is None and provider_session is None:
        return []
    rows = await conn.fetch(
        """SELECT session_id, subject FROM intake.portal_sessions
           WHERE provider_issuer = $1 AND revoked_at IS NULL
             AND ($2::text IS NULL OR provider_subject = $2)
             AND ($3::text IS NULL OR provider_session = $3)""",
        issuer,
        subject,
        provider_session,
    )
    return [dict(row) for row in rows]
