"""Writing a case, a message and their attachments (schema `intake`), in the caller's
transaction. The one path every channel takes is `application/cases.py`."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.events import Attachment


async def next_reference_number(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT nextval('intake.case_reference_seq')"))


async def insert_case(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    reference: str,
    channel: str,
    subject: str,
    description: str,
    reporter_employee_id: str | None,
    reporter_name: str | None,
    reporter_email: str | None,
    requested_category: str | None,
    status: str,
    submitted_at: datetime,
    anonymous: bool,
    anonymous_key_hash: str | None,
    respondent_employee_ids: list[str],
    urgent: bool,
    injury: dict[str, Any] | None,
    logged_by: str | None,
    submitted_by: str | None,
    source_message_id: str | None,
    follows_up_case_id: UUID | None,
    follow_up_of_event_id: UUID | None,
) -> None:
    await conn.execute(
        """INSERT INTO intake.cases (case_id, reference, channel, subject, description,
               reporter_employee_id, reporter_name, reporter_email, requested_category,
               status, submitted_at, updated_at, anonymous, anonymous_key_hash,
               respondent_employee_ids, urgent, injury, logged_by, submitted_by,
               source_message_id, follows_up_case_id, follow_up_of_event_id)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$11,$12,$13,$14,$15,$16,$17,$18,$19,
                   $20,$21)""",
        case_id,
        reference,
        channel,
        subject,
        description,
        reporter_employee_id,
        reporter_name,
        reporter_email,
        requested_category,
        status,
        submitted_at,
        anonymous,
        anonymous_key_hash,
        respondent_employee_ids,
        urgent,
        injury,
        logged_by,
        submitted_by,
        source_message_id,
        follows_up_case_id,
        follow_up_of_event_id,
    )


async def insert_message(
    conn: asyncpg.Connection,
    *,
    message_id: UUID,
    case_id: UUID,
    channel: str,
    sender_role: str,
    sender_employee_id: str | None,
    sender_email: str | None,
    body: str,
    email_message_id: str | None,
    received_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO intake.case_messages (message_id, case_id, channel, sender_role,
               sender_employee_id, sender_email, body, email_message_id, received_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)""",
        message_id,
        case_id,
        channel,
        sender_role,
        sender_employee_id,
        sender_email,
        body,
        email_message_id,
        received_at,
    )


async def touch_case(conn: asyncpg.Connection, case_id: UUID, at: datetime) -> None:
    await conn.execute("UPDATE intake.cases SET updated_at = $2 WHERE case_id = $1", case_id, at)


async def insert_attachment(
    conn: asyncpg.Connection,
    reference: Attachment,
    *,
    case_id: UUID,
    message_id: UUID | None,
    content: bytes,
    claimed_type: str | None = None,
    uploaded_by: str | None = None,
    evidence: bool = False,
    staff_only: bool = False,
    note_id: UUID | None = None,
    description: str | None = None,
) -> None:
    """One file; `uploaded_by` is the member of staff who added it (None: the reporter's)."""
    await conn.execute(
        """INSERT INTO intake.attachments (attachment_id, case_id, message_id, filename,
               content_type, size, sha256, content, claimed_type, uploaded_by, evidence,
               staff_only, note_id, description)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)""",
        reference.attachment_id,
        case_id,
        message_id,
        reference.filename,
        reference.content_type,
        reference.size,
        reference.sha256,
        content,
        claimed_type,
        uploaded_by,
        evidence,
        staff_only,
        note_id,
        description,
    )


async def case_files_bytes(conn: asyncpg.Connection, case_id: UUID) -> int:
    """The bytes of every file on the case so far (for the per-case limit)."""
    return int(
        await conn.fetchval(
            "SELECT coalesce(sum(size), 0) FROM intake.attachments WHERE case_id = $1", case_id
        )
    )
