"""Intake's per-participant conference views (intake.conference_participant_views); only
this module knows their SQL. jsonb columns go in and come out as Python values (the
service's pools carry a jsonb codec, shared.db; a raw pool's text is decoded here)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

_JSON_COLUMNS = ("plan", "participants", "summary")


def _row(record: asyncpg.Record | None) -> dict[str, Any] | None:
    if record is None:
        return None
    row = dict(record)
    for column in _JSON_COLUMNS:
        if isinstance(row.get(column), str):
            row[column] = json.loads(row[column])
    return row


async def conference_status(
    conn: asyncpg.Connection | asyncpg.Pool, conference_id: UUID
) -> str | None:
    """The status the conference's views carry (they all carry the same), if any."""
    value = await conn.fetchval(
        "SELECT status FROM intake.conference_participant_views WHERE conference_id = $1 LIMIT 1",
        conference_id,
    )
    return str(value) if value is not None else None


async def plan_time_zone(
    conn: asyncpg.Connection | asyncpg.Pool, conference_id: UUID
) -> str | None:
    """The IANA zone the conference's plan is shown in."""
    value = await conn.fetchval(
        "SELECT plan->>'time_zone' FROM intake.conference_participant_views"
        " WHERE conference_id = $1 LIMIT 1",
        conference_id,
    )
    return str(value) if value is not None else None


async def upsert_participant(
    conn: asyncpg.Connection,
    *,
    conference_id: UUID,
    participant_id: UUID,
    case_id: UUID,
    reference: str,
    role: str,
    name: str,
    email: str,
    employee_id: str | None,
    status: str,
    plan: dict[str, Any],
    participants: list[dict[str, str]],
    invited: bool,
    updated_at: datetime,
) -> None:
    """Write one participant's view as a decision states it; their acknowledgement and
    objection stay (a change of plan does not undo a receipt already given)."""
    await conn.execute(
        """INSERT INTO intake.conference_participant_views (conference_id, participant_id,
               case_id, reference, role, name, email, employee_id, status, plan,
               participants, invited, removed, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, false, $13)
           ON CONFLICT (conference_id, participant_id) DO UPDATE SET
               role = EXCLUDED.role, name = EXCLUDED.name, email = EXCLUDED.email,
               employee_id = EXCLUDED.employee_id, status = EXCLUDED.status,
               plan = EXCLUDED.plan, participants = EXCLUDED.participants,
               invited = EXCLUDED.invited, removed = false,
               updated_at = EXCLUDED.updated_at""",
        conference_id,
        participant_id,
        case_id,
        reference,
        role,
        name,
        email,
        employee_id,
        status,
        plan,
        participants,
        invited,
        updated_at,
    )


async def mark_removed(
    conn: asyncpg.Connection,
    conference_id: UUID,
    participant_ids: list[UUID],
    updated_at: datetime,
) -> None:
    """Participants taken off the conference: their link no longer opens it."""
    if not participant_ids:
        return
    await conn.execute(
        """UPDATE intake.conference_participant_views SET removed = true, updated_at = $3
           WHERE conference_id = $1 AND participant_id = ANY($2::uuid[])""",
        conference_id,
        participant_ids,
        updated_at,
    )


async def set_status(
    conn: asyncpg.Connection, conference_id: UUID, status: str, updated_at: datetime
) -> None:
    await conn.execute(
        """UPDATE intake.conference_participant_views SET status = $2, updated_at = $3
           WHERE conference_id = $1""",
        conference_id,
        status,
        updated_at,
    )


async def set_summary(
    conn: asyncpg.Connection, conference_id: UUID, summary: dict[str, Any], updated_at: datetime
) -> None:
    await conn.execute(
        """UPDATE intake.conference_participant_views SET summary = $2, updated_at = $3
           WHERE conference_id = $1""",
        conference_id,
        summary,
        updated_at,
    )


async def summary_of(conn: asyncpg.Connection, conference_id: UUID) -> dict[str, Any] | None:
    """The conference's summary as its views hold it (locked for the update that follows)."""
    rows = await conn.fetch(
        """SELECT summary FROM intake.conference_participant_views WHERE conference_id = $1
           ORDER BY participant_id FOR UPDATE""",
        conference_id,
    )
    for record in rows:
        row = _row(record)
        if row and row.get("summary") is not None:
            summary: dict[str, Any] = row["summary"]
            return summary
    return None


async def get_view(
    conn: asyncpg.Connection | asyncpg.Pool,
    conference_id: UUID,
    participant_id: UUID,
    *,
    lock: bool = False,
) -> dict[str, Any] | None:
    query = """SELECT * FROM intake.conference_participant_views
               WHERE conference_id = $1 AND participant_id = $2"""
    record = await conn.fetchrow(
        query + (" FOR UPDATE" if lock else ""), conference_id, participant_id
    )
    return _row(record)


async def views_of_case(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID
) -> list[dict[str, Any]]:
    """Every participant row of the case's conferences, earliest conference first."""
    rows = await conn.fetch(
        """SELECT * FROM intake.conference_participant_views WHERE case_id = $1
           ORDER BY (plan->>'scheduled_for'), conference_id, participant_id""",
        case_id,
    )
    return [row for record in rows if (row := _row(record)) is not None]


async def record_acknowledgement(
    conn: asyncpg.Connection, conference_id: UUID, participant_id: UUID, at: datetime
) -> None:
    await conn.execute(
        """UPDATE intake.conference_participant_views
           SET acknowledged_at = $3, updated_at = $3
           WHERE conference_id = $1 AND participant_id = $2 AND acknowledged_at IS NULL""",
        conference_id,
        participant_id,
        at,
    )


async def record_objection(
    conn: asyncpg.Connection,
    conference_id: UUID,
    participant_id: UUID,
    objection: str,
    at: datetime,
) -> None:
    """The participant's latest objection (each one is also its own event on the bus)."""
    await conn.execute(
        """UPDATE intake.conference_participant_views
           SET objection = $3, objection_at = $4, updated_at = $4
           WHERE conference_id = $1 AND participant_id = $2""",
        conference_id,
        participant_id,
        objection,
        at,
    )


async def worker_consents(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID
) -> dict[str, dict[str, Any]]:
    """The worker's latest word on each consent of the case (intake.conference_consents,
    written by every consent door, staff's or the portal's):
    {consent: {"granted": bool, "recorded_at": datetime, "recorded_via": str}}."""
    rows = await conn.fetch(
        """SELECT consent, granted, recorded_via, recorded_at
           FROM intake.conference_consents WHERE case_id = $1 AND given_by = 'worker'""",
        case_id,
    )
    return {
        str(row["consent"]): {
            "granted": bool(row["granted"]),
            "recorded_at": row["recorded_at"],
            "recorded_via": row["recorded_via"],
        }
        for row in rows
    }
