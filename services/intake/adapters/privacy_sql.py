"""SQL of data-subject rights: the request tables, where a person appears in intake's read
model, and the scrub that erases them from it (README "Data-subject rights").

A data subject is matched by employee id (`$1`) or address (`$2`, compared lower-cased);
either may be NULL (a NULL never matches). Every function runs on the caller's
connection (inside the use case's transaction) unless it takes a pool.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

from shared.privacy.fields import ERASED

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

# --- Requests ---


async def insert_erasure_request(
    conn: asyncpg.Connection,
    *,
    request_id: UUID,
    subject_id: str,
    employee_id: str | None,
    email: str | None,
    reason: str,
    requested_by: str,
    requested_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO intake.erasure_requests (request_id, subject_id, employee_id, email,
               reason, requested_by, requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        request_id,
        subject_id,
        employee_id,
        email,
        reason,
        requested_by,
        requested_at,
    )


async def get_erasure_request(
    conn: Conn, request_id: UUID, *, lock: bool = False
) -> dict[str, Any] | None:
    """The request row, locked FOR UPDATE with `lock` (so two deciders serialise)."""
    sql = "SELECT * FROM intake.erasure_requests WHERE request_id = $1"
    row = await conn.fetchrow(sql + (" FOR UPDATE" if lock else ""), request_id)
    return dict(row) if row else None


async def list_erasure_requests(conn: Conn, *, limit: int = 200) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM intake.erasure_requests ORDER BY requested_at DESC LIMIT $1", limit
    )
    return [dict(row) for row in rows]


async def record_erasure_decision(
    conn: asyncpg.Connection,
    request_id: UUID,
    *,
    status: str,
    decision: str,
    reason: str,
    decided_by: str,
    decided_at: datetime,
    kept: Sequence[UUID],
    blocked_by: Sequence[UUID],
    erased_case_ids: Sequence[UUID],
    keys_destroyed: int,
    clear_email: bool,
) -> None:
    await conn.execute(
        """UPDATE intake.erasure_requests SET status = $2, decision = $3,
               decision_reason = $4, decided_by = $5, decided_at = $6, kept_case_ids = $7,
               blocked_by = $8, erased_case_ids = $9, keys_destroyed = $10,
               email = CASE WHEN $11 THEN NULL ELSE email END
           WHERE request_id = $1""",
        request_id,
        status,
        decision,
        reason,
        decided_by,
        decided_at,
        list(kept),
        list(blocked_by),
        list(erased_case_ids),
        keys_destroyed,
        clear_email,
    )


async def insert_access_request(
    conn: asyncpg.Connection,
    *,
    request_id: UUID,
    subject_id: str,
    employee_id: str | None,
    email: str | None,
    requested_by: str,
    requested_at: datetime,
    export: dict[str, Any],
) -> None:
    await conn.execute(
        """INSERT INTO intake.access_requests (request_id, subject_id, employee_id, email,
               requested_by, requested_at, export, fulfilled_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $6)""",
        request_id,
        subject_id,
        employee_id,
        email,
        requested_by,
        requested_at,
        json.dumps(export),
    )


async def get_access_request(conn: Conn, request_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM intake.access_requests WHERE request_id = $1", request_id
    )
    if row is None:
        return None
    found = dict(row)
    if isinstance(found["export"], str):
        found["export"] = json.loads(found["export"])
    return found


async def list_access_requests(conn: Conn, *, limit: int = 200) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT request_id, subject_id, employee_id, email, requested_by, requested_at,
                  fulfilled_at, export IS NOT NULL AS export_available
             FROM intake.access_requests ORDER BY requested_at DESC LIMIT $1""",
        limit,
    )
    return [dict(row) for row in rows]


async def record_notification_sent(
    conn: asyncpg.Connection,
    *,
    notification_id: UUID,
    case_id: UUID | None,
    template: str,
    audience: str,
    recipient_id: str | None,
    channel: str,
    sent_at: datetime,
) -> None:
    """Keep one notification.sent (a redelivery changes nothing)."""
    await conn.execute(
        """INSERT INTO intake.notifications_sent (notification_id, case_id, template,
               audience, recipient_id, channel, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (notification_id) DO NOTHING""",
        notification_id,
        case_id,
        template,
        audience,
        recipient_id,
        channel,
        sent_at,
    )


# --- Where the subject appears ---

_REPORTER = "(c.reporter_employee_id = $1 OR lower(c.reporter_email) = lower($2))"

