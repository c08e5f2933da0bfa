"""Independent case management's tables (migration 0023): what the case manager and the
parties recorded at intake's doors, and routing's agreement clocks as intake heard them.
Row shapes: see services/intake/domain/mediation.py."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool
Row = dict[str, Any]
_JSON = (
    "desired_outcomes",
    "documents",
    "rules",
    "parties",
    "acceptances",
    "case_manager",
    "proposals",
    "terms",
    "follow_ups_at",
    "escalated_to",
)


def _row(record: asyncpg.Record) -> Row:
    row = dict(record)
    for key in _JSON:
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


# --- assessments ---------------------------------------------------------------------------


async def upsert_assessment(
    conn: asyncpg.Connection,
    case_id: UUID,
    *,
    party: dict[str, Any],
    account: str,
    desired_outcomes: list[str],
    documents: list[dict[str, Any]],
    recorded_by: str,
    recorded_at: datetime,
    event_id: UUID,
) -> None:
    await conn.execute(
        """INSERT INTO intake.mediation_assessments (case_id, party_role, employee_id, name,
               email, account, desired_outcomes, documents, recorded_by, recorded_at,
               event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11)
           ON CONFLICT (case_id, party_role) DO UPDATE SET
               employee_id = EXCLUDED.employee_id, name = EXCLUDED.name,
               email = EXCLUDED.email, account = EXCLUDED.account,
               desired_outcomes = EXCLUDED.desired_outcomes,
               documents = EXCLUDED.documents, recorded_by = EXCLUDED.recorded_by,
               recorded_at = EXCLUDED.recorded_at, event_id = EXCLUDED.event_id""",
        case_id,
        party["role"],
        party["employee_id"],
        party["name"],
        party["email"],
        account,
        json.dumps(desired_outcomes),
        json.dumps(documents),
        recorded_by,
        recorded_at,
        event_id,
    )


async def assessments(conn: Conn, case_id: UUID) -> list[Row]:
    """The case's assessments in role order (employee first)."""
    rows = await conn.fetch(
        """SELECT * FROM intake.mediation_assessments WHERE case_id = $1
           ORDER BY party_role = 'employer_representative', party_role""",
        case_id,
    )
    return [_row(r) for r in rows]


async def cases_of_party(conn: Conn, employee_id: str) -> list[Row]:
    """The cases where `employee_id` is a party: case_id, reference, party_role, the
    process's stage label (newest first)."""
    rows = await conn.fetch(
        """SELECT a.case_id, c.reference, a.party_role, p.stage_label, p.ending,
                  a.recorded_at
           FROM intake.mediation_assessments a
           JOIN intake.cases c ON c.case_id = a.case_id
           LEFT JOIN intake.case_processes p ON p.case_id = a.case_id
           WHERE a.employee_id = $1
           ORDER BY a.recorded_at DESC""",
        employee_id,
    )
    return [dict(r) for r in rows]


# --- ground rules --------------------------------------------------------------------------


async def insert_ground_rules(
    conn: asyncpg.Connection,
    *,
    ground_rules_id: UUID,
    case_id: UUID,
    rules: list[str],
    parties: list[dict[str, Any]],
    proposed_by: str,
    proposed_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO intake.mediation_ground_rules (ground_rules_id, case_id, rules,
               parties, proposed_by, proposed_at)
           VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6)""",
        ground_rules_id,
        case_id,
        json.dumps(rules),
        json.dumps(parties),
        proposed_by,
        proposed_at,
    )


async def ground_rules(conn: Conn, case_id: UUID) -> list[Row]:
    """Every proposal of the case, oldest first (the last one counts)."""
    rows = await conn.fetch(
        """SELECT * FROM intake.mediation_ground_rules WHERE case_id = $1
           ORDER BY proposed_at, ground_rules_id""",
        case_id,
    )
    return [_row(r) for r in rows]


async def accept_ground_rules(
    conn: asyncpg.Connection, ground_rules_id: UUID, role: str, accepted_at: datetime
) -> None:
    await conn.execute(
        """UPDATE intake.mediation_ground_rules
           SET acceptances = acceptances || jsonb_build_object($2::text, $3::text)
           WHERE ground_rules_id = $1""",
        ground_rules_id,
        role,
        accepted_at.isoformat(),
    )


# --- meetings ------------------------------------------------------------------------------


async def insert_meeting(
    conn: asyncpg.Connection,
    *,
    meeting_id: UUID,
    case_id: UUID,
    scheduled_for: datetime,
    duration_minutes: int,
    time_zone: str,
    location: str | None,
    video_link: str | None,
    case_manager: dict[str, str],
    scheduled_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO intake.mediation_meetings (meeting_id, case_id, scheduled_for,
               duration_minutes, time_zone, location, video_link, case_manager, scheduled_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)""",
        meeting_id,
        case_id,
        scheduled_for,
        duration_minutes,
        time_zone,
        location,
        video_link,
        json.dumps(case_manager),
        scheduled_at,
    )


