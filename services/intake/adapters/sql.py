"""Intake's tables (schema `intake`); only this module knows their SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.adapters.process_sql import process_role_holders


async def find_idempotency_key(conn: asyncpg.Connection, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT k.request_hash, c.case_id, c.reference, c.status"
        " FROM intake.idempotency_keys k JOIN intake.cases c USING (case_id) WHERE k.key = $1",
        key,
    )


async def save_idempotency_key(
    conn: asyncpg.Connection, key: str, request_hash: str, case_id: UUID
) -> None:
    await conn.execute(
        "INSERT INTO intake.idempotency_keys (key, request_hash, case_id) VALUES ($1, $2, $3)",
        key,
        request_hash,
        case_id,
    )


# `intake.cases.*` plus who holds a process role: every read that decides access uses it.
CASE_COLUMNS = f"intake.cases.*, {process_role_holders()}"


async def get_case(conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID) -> dict[str, Any] | None:
    """The case row with `process_role_holders` (list of staff ids), or None."""
    row = await conn.fetchrow(
        f"SELECT {CASE_COLUMNS} FROM intake.cases WHERE case_id = $1", case_id
    )
    return dict(row) if row else None


async def lock_case_status(conn: asyncpg.Connection, case_id: UUID) -> str | None:
    status = await conn.fetchval(
        "SELECT status FROM intake.cases WHERE case_id = $1 FOR UPDATE", case_id
    )
    return str(status) if status is not None else None


async def update_case(conn: asyncpg.Connection, case_id: UUID, **fields: Any) -> None:
    """Set read-model columns; names come from our own code, never from input."""
    columns = list(fields)
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, start=2))
    await conn.execute(
        f"UPDATE intake.cases SET {assignments}, updated_at = now() WHERE case_id = $1",
        case_id,
        *(fields[name] for name in columns),
    )


async def list_cases_for(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    employee_id: str | None,
    subject: str,
    reporter_ids: Sequence[str],
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Cases a person reported (`reporter_ids`, case.reporter_ids; never anonymous ones),
    logged/submitted for someone else, or (staff) hold a process role on, with
    `process_role_holders`."""
    rows = await conn.fetch(
        f"""SELECT {CASE_COLUMNS} FROM intake.cases
           WHERE (reporter_employee_id = ANY($4::text[]) AND NOT anonymous)
              OR logged_by = $2 OR submitted_by = $2
              OR EXISTS (SELECT 1 FROM intake.case_process_roles r
                         WHERE r.case_id = intake.cases.case_id
                           AND r.staff_id IN ($1, $2))
           ORDER BY submitted_at DESC LIMIT $3""",
        employee_id,
        subject,
        limit,
        list(reporter_ids),
    )
    return [dict(row) for row in rows]


