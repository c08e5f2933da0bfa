"""Reading a case's files (schema `intake.attachments`): lists without bytes, one with."""

from __future__ import annotations

from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

_COLUMNS = """a.attachment_id, a.filename, a.content_type, a.size, a.sha256, a.created_at,
    a.message_id, a.note_id, a.uploaded_by, a.evidence, a.staff_only, a.description,
    a.claimed_type, m.sender_role, m.channel AS message_channel"""


async def list_documents(conn: Conn, case_id: UUID, *, staff_view: bool) -> list[dict[str, Any]]:
    """Every file on the case, oldest first (the reporter's view leaves out staff-only ones:
    evidence, internal notes' files, documents not shared)."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM intake.attachments a
            LEFT JOIN intake.case_messages m ON m.message_id = a.message_id
            WHERE a.case_id = $1 AND ($2 OR NOT a.staff_only)
            ORDER BY a.created_at, a.filename, a.attachment_id""",
        case_id,
        staff_view,
    )
    return [dict(row) for row in rows]


async def get_document(conn: Conn, case_id: UUID, attachment_id: UUID) -> dict[str, Any] | None:
    """One file of the case with its bytes (`content`), or None."""
    row = await conn.fetchrow(
        f"""SELECT {_COLUMNS}, a.content FROM intake.attachments a
            LEFT JOIN intake.case_messages m ON m.message_id = a.message_id
            WHERE a.case_id = $1 AND a.attachment_id = $2""",
        case_id,
        attachment_id,
    )
    return dict(row) if row else None


async def note_of_case(conn: asyncpg.Connection, case_id: UUID, note_id: UUID) -> bool | None:
    """The note's `internal` flag if it is a note of this case, else None."""
    internal = await conn.fetchval(
        "SELECT internal FROM intake.case_notes WHERE case_id = $1 AND note_id = $2",
        case_id,
        note_id,
    )
    return None if internal is None else bool(internal)