async def meetings(conn: Conn, case_id: UUID) -> list[Row]:
    rows = await conn.fetch(
        """SELECT * FROM intake.mediation_meetings WHERE case_id = $1
           ORDER BY scheduled_for, meeting_id""",
        case_id,
    )
    return [_row(r) for r in rows]


async def lock_meeting(conn: asyncpg.Connection, case_id: UUID, meeting_id: UUID) -> Row | None:
    row = await conn.fetchrow(
        """SELECT * FROM intake.mediation_meetings WHERE case_id = $1 AND meeting_id = $2
           FOR UPDATE""",
        case_id,
        meeting_id,
    )
    return _row(row) if row else None


async def record_meeting(
    conn: asyncpg.Connection,
    meeting_id: UUID,
    *,
    held_at: datetime,
    discussed: str,
    proposals: list[str],
    privileged_notes: str | None,
    recorded_at: datetime,
) -> None:
    await conn.execute(
        """UPDATE intake.mediation_meetings SET held_at = $2, discussed = $3,
               proposals = $4::jsonb, privileged_notes = $5, recorded_at = $6
           WHERE meeting_id = $1""",
        meeting_id,
        held_at,
        discussed,
        json.dumps(proposals),
        privileged_notes,
        recorded_at,
    )


# --- the agreement -------------------------------------------------------------------------


async def agreement(conn: Conn, case_id: UUID, *, lock: bool = False) -> Row | None:
    suffix = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(
        "SELECT * FROM intake.mediation_agreements WHERE case_id = $1" + suffix, case_id
    )
    return _row(row) if row else None


async def agreement_by_id(conn: asyncpg.Connection, agreement_id: UUID) -> Row | None:
    row = await conn.fetchrow(
        "SELECT * FROM intake.mediation_agreements WHERE agreement_id = $1 FOR UPDATE",
        agreement_id,
    )
    return _row(row) if row else None


async def save_draft(
    conn: asyncpg.Connection,
    *,
    agreement_id: UUID,
    case_id: UUID,
    version: int,
    terms: list[dict[str, Any]],
    parties: list[dict[str, Any]],
    drafted_by: str,
    drafted_at: datetime,
) -> None:
    """A new version replaces the terms and clears every acceptance."""
    await conn.execute(
        """INSERT INTO intake.mediation_agreements (agreement_id, case_id, version, terms,
               parties, drafted_by, drafted_at)
           VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7)
           ON CONFLICT (case_id) DO UPDATE SET version = EXCLUDED.version,
               terms = EXCLUDED.terms, parties = EXCLUDED.parties,
               acceptances = '{}'::jsonb, drafted_by = EXCLUDED.drafted_by,
               drafted_at = EXCLUDED.drafted_at""",
        agreement_id,
        case_id,
        version,
        json.dumps(terms),
        json.dumps(parties),
        drafted_by,
        drafted_at,
    )


async def accept_agreement(
    conn: asyncpg.Connection, agreement_id: UUID, role: str, version: int, at: datetime
) -> None:
    await conn.execute(
        """UPDATE intake.mediation_agreements
           SET acceptances = acceptances || jsonb_build_object($2::text,
               jsonb_build_object('version', $3::int, 'accepted_at', $4::text))
           WHERE agreement_id = $1""",
        agreement_id,
        role,
        version,
        at.isoformat(),
    )


