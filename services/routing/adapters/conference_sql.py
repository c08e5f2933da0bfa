"""Routing's conference tables (routing.conferences, routing.conference_actions,
routing.case_consents); only this module knows their SQL. JSON columns go through the
pool's jsonb codec (Python values in, Python values out)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

from services.routing.domain.conferences import ConsentRecord, Consents
from shared.events import (
    ConferenceAction,
    ConferenceAttendance,
    ConferenceConsentRecorded,
    ConferenceParticipant,
    ConferencePlan,
)


@dataclass(frozen=True)
class ConferenceRow:
    conference_id: UUID
    case_id: UUID
    status: str
    plan: ConferencePlan
    participants: list[ConferenceParticipant]
    awaiting_consent: list[UUID]
    sequence: int
    planned_at: datetime
    held_at: datetime | None
    summary_due_at: datetime | None


@dataclass(frozen=True)
class ActionRow:
    action_id: UUID
    conference_id: UUID
    case_id: UUID
    description: str
    owner_participant_id: UUID | None
    owner_staff_id: str | None
    owner_name: str
    owner_email: str
    due_on: date
    due_at: datetime
    due_soon_at: datetime | None
    status: str


@dataclass(frozen=True)
class DueActionTimer:
    action_id: UUID
    case_id: UUID
    kind: Literal["due_soon", "overdue"]


_CONFERENCE_COLUMNS = (
    "conference_id, case_id, status, plan, participants, awaiting_consent, sequence,"
    " planned_at, held_at, summary_due_at"
)
_ACTION_COLUMNS = (
    "action_id, conference_id, case_id, description, owner_participant_id, owner_staff_id,"
    " owner_name, owner_email, due_on, due_at, due_soon_at, status"
)


def _conference(row: asyncpg.Record) -> ConferenceRow:
    values = dict(row)
    return ConferenceRow(
        **{
            **values,
            "plan": ConferencePlan.model_validate(values["plan"]),
            "participants": [
                ConferenceParticipant.model_validate(p) for p in values["participants"]
            ],
            "awaiting_consent": list(values["awaiting_consent"]),
        }
    )


def _participants_json(participants: Sequence[ConferenceParticipant]) -> list[dict[str, Any]]:
    return [p.model_dump(mode="json") for p in participants]


async def insert_conference(
    conn: asyncpg.Connection,
    *,
    conference_id: UUID,
    case_id: UUID,
    plan: ConferencePlan,
    participants: Sequence[ConferenceParticipant],
    awaiting_consent: Sequence[UUID],
    planned_at: datetime,
    request_event_id: UUID,
) -> bool:
    """False when the conference exists already (the same plan applied twice)."""
    inserted = await conn.fetchval(
        """INSERT INTO routing.conferences (conference_id, case_id, status, plan, participants,
               awaiting_consent, sequence, planned_at, request_event_id)
           VALUES ($1, $2, 'planned', $3::jsonb, $4::jsonb, $5::uuid[], 0, $6, $7)
           ON CONFLICT (conference_id) DO NOTHING RETURNING true""",
        conference_id,
        case_id,
        plan.model_dump(mode="json"),
        _participants_json(participants),
        list(awaiting_consent),
        planned_at,
        request_event_id,
    )
    return bool(inserted)


async def lock_conference(
    conn: asyncpg.Connection, case_id: UUID, conference_id: UUID
) -> ConferenceRow | None:
    """The case's conference, row-locked (None: no such conference on the case)."""
    row = await conn.fetchrow(
        f"""SELECT {_CONFERENCE_COLUMNS} FROM routing.conferences
            WHERE conference_id = $1 AND case_id = $2 FOR UPDATE""",
        conference_id,
        case_id,
    )
    return _conference(row) if row else None


async def lock_waiting_conferences(conn: asyncpg.Connection, case_id: UUID) -> list[ConferenceRow]:
    """The case's planned conferences with participants awaiting consent, row-locked,
    oldest first."""
    rows = await conn.fetch(
        f"""SELECT {_CONFERENCE_COLUMNS} FROM routing.conferences
            WHERE case_id = $1 AND status = 'planned' AND cardinality(awaiting_consent) > 0
            ORDER BY planned_at, conference_id FOR UPDATE""",
        case_id,
    )
    return [_conference(r) for r in rows]


