"""Intake's conference tables (intake.conferences, conference_requests, conference_consents);
only this module knows their SQL. jsonb columns go in and come out as Python values (the
service's pools decode jsonb; a raw connection's text is decoded here)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

_JSON_COLUMNS = ("plan", "participants", "attendance", "summary", "actions")
_UPDATABLE = frozenset(
    {
        "status",
        "plan",
        "participants",
        "attendance",
        "held_at",
        "summary",
        "actions",
        "refused_reason",
        "cancelled_reason",
        "last_refusal",
        "sequence",
        "notice_working_days",
    }
)


def _decoded(row: asyncpg.Record | None) -> dict[str, Any] | None:
    if row is None:
        return None
    found = dict(row)
    for column in _JSON_COLUMNS:
        if isinstance(found.get(column), str):
            found[column] = json.loads(found[column])
    return found


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


async def insert_conference(
    conn: asyncpg.Connection,
    *,
    conference_id: UUID,
    case_id: UUID,
    plan: dict[str, Any],
    participants: list[dict[str, Any]],
    requested_by: str,
    request_event_id: UUID,
    created_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO intake.conferences (conference_id, case_id, status, plan, participants,
               requested_by, request_event_id, created_at)
           VALUES ($1, $2, 'requested', $3::text::jsonb, $4::text::jsonb, $5, $6, $7)""",
        conference_id,
        case_id,
        _json(plan),
        _json(participants),
        requested_by,
        request_event_id,
        created_at,
    )
    await insert_request(
        conn, request_event_id, conference_id, "conference.planning_requested", created_at
    )


async def insert_request(
    conn: asyncpg.Connection,
    request_event_id: UUID,
    conference_id: UUID,
    request_type: str,
    requested_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO intake.conference_requests
               (request_event_id, conference_id, request_type, requested_at)
           VALUES ($1, $2, $3, $4)""",
        request_event_id,
        conference_id,
        request_type,
        requested_at,
    )


async def lock_conference(
    conn: asyncpg.Connection, case_id: UUID, conference_id: UUID
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM intake.conferences WHERE conference_id = $1 AND case_id = $2 FOR UPDATE",
        conference_id,
        case_id,
    )
    return _decoded(row)


async def get_conference(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID, conference_id: UUID
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM intake.conferences WHERE conference_id = $1 AND case_id = $2",
        conference_id,
        case_id,
    )
    return _decoded(row)


async def list_conferences(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID
) -> list[dict[str, Any]]:
    """A case's conferences, the next one to be held first, ended ones last."""
    rows = await conn.fetch(
        """SELECT * FROM intake.conferences WHERE case_id = $1
           ORDER BY status IN ('refused', 'cancelled', 'completed'),
                    (plan->>'scheduled_for')::timestamptz, created_at""",
        case_id,
    )
    return [found for row in rows if (found := _decoded(row)) is not None]


async def update_conference(conn: asyncpg.Connection, conference_id: UUID, **fields: Any) -> bool:
    """Set projected columns; False when intake has no such conference."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    names = list(fields)
    values = [_json(fields[n]) if n in _JSON_COLUMNS else fields[n] for n in names]
    casts = {n: "::text::jsonb" if n in _JSON_COLUMNS else "" for n in names}
    assignments = ", ".join(f"{n} = ${i}{casts[n]}" for i, n in enumerate(names, start=2))
    status = await conn.execute(
        f"UPDATE intake.conferences SET {assignments}, updated_at = now() WHERE conference_id = $1",
        conference_id,
        *values,
    )
    return bool(status != "UPDATE 0")


async def lock_by_id(conn: asyncpg.Connection, conference_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM intake.conferences WHERE conference_id = $1 FOR UPDATE", conference_id
    )
    return _decoded(row)


async def refuse_request(
    conn: asyncpg.Connection, request_event_id: UUID, reason: str
) -> tuple[str, UUID] | None:
    """Routing refused a conference request: (request_type, conference_id), or None when
    the request is not a conference request intake recorded."""
    row = await conn.fetchrow(
        """UPDATE intake.conference_requests SET refused_reason = $2
           WHERE request_event_id = $1 RETURNING request_type, conference_id""",
        request_event_id,
        reason,
    )
    return (str(row["request_type"]), row["conference_id"]) if row else None


async def record_consent(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    consent: str,
    given_by: str,
    granted: bool,
    recorded_via: str,
    basis: str | None,
    recorded_by: str | None,
    recorded_at: datetime,
    event_id: UUID,
) -> None:
    await conn.execute(
        """INSERT INTO intake.conference_consents (case_id, consent, given_by, granted,
               recorded_via, basis, recorded_by, recorded_at, event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (case_id, consent, given_by) DO UPDATE SET granted = $4,
               recorded_via = $5, basis = $6, recorded_by = $7, recorded_at = $8, event_id = $9""",
        case_id,
        consent,
        given_by,
        granted,
        recorded_via,
        basis,
        recorded_by,
        recorded_at,
        event_id,
    )


async def list_consents(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT consent, given_by, granted, recorded_via, basis, recorded_by, recorded_at
           FROM intake.conference_consents WHERE case_id = $1 ORDER BY consent, given_by""",
        case_id,
    )
    return [dict(row) for row in rows]


async def team_time_zone(conn: asyncpg.Connection | asyncpg.Pool, team: str | None) -> str | None:
    """The calendar zone of `team` from routing's roster (None before the first roster or
    for a case with no team yet)."""
    if team is None:
        return None
    zone = await conn.fetchval(
        """SELECT c.time_zone FROM intake.teams t JOIN intake.calendars c ON c.name = t.calendar
           WHERE t.team = $1""",
        team,
    )
    return str(zone) if zone else None


async def staff_contact(
    conn: asyncpg.Connection | asyncpg.Pool, staff_id: str | None
) -> dict[str, str] | None:
    """A member of staff's name and address from routing's roster (None if unknown)."""
    if staff_id is None:
        return None
    row = await conn.fetchrow(
        "SELECT staff_id, name, email FROM intake.staff WHERE staff_id = $1", staff_id
    )
    return dict(row) if row else None