async def list_messages(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT m.message_id, m.channel, m.sender_role, m.body, m.received_at,
                  coalesce(array_agg(a.filename ORDER BY a.filename)
                           FILTER (WHERE a.attachment_id IS NOT NULL), '{}') AS attachments
           FROM intake.case_messages m
           LEFT JOIN intake.attachments a ON a.message_id = m.message_id
           WHERE m.case_id = $1
           GROUP BY m.message_id ORDER BY m.received_at""",
        case_id,
    )
    return [dict(row) for row in rows]


async def list_case_attachments(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID
) -> list[dict[str, Any]]:
    """The files the case came with (not its messages' nor staff's), without their bytes."""
    rows = await conn.fetch(
        """SELECT attachment_id, filename, content_type, size, sha256 FROM intake.attachments
           WHERE case_id = $1 AND message_id IS NULL AND uploaded_by IS NULL
           ORDER BY created_at, filename""",
        case_id,
    )
    return [dict(row) for row in rows]


async def find_anonymous_case(conn: asyncpg.Connection, reference: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM intake.cases WHERE reference = $1 AND anonymous"
        " AND anonymous_key_hash IS NOT NULL",
        reference,
    )
    return dict(row) if row else None


async def count_key_attempt(
    conn: asyncpg.Connection,
    *,
    source_hash: str,
    reference_hash: str,
    threshold: int,
    lock_seconds: int,
) -> tuple[int, float | None]:
    """Count one secret-key attempt from a source at a reference, atomically.

    One statement (the row lock serialises concurrent attempts): returns the attempt's
    number since the last lock expired and, once `threshold` is reached, the seconds left
    on the lock. An attempt numbered above `threshold` must be refused unchecked.
    """
    row = await conn.fetchrow(
        """INSERT INTO intake.anonymous_key_attempts AS a
               (source_hash, reference_hash, attempts, locked_until)
           VALUES ($1, $2, 1, CASE WHEN $3 <= 1 THEN now() + make_interval(secs => $4) END)
           ON CONFLICT (source_hash, reference_hash) DO UPDATE SET
               attempts = CASE WHEN a.locked_until <= now() THEN 1 ELSE a.attempts + 1 END,
               locked_until = CASE
                   WHEN a.locked_until <= now() THEN NULL
                   WHEN a.locked_until IS NULL AND a.attempts + 1 >= $3
                       THEN now() + make_interval(secs => $4)
                   ELSE a.locked_until END,
               last_attempt_at = now()
           RETURNING attempts, extract(epoch FROM locked_until - now()) AS wait""",
        source_hash,
        reference_hash,
        threshold,
        lock_seconds,
    )
    assert row is not None
    wait = row["wait"]
    return int(row["attempts"]), float(wait) if wait is not None else None


async def clear_key_attempts(
    conn: asyncpg.Connection, *, source_hash: str, reference_hash: str
) -> None:
    """The right key from a source forgets its earlier mistakes (and old rows go)."""
    await conn.execute(
        """DELETE FROM intake.anonymous_key_attempts
           WHERE (source_hash = $1 AND reference_hash = $2)
              OR last_attempt_at < now() - interval '1 day'""",
        source_hash,
        reference_hash,
    )


async def save_phone_call(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    caller_employee_id: str | None,
    caller_details: str | None,
    called_at: datetime,
    duration_seconds: int,
    callback_number: str | None,
    logged_by: str,
) -> None:
    await conn.execute(
        """INSERT INTO intake.phone_calls (case_id, caller_employee_id, caller_details,
               called_at, duration_seconds, callback_number, logged_by)
           VALUES ($1,$2,$3,$4,$5,$6,$7)""",
        case_id,
        caller_employee_id,
        caller_details,
        called_at,
        duration_seconds,
        callback_number,
        logged_by,
    )


async def get_phone_call(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID
) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM intake.phone_calls WHERE case_id = $1", case_id)
    return dict(row) if row else None


async def get_attachment(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID, attachment_id: UUID
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT filename, content_type, content FROM intake.attachments"
        " WHERE case_id = $1 AND attachment_id = $2",
        case_id,
        attachment_id,
    )
    return dict(row) if row else None


async def lock_case_for_action(conn: asyncpg.Connection, case_id: UUID) -> dict[str, Any] | None:
    """The case row, locked until commit so a request is checked against the status the
    projections last committed (a concurrent case.status_changed waits, or we wait on it)."""
    row = await conn.fetchrow(
        f"SELECT {CASE_COLUMNS} FROM intake.cases WHERE case_id = $1 FOR NO KEY UPDATE",
        case_id,
    )
    return dict(row) if row else None


async def insert_note(
    conn: asyncpg.Connection,
    *,
    note_id: UUID,
    case_id: UUID,
    author_id: str,
    body: str,
    internal: bool,
    created_at: datetime,
    author_name: str | None = None,
) -> None:
    """`author_name`: the author's display name when written (staff are shown by name)."""
    await conn.execute(
        """INSERT INTO intake.case_notes (note_id, case_id, author_id, author_name, body,
               internal, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        note_id,
        case_id,
        author_id,
        author_name,
        body,
        internal,
        created_at,
    )
    await conn.execute(
        "UPDATE intake.cases SET updated_at = $2 WHERE case_id = $1", case_id, created_at
    )


async def linked_cases(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID
) -> list[dict[str, Any]]:
    """The case this one follows up, and the follow-up cases opened from it (oldest first)."""
    rows = await conn.fetch(
        """SELECT c.case_id, c.reference, 'follows_up' AS relation, c.submitted_at
           FROM intake.cases c
           JOIN intake.cases me ON me.follows_up_case_id = c.case_id WHERE me.case_id = $1
           UNION ALL
           SELECT case_id, reference, 'followed_up_by', submitted_at
           FROM intake.cases WHERE follows_up_case_id = $1
           ORDER BY submitted_at""",
        case_id,
    )
    return [
        {"case_id": r["case_id"], "reference": r["reference"], "relation": r["relation"]}
        for r in rows
    ]


async def list_notes(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID, *, include_internal: bool
) -> list[dict[str, Any]]:
    """A case's notes, oldest first; internal ones only when asked (staff views)."""
    rows = await conn.fetch(
        """SELECT note_id, author_id, author_name, body, internal, created_at
           FROM intake.case_notes
           WHERE case_id = $1 AND (NOT internal OR $2) ORDER BY created_at, note_id""",
        case_id,
        include_internal,
    )
    return [dict(row) for row in rows]


async def insert_reporter_status_update(
    conn: asyncpg.Connection,
    *,
    event_id: UUID,
    case_id: UUID,
    kind: str,
    reason: str | None,
    occurred_at: datetime,
) -> None:
    """Record a status update the reporter sees; a redelivered event adds nothing."""
    await conn.execute(
        """INSERT INTO intake.reporter_status_updates
               (event_id, case_id, kind, reason, occurred_at)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING""",
        event_id,
        case_id,
        kind,
        reason,
        occurred_at,
    )


async def list_reporter_status_updates(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID
) -> list[dict[str, Any]]:
    """The reporter-facing status updates of a case, oldest first."""
    rows = await conn.fetch(
        """SELECT kind, reason, occurred_at FROM intake.reporter_status_updates
           WHERE case_id = $1 ORDER BY occurred_at, event_id""",
        case_id,
    )
    return [dict(row) for row in rows]


# --- Portal sessions -------------------------------------------------------------------------


async def create_portal_session(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    session_id: UUID,
    subject: str,
    csrf_token: str,
    ttl_seconds: int,
) -> None:
    """Record a sign-in; sessions that ended more than a day ago are purged on the way."""
    await conn.execute(
        "DELETE FROM intake.portal_sessions WHERE expires_at < now() - interval '1 day'"
    )
    await conn.execute(
        """INSERT INTO intake.portal_sessions (session_id, subject, csrf_token, expires_at)
           VALUES ($1, $2, $3, now() + make_interval(secs => $4))""",
        session_id,
        subject,
        csrf_token,
        ttl_seconds,
    )


async def active_portal_session(
    conn: asyncpg.Connection | asyncpg.Pool, session_id: UUID
) -> dict[str, Any] | None:
    """The session if it exists, is not revoked and has not expired."""
    row = await conn.fetchrow(
        """SELECT session_id, subject, csrf_token, provider_issuer FROM intake.portal_sessions
           WHERE session_id = $1 AND revoked_at IS NULL AND expires_at > now()""",
        session_id,
    )
    return dict(row) if row else None


async def revoke_portal_session(conn: asyncpg.Connection | asyncpg.Pool, session_id: UUID) -> bool:
    """Revoke the session; False when it was already revoked (or never existed)."""
    status = await conn.execute(
        "UPDATE intake.portal_sessions SET revoked_at = now()"
        " WHERE session_id = $1 AND revoked_at IS NULL",
        session_id,
    )
    return str(status).endswith(" 1")