async def replan(
    conn: asyncpg.Connection,
    conference_id: UUID,
    *,
    plan: ConferencePlan,
    participants: Sequence[ConferenceParticipant],
    awaiting_consent: Sequence[UUID],
    sequence: int,
) -> None:
    await conn.execute(
        """UPDATE routing.conferences SET plan = $2::jsonb, participants = $3::jsonb,
               awaiting_consent = $4::uuid[], sequence = $5, updated_at = now()
           WHERE conference_id = $1""",
        conference_id,
        plan.model_dump(mode="json"),
        _participants_json(participants),
        list(awaiting_consent),
        sequence,
    )


async def set_awaiting(
    conn: asyncpg.Connection, conference_id: UUID, awaiting_consent: Sequence[UUID]
) -> None:
    await conn.execute(
        "UPDATE routing.conferences SET awaiting_consent = $2::uuid[], updated_at = now()"
        " WHERE conference_id = $1",
        conference_id,
        list(awaiting_consent),
    )


async def cancel(
    conn: asyncpg.Connection, conference_id: UUID, *, at: datetime, reason: str
) -> None:
    await conn.execute(
        """UPDATE routing.conferences SET status = 'cancelled', cancelled_at = $2,
               cancel_reason = $3, updated_at = now() WHERE conference_id = $1""",
        conference_id,
        at,
        reason,
    )


async def hold(
    conn: asyncpg.Connection,
    conference_id: UUID,
    *,
    held_at: datetime,
    attendance: Sequence[ConferenceAttendance],
    summary_due_at: datetime,
) -> None:
    await conn.execute(
        """UPDATE routing.conferences SET status = 'held', held_at = $2, attendance = $3::jsonb,
               summary_due_at = $4, updated_at = now() WHERE conference_id = $1""",
        conference_id,
        held_at,
        [a.model_dump(mode="json") for a in attendance],
        summary_due_at,
    )


async def summarise(
    conn: asyncpg.Connection,
    conference_id: UUID,
    *,
    summary: dict[str, Any],
    at: datetime,
    actions: Sequence[ConferenceAction],
    case_id: UUID,
) -> None:
    """Store the summary and its actions (open, timers pending)."""
    await conn.execute(
        """UPDATE routing.conferences SET status = 'summarised', summary = $2::jsonb,
               summarised_at = $3, updated_at = now() WHERE conference_id = $1""",
        conference_id,
        summary,
        at,
    )
    await conn.executemany(
        f"""INSERT INTO routing.conference_actions ({_ACTION_COLUMNS}, position)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'open', $12)""",
        [
            (
                a.action_id,
                conference_id,
                case_id,
                a.description,
                a.owner_participant_id,
                a.owner_staff_id,
                a.owner_name,
                str(a.owner_email),
                a.due_on,
                a.due_at,
                a.due_soon_at,
                position,
            )
            for position, a in enumerate(actions)
        ],
    )


async def complete(conn: asyncpg.Connection, conference_id: UUID, *, at: datetime) -> None:
    await conn.execute(
        """UPDATE routing.conferences SET status = 'completed', completed_at = $2,
               updated_at = now() WHERE conference_id = $1""",
        conference_id,
        at,
    )


async def lock_action(
    conn: asyncpg.Connection, conference_id: UUID, action_id: UUID
) -> ActionRow | None:
    row = await conn.fetchrow(
        f"""SELECT {_ACTION_COLUMNS} FROM routing.conference_actions
            WHERE action_id = $1 AND conference_id = $2 FOR UPDATE""",
        action_id,
        conference_id,
    )
    return ActionRow(**dict(row)) if row else None


async def end_action(
    conn: asyncpg.Connection, action_id: UUID, *, status: str, at: datetime, note: str | None
) -> None:
    """Done or ended: its timers are off from now on (only open actions' timers fire)."""
    await conn.execute(
        """UPDATE routing.conference_actions SET status = $2, ended_at = $3, note = $4,
               updated_at = now() WHERE action_id = $1""",
        action_id,
        status,
        at,
        note,
    )


async def redate_action(
    conn: asyncpg.Connection,
    action_id: UUID,
    *,
    due_on: date,
    due_at: datetime,
    due_soon_at: datetime | None,
) -> None:
    """A new due date: both timers run again from it."""
    await conn.execute(
        """UPDATE routing.conference_actions SET status = 'replanned', due_on = $2, due_at = $3,
               due_soon_at = $4, due_soon_fired_at = NULL, due_soon_event_id = NULL,
               overdue_fired_at = NULL, overdue_event_id = NULL, updated_at = now()
           WHERE action_id = $1""",
        action_id,
        due_on,
        due_at,
        due_soon_at,
    )