async def put_in_force(
    conn: asyncpg.Connection,
    agreement_id: UUID,
    *,
    version: int,
    at: datetime,
    obligations: list[dict[str, Any]],
    follow_ups_at: list[datetime],
) -> bool:
    """Routing's agreement.in_force: the version, its obligations' clocks and the
    check-ins. False when intake has no such agreement (retry)."""
    row = await conn.fetchrow(
        """UPDATE intake.mediation_agreements SET in_force_at = $2, in_force_version = $3,
               follow_ups_at = $4::jsonb
           WHERE agreement_id = $1 RETURNING case_id""",
        agreement_id,
        at,
        version,
        json.dumps([f.isoformat() for f in follow_ups_at]),
    )
    if row is None:
        return False
    case_id = row["case_id"]
    for o in obligations:
        await conn.execute(
            """INSERT INTO intake.mediation_obligations (agreement_id, term_id, case_id,
                   owner_role, due_at, due_soon_at)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (agreement_id, term_id) DO UPDATE SET
                   owner_role = EXCLUDED.owner_role, due_at = EXCLUDED.due_at,
                   due_soon_at = EXCLUDED.due_soon_at""",
            agreement_id,
            o["term_id"],
            case_id,
            o["owner_role"],
            o["due_at"],
            o["due_soon_at"],
        )
    for number, due_at in enumerate(follow_ups_at, start=1):
        await conn.execute(
            """INSERT INTO intake.mediation_follow_ups (agreement_id, check_in, case_id, due_at)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (agreement_id, check_in) DO UPDATE SET due_at = EXCLUDED.due_at""",
            agreement_id,
            number,
            case_id,
            due_at,
        )
    return True


async def obligations(conn: Conn, agreement_id: UUID) -> list[Row]:
    rows = await conn.fetch(
        """SELECT * FROM intake.mediation_obligations WHERE agreement_id = $1
           ORDER BY due_at, term_id""",
        agreement_id,
    )
    return [_row(r) for r in rows]


async def lock_obligation(
    conn: asyncpg.Connection, agreement_id: UUID, term_id: UUID
) -> Row | None:
    row = await conn.fetchrow(
        """SELECT * FROM intake.mediation_obligations WHERE agreement_id = $1 AND term_id = $2
           FOR UPDATE""",
        agreement_id,
        term_id,
    )
    return _row(row) if row else None


async def mark_obligation(
    conn: asyncpg.Connection,
    agreement_id: UUID,
    term_id: UUID,
    *,
    state: str,
    escalated_to: dict[str, Any] | None = None,
) -> bool:
    """due_soon / overdue from routing's clock; a met obligation keeps its state. False
    when intake does not know the obligation (retry)."""
    status = await conn.execute(
        """UPDATE intake.mediation_obligations SET
               state = CASE WHEN state = 'met' THEN state ELSE $3 END,
               escalated_to = COALESCE($4::jsonb, escalated_to)
           WHERE agreement_id = $1 AND term_id = $2""",
        agreement_id,
        term_id,
        state,
        json.dumps(escalated_to) if escalated_to else None,
    )
    return bool(status != "UPDATE 0")


async def obligation_met(
    conn: asyncpg.Connection, agreement_id: UUID, term_id: UUID, met_on: date, note: str | None
) -> None:
    await conn.execute(
        """UPDATE intake.mediation_obligations SET state = 'met', met_on = $3, met_note = $4
           WHERE agreement_id = $1 AND term_id = $2""",
        agreement_id,
        term_id,
        met_on,
        note,
    )


async def follow_ups(conn: Conn, agreement_id: UUID) -> list[Row]:
    rows = await conn.fetch(
        """SELECT check_in, due_at, fell_due_at FROM intake.mediation_follow_ups
           WHERE agreement_id = $1 ORDER BY check_in""",
        agreement_id,
    )
    return [dict(r) for r in rows]


async def follow_up_due(
    conn: asyncpg.Connection,
    agreement_id: UUID,
    case_id: UUID,
    check_in: int,
    due_at: datetime,
    at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO intake.mediation_follow_ups (agreement_id, check_in, case_id, due_at,
               fell_due_at)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (agreement_id, check_in) DO UPDATE SET fell_due_at = EXCLUDED.fell_due_at""",
        agreement_id,
        check_in,
        case_id,
        due_at,
        at,
    )