_SUBJECT_CASES = f"""
    SELECT c.case_id FROM intake.cases c WHERE {_REPORTER}
    UNION SELECT r.case_id FROM intake.case_respondents r
     WHERE r.employee_id = $1 OR r.resolved_employee_id = $1 OR lower(r.email) = lower($2)
    UNION SELECT i.case_id FROM intake.investigation_interviews i
     WHERE i.interviewee_employee_id = $1 OR lower(i.interviewee_email) = lower($2)
    UNION SELECT s.case_id FROM intake.investigation_statements s
     WHERE s.given_by_employee_id = $1
    UNION SELECT a.case_id FROM intake.investigation_allegations a
     WHERE a.respondent_employee_id = $1
    UNION SELECT v.case_id FROM intake.conference_participant_views v
     WHERE v.employee_id = $1 OR lower(v.email) = lower($2)
    UNION SELECT m.case_id FROM intake.case_messages m
     WHERE m.sender_employee_id = $1 OR lower(m.sender_email) = lower($2)
"""


async def subject_case_ids(conn: Conn, employee_id: str | None, email: str | None) -> list[UUID]:
    """Every case the subject appears in (reporter, respondent, interviewee, witness,
    conference participant, sender of a message)."""
    rows = await conn.fetch(_SUBJECT_CASES, employee_id, email)
    return sorted(row["case_id"] for row in rows)


_SKELETON = "c.case_id, c.reference, c.status, c.category, c.channel, c.submitted_at, c.updated_at"


async def reported_cases(
    conn: Conn, employee_id: str | None, email: str | None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {_SKELETON}, c.subject, c.description, c.reporter_name, c.reporter_email,
                   (SELECT count(*) FROM intake.case_respondents r
                     WHERE r.case_id = c.case_id) AS respondents_named
              FROM intake.cases c WHERE {_REPORTER} ORDER BY c.submitted_at""",
        employee_id,
        email,
    )
    return [dict(row) for row in rows]


async def messages_of(conn: Conn, case_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT message_id, case_id, channel, sender_role, sender_employee_id,
                  sender_email, body, received_at
             FROM intake.case_messages WHERE case_id = ANY($1::uuid[])
            ORDER BY received_at""",
        list(case_ids),
    )
    return [dict(row) for row in rows]


async def respondent_rows(
    conn: Conn, employee_id: str | None, email: str | None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {_SKELETON}, r.name, r.email FROM intake.case_respondents r
              JOIN intake.cases c USING (case_id)
             WHERE r.employee_id = $1 OR r.resolved_employee_id = $1 OR lower(r.email) = lower($2)
             ORDER BY c.submitted_at""",
        employee_id,
        email,
    )
    return [dict(row) for row in rows]


async def interview_rows(
    conn: Conn, employee_id: str | None, email: str | None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {_SKELETON}, i.interviewee_role, i.interviewee_name, i.interviewee_email,
                   i.scheduled_for
              FROM intake.investigation_interviews i JOIN intake.cases c USING (case_id)
             WHERE i.interviewee_employee_id = $1 OR lower(i.interviewee_email) = lower($2)
             ORDER BY i.scheduled_for""",
        employee_id,
        email,
    )
    return [dict(row) for row in rows]


async def statement_rows(conn: Conn, employee_id: str | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {_SKELETON}, s.given_by_role, s.text, s.review_state, s.corrections,
                   s.recorded_at
              FROM intake.investigation_statements s JOIN intake.cases c USING (case_id)
             WHERE s.given_by_employee_id = $1 ORDER BY s.recorded_at""",
        employee_id,
    )
    return [dict(row) for row in rows]


async def conference_rows(
    conn: Conn, employee_id: str | None, email: str | None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {_SKELETON}, v.conference_id, v.role, v.name, v.email,
                   v.status AS view_status
              FROM intake.conference_participant_views v JOIN intake.cases c USING (case_id)
             WHERE v.employee_id = $1 OR lower(v.email) = lower($2)
             ORDER BY v.updated_at""",
        employee_id,
        email,
    )
    return [dict(row) for row in rows]


async def notifications_to(conn: Conn, employee_id: str | None) -> list[dict[str, Any]]:
    """Notifications addressed to the employee (notifications names recipients by id)."""
    if employee_id is None:
        return []
    rows = await conn.fetch(
        """SELECT notification_id, case_id, template, channel, sent_at
             FROM intake.notifications_sent WHERE recipient_id = $1 ORDER BY sent_at""",
        employee_id,
    )
    return [dict(row) for row in rows]


# --- Erasure ---