async def action_counts(conn: asyncpg.Connection, conference_id: UUID) -> dict[str, int]:
    rows = await conn.fetch(
        """SELECT status, count(*) AS n FROM routing.conference_actions
           WHERE conference_id = $1 GROUP BY status""",
        conference_id,
    )
    return {r["status"]: int(r["n"]) for r in rows}


# --- consents ----------------------------------------------------------------------------


async def record_consent(
    conn: asyncpg.Connection, case_id: UUID, consent: ConferenceConsentRecorded, event_id: UUID
) -> bool:
    """False when this event's consent was recorded already."""
    inserted = await conn.fetchval(
        """INSERT INTO routing.case_consents (case_id, kind, given_by, granted, recorded_at,
               recorded_via, basis, event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (event_id) DO NOTHING RETURNING true""",
        case_id,
        consent.consent,
        consent.given_by,
        consent.granted,
        consent.recorded_at,
        consent.recorded_via,
        consent.basis,
        event_id,
    )
    return bool(inserted)


async def consents(conn: asyncpg.Connection, case_id: UUID) -> Consents:
    rows = await conn.fetch(
        """SELECT kind, given_by, granted, recorded_at FROM routing.case_consents
           WHERE case_id = $1 ORDER BY id""",
        case_id,
    )
    return Consents.from_records(ConsentRecord(**dict(r)) for r in rows)


async def claim_jurisdiction(conn: asyncpg.Connection, case_id: UUID) -> str | None:
    """The jurisdiction the claim names in its injury facts (None: the team's applies)."""
    value = await conn.fetchval(
        "SELECT injury->>'jurisdiction' FROM routing.cases WHERE case_id = $1", case_id
    )
    return str(value) if value else None


# --- timers ------------------------------------------------------------------------------


async def claim_due_action_timers(conn: asyncpg.Connection, limit: int) -> list[DueActionTimer]:
    """Open actions with a reminder or overdue instant passed and not yet fired, locked with
    their case; rows another replica (or a handler applying an event to the case) holds are
    skipped, never waited on: next tick. A closed case's actions wait, like its tasks."""
    rows = await conn.fetch(
        """SELECT a.action_id, a.case_id,
                  CASE WHEN a.overdue_fired_at IS NULL AND a.due_at <= now() THEN 'overdue'
                       ELSE 'due_soon' END AS kind
           FROM routing.conference_actions a
           JOIN routing.cases c ON c.case_id = a.case_id
           WHERE a.status IN ('open', 'replanned') AND c.status <> 'closed'
             AND ((a.overdue_fired_at IS NULL AND a.due_at <= now())
               OR (a.due_soon_fired_at IS NULL AND a.due_soon_at <= now()))
           ORDER BY a.due_at, a.action_id
           LIMIT $1
           FOR UPDATE OF a, c SKIP LOCKED""",
        limit,
    )
    return [DueActionTimer(**dict(r)) for r in rows]


async def mark_action_timer_fired(
    conn: asyncpg.Connection, action_id: UUID, kind: str, event_id: UUID | None
) -> None:
    """Mark `kind` fired; an overdue action's reminder is over too (it never comes late)."""
    if kind == "overdue":
        await conn.execute(
            """UPDATE routing.conference_actions SET overdue_fired_at = now(),
                   overdue_event_id = $2, due_soon_fired_at = coalesce(due_soon_fired_at, now()),
                   updated_at = now() WHERE action_id = $1""",
            action_id,
            event_id,
        )
    else:
        await conn.execute(
            """UPDATE routing.conference_actions SET due_soon_fired_at = now(),
                   due_soon_event_id = $2, updated_at = now() WHERE action_id = $1""",
            action_id,
            event_id,
        )


async def lock_action_by_id(conn: asyncpg.Connection, action_id: UUID) -> ActionRow | None:
    row = await conn.fetchrow(
        f"SELECT {_ACTION_COLUMNS} FROM routing.conference_actions WHERE action_id = $1 FOR UPDATE",
        action_id,
    )
    return ActionRow(**dict(row)) if row else None
