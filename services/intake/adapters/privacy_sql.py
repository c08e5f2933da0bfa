"""SQL of data-subject rights: the request tables, where a person appears in intake's read
model, and the scrub that erases them from it (README "Data-subject rights").

A data subject is matched by employee id (`$1`) or address (`$2`, compared lower-cased);
either may be NULL (a NULL never matches). Every function runs on the caller's
connection (inside the use case's transaction) unless it takes a pool.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

from shared.privacy.fields import ERASED
from shared.privacy.scrub import scrub_json

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

# An email sender intake knows no employee id of is identified as `email:<address>` (or
# `email:sha256:<digest>`): that "employee id" is their address, and goes with it.
_NO_ADDRESS_ID = "(CASE WHEN {column} LIKE 'email:%' THEN NULL ELSE {column} END)"


async def scrub_subject(
    conn: asyncpg.Connection,
    *,
    employee_id: str | None,
    email: str | None,
    subject_id: str,
    case_ids: Sequence[UUID],
) -> dict[str, int]:
    """Erase the subject from intake's read model in `case_ids` (their cases not kept for
    legal claims): names, addresses and the free text they wrote become ERASED (or NULL),
    with their files, mediation records, own history entries and, in cases they reported,
    the texts sealed as theirs (`_scrub_own_records`); ids, dates, category, status and
    team stay (the anonymous skeleton). Returns rows changed per table."""
    scope = list(case_ids)
    args = (employee_id, email, scope)
    changed: dict[str, int] = {}

    async def run(table: str, sql: str, *params: Any) -> None:
        result = await conn.execute(sql, *params)
        changed[table] = changed.get(table, 0) + int(result.split()[-1])

    # Their own messages first (while the reporter columns still identify them).
    await run(
        "case_messages",
        f"""UPDATE intake.case_messages m SET body = '{ERASED}', sender_email = NULL,
                   sender_employee_id = {_NO_ADDRESS_ID.format(column="m.sender_employee_id")}
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
    await _scrub_own_records(conn, run, changed, employee_id=employee_id, email=email, scope=scope)
    await run(
        "cases",
        f"""UPDATE intake.cases c SET reporter_name = '{ERASED}', reporter_email = NULL,
                   subject = '{ERASED}', description = '{ERASED}',
                   reporter_employee_id = {_NO_ADDRESS_ID.format(column="c.reporter_employee_id")}
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


# Whose words and identity (README "Data-subject rights", "what belongs to the person"):
# intake's copy follows the sealed copy. What the kernel seals under the person's key on
# the bus and in the audit log (their identity, their own words, and in a case they
# reported the free text sealed as the reporter's: staff notes, mediation meeting records,
# agreement terms) became unreadable there when their keys were destroyed, so it goes
# here too; what is not sealed (staff's reasons and titles, standard ground rules, staff
# documents) is the case record others wrote and stays, as it stays in the audit log.
_REPORTED = (
    f"EXISTS (SELECT 1 FROM intake.cases c WHERE c.case_id = {{table}}.case_id AND {_REPORTER})"
)
_PARTY = "(p->>'employee_id' = $1 OR lower(p->>'email') = lower($2))"
_ERASED_PARTY = "'" + json.dumps({"name": ERASED, "email": ERASED}) + "'"


def _doc(column: str) -> str:
    """A JSON column as a document: mediation's writes may store it as a JSON string
    holding the document's text (their readers accept both)."""
    text = f"({column} #>> '{{}}')::jsonb"
    return f"(CASE WHEN jsonb_typeof({column}) = 'string' THEN {text} ELSE {column} END)"


def email_actor_ids(email: str | None) -> list[str]:
    """The pseudonymous actor ids intake gives an email sender (domain/email/threads:
    `email-sender:` + 32 hex of the SHA-256 of the address as written; both cases)."""
    if not email:
        return []
    return sorted(
        {
            "email-sender:" + hashlib.sha256(form.encode("utf-8")).hexdigest()[:32]
            for form in (email, email.lower())
        }
    )


async def _scrub_own_records(
    conn: asyncpg.Connection,
    run: Any,
    changed: dict[str, int],
    *,
    employee_id: str | None,
    email: str | None,
    scope: list[UUID],
) -> None:
    """The person's files, mediation records, history entries and, in cases they reported,
    the notes and mediation texts sealed as theirs (run before the reporter columns are
    erased: `_REPORTER` still identifies them)."""
    args = (employee_id, email, scope)
    # Files the reporter sent (with the report, by email or with a message): staff's
    # documents carry `uploaded_by`; the reporter's do not.
    await run(
        "attachments",
        f"""UPDATE intake.attachments a SET filename = '{ERASED}', description = NULL,
                   content = ''::bytea, sha256 = '{ERASED}'
             WHERE a.case_id = ANY($3::uuid[]) AND a.uploaded_by IS NULL
               AND a.sha256 <> '{ERASED}' AND {_REPORTED.format(table="a")}""",
        *args,
    )
    # Staff notes on a case they reported: sealed as the reporter's on the bus.
    await run(
        "case_notes",
        f"""UPDATE intake.case_notes n SET body = '{ERASED}'
             WHERE n.case_id = ANY($3::uuid[]) AND n.body <> '{ERASED}'
               AND {_REPORTED.format(table="n")}""",
        *args,
    )
    # Their own history entries: their name as the actor, and whatever the entry says.
    actors = [employee_id] if employee_id else []
    actors += email_actor_ids(email)
    rows = await conn.fetch(
        """SELECT event_id, summary FROM intake.case_history
            WHERE case_id = ANY($2::uuid[]) AND actor_id = ANY($1::text[])
              AND actor_type IN ('employee', 'external', 'anonymous') FOR UPDATE""",
        actors,
        scope,
    )
    for row in rows:
        summary = row["summary"]
        if isinstance(summary, str):
            summary = json.loads(summary)
        await conn.execute(
            """UPDATE intake.case_history SET actor_name = NULL, summary = $2::text::jsonb
                WHERE event_id = $1""",
            row["event_id"],
            json.dumps(scrub_json(summary)),
        )
    changed["case_history"] = len(rows)
    # Mediation: the files of their own assessment (their documents, whoever uploaded
    # them), their own account as a party, and their name and address as a party.
    await run(
        "attachments",
        f"""UPDATE intake.attachments a SET filename = '{ERASED}', description = NULL,
                   content = ''::bytea, sha256 = '{ERASED}'
             WHERE a.case_id = ANY($3::uuid[]) AND a.sha256 <> '{ERASED}'
               AND a.attachment_id IN (
                   SELECT (d->>'attachment_id')::uuid
                     FROM intake.mediation_assessments s,
                          jsonb_array_elements({_doc("s.documents")}) d
                    WHERE s.case_id = a.case_id
                      AND jsonb_typeof({_doc("s.documents")}) = 'array'
                      AND (s.employee_id = $1 OR lower(s.email) = lower($2)))""",
        *args,
    )
    await run(
        "mediation_assessments",
        f"""UPDATE intake.mediation_assessments SET name = '{ERASED}', email = '{ERASED}',
                   account = '{ERASED}', desired_outcomes = '[]'::jsonb,
                   documents = '[]'::jsonb
             WHERE case_id = ANY($3::uuid[]) AND account <> '{ERASED}'
               AND (employee_id = $1 OR lower(email) = lower($2))""",
        *args,
    )
    parties = _doc("t.parties")
    for table in ("mediation_ground_rules", "mediation_agreements"):
        await run(
            table,
            f"""UPDATE intake.{table} t SET parties = (
                    SELECT jsonb_agg(CASE WHEN {_PARTY} THEN p || {_ERASED_PARTY}::jsonb
                                          ELSE p END ORDER BY n)
                      FROM jsonb_array_elements({parties}) WITH ORDINALITY AS e(p, n))
                 WHERE t.case_id = ANY($3::uuid[]) AND jsonb_typeof({parties}) = 'array'
                   AND EXISTS (SELECT 1 FROM jsonb_array_elements({parties}) p
                                WHERE {_PARTY})""",
            *args,
        )
    # In a case they reported, the mediation texts sealed as the reporter's: what was
    # discussed and proposed, the case manager's notes, the agreement's terms' text.
    proposals = _doc("proposals")
    await run(
        "mediation_meetings",
        f"""UPDATE intake.mediation_meetings m
               SET discussed = CASE WHEN discussed IS NULL THEN NULL ELSE '{ERASED}' END,
                   privileged_notes = CASE WHEN privileged_notes IS NULL THEN NULL
                                           ELSE '{ERASED}' END,
                   proposals = CASE WHEN jsonb_typeof({proposals}) = 'array' THEN COALESCE(
                       (SELECT jsonb_agg(to_jsonb('{ERASED}'::text))
                          FROM jsonb_array_elements({proposals})), '[]'::jsonb)
                       ELSE proposals END
             WHERE m.case_id = ANY($3::uuid[])
               AND (discussed <> '{ERASED}' OR privileged_notes <> '{ERASED}')
               AND {_REPORTED.format(table="m")}""",
        *args,
    )
    agreements = await conn.fetch(
        f"""SELECT agreement_id, version, terms FROM intake.mediation_agreements g
             WHERE g.case_id = ANY($3::uuid[]) AND {_REPORTED.format(table="g")}
             FOR UPDATE""",
        *args,
    )
    for agreement in agreements:
        terms = agreement["terms"]
        if isinstance(terms, str):
            terms = json.loads(terms)
        erased = [
            {**term, "text": ERASED} if isinstance(term, dict) and "text" in term else term
            for term in (terms or [])
        ]
        await conn.execute(
            """UPDATE intake.mediation_agreements SET terms = $3::text::jsonb
                WHERE agreement_id = $1 AND version = $2""",
            agreement["agreement_id"],
            agreement["version"],
            json.dumps(erased),
        )