async def scrub_subject(
    conn: asyncpg.Connection,
    *,
    employee_id: str | None,
    email: str | None,
    subject_id: str,
    case_ids: Sequence[UUID],
) -> dict[str, int]:
    """Erase the subject from intake's read model in `case_ids` (their cases not kept for
    legal claims): names, addresses and the free text they wrote become ERASED (or NULL);
    ids, dates, category, status and team stay (the anonymous skeleton). Returns rows
    changed per table."""
    scope = list(case_ids)
    args = (employee_id, email, scope)
    changed: dict[str, int] = {}

    async def run(table: str, sql: str, *params: Any) -> None:
        result = await conn.execute(sql, *params)
        changed[table] = changed.get(table, 0) + int(result.split()[-1])

    # Their own messages first (while the reporter columns still identify them).
    await run(
        "case_messages",
        f"""UPDATE intake.case_messages m SET body = '{ERASED}', sender_email = NULL
             WHERE m.case_id = ANY($3::uuid[]) AND m.body <> '{ERASED}'
               AND (m.sender_employee_id = $1 OR lower(m.sender_email) = lower($2)
                    OR (m.sender_role = 'reporter' AND EXISTS (
                        SELECT 1 FROM intake.cases c
                         WHERE c.case_id = m.case_id AND {_REPORTER})))""",
        *args,
    )
    await run(
        "phone_calls",
        f"""UPDATE intake.phone_calls p SET caller_details = NULL, callback_number = NULL
             WHERE p.case_id = ANY($3::uuid[]) AND (p.caller_employee_id = $1 OR EXISTS (
                 SELECT 1 FROM intake.cases c WHERE c.case_id = p.case_id AND {_REPORTER}))""",
        *args,
    )
    await run(
        "cases",
        f"""UPDATE intake.cases c SET reporter_name = '{ERASED}', reporter_email = NULL,
                   subject = '{ERASED}', description = '{ERASED}'
             WHERE c.case_id = ANY($3::uuid[]) AND {_REPORTER}""",
        *args,
    )
    await run(
        "case_respondents",
        f"""UPDATE intake.case_respondents r SET name = '{ERASED}', email = NULL
             WHERE r.case_id = ANY($3::uuid[])
               AND (r.employee_id = $1 OR r.resolved_employee_id = $1
                    OR lower(r.email) = lower($2))""",
        *args,
    )
    await run(
        "investigation_allegations",
        f"""UPDATE intake.investigation_allegations SET respondent_name = '{ERASED}'
             WHERE case_id = ANY($2::uuid[]) AND respondent_employee_id = $1""",
        employee_id,
        scope,
    )
    await run(
        "investigation_interviews",
        f"""UPDATE intake.investigation_interviews
               SET interviewee_name = '{ERASED}', interviewee_email = '{ERASED}'
             WHERE case_id = ANY($3::uuid[])
               AND (interviewee_employee_id = $1 OR lower(interviewee_email) = lower($2))""",
        *args,
    )
    await run(
        "investigation_statements",
        f"""UPDATE intake.investigation_statements SET given_by_name = '{ERASED}'
             WHERE case_id = ANY($2::uuid[]) AND given_by_employee_id = $1""",
        employee_id,
        scope,
    )
    await run(
        "conference_participant_views",
        f"""UPDATE intake.conference_participant_views SET name = '{ERASED}',
                   email = '{ERASED}', objection = NULL
             WHERE case_id = ANY($3::uuid[]) AND (employee_id = $1 OR lower(email) = lower($2))""",
        *args,
    )
    # The staff projection keeps each participant in a JSON list: only the subject's entry.
    await run(
        "conferences",
        f"""UPDATE intake.conferences f SET participants = (
                SELECT jsonb_agg(CASE WHEN p->>'employee_id' = $1
                                        OR lower(p->>'email') = lower($2)
                                      THEN p || '{{"name": "{ERASED}", "email": "{ERASED}"}}'::jsonb
                                      ELSE p END ORDER BY ordinality)
                  FROM jsonb_array_elements(f.participants) WITH ORDINALITY AS e(p, ordinality))
             WHERE f.case_id = ANY($3::uuid[]) AND jsonb_typeof(f.participants) = 'array'
               AND EXISTS (SELECT 1 FROM jsonb_array_elements(f.participants) p
                            WHERE p->>'employee_id' = $1 OR lower(p->>'email') = lower($2))""",
        *args,
    )
    # Exports of earlier access requests hold the subject's data: gone with it.
    await run(
        "access_requests",
        "UPDATE intake.access_requests SET export = NULL WHERE subject_id = $1",
        subject_id,
    )
    return changed
