"""intake.investigation_*: the facts of a case's investigation as recorded at intake's doors
and routing's decisions on its outcome (approval, appeal window). Shapes: migration 0022."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool
Row = dict[str, Any]
_JSON = ("applies_to", "interviewer", "allegation_ids", "attachment", "actions", "approver")


def _row(record: asyncpg.Record) -> Row:
    row = dict(record)
    for key in _JSON:
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


def _rows(records: list[asyncpg.Record]) -> list[Row]:
    return [_row(r) for r in records]


# --- Allegations, measures, interviews -----------------------------------------------------


async def insert_allegation(
    conn: asyncpg.Connection,
    *,
    allegation_id: UUID,
    case_id: UUID,
    allegation_type: str,
    summary: str,
    respondent_employee_id: str,
    respondent_name: str | None,
    occurred_on: date | None,
    recorded_by: str,
    recorded_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO intake.investigation_allegations (allegation_id, case_id,
               allegation_type, summary, respondent_employee_id, respondent_name,
               occurred_on, recorded_by, recorded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        allegation_id,
        case_id,
        allegation_type,
        summary,
        respondent_employee_id,
        respondent_name,
        occurred_on,
        recorded_by,
        recorded_at,
    )


async def list_allegations(conn: Conn, case_id: UUID) -> list[Row]:
    return _rows(
        await conn.fetch(
            "SELECT * FROM intake.investigation_allegations WHERE case_id = $1"
            " ORDER BY recorded_at, allegation_id",
            case_id,
        )
    )


async def cases_naming_respondent(conn: Conn, employee_id: str) -> list[Row]:
    """The cases with an allegation naming `employee_id` as respondent: case_id,
    reference (newest first)."""
    return _rows(
        await conn.fetch(
            """SELECT c.case_id, c.reference, max(a.recorded_at) AS named_at
               FROM intake.investigation_allegations a
               JOIN intake.cases c ON c.case_id = a.case_id
               WHERE a.respondent_employee_id = $1
               GROUP BY c.case_id, c.reference ORDER BY named_at DESC""",
            employee_id,
        )
    )


async def insert_measure(
    conn: asyncpg.Connection,
    *,
    measure_id: UUID,
    case_id: UUID,
    kind: str,
    description: str,
    applies_to: list[str],
    recorded_by: str,
    recorded_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO intake.investigation_measures (measure_id, case_id, kind, description,
               applies_to, recorded_by, recorded_at)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)""",
        measure_id,
        case_id,
        kind,
        description,
        json.dumps(applies_to),
        recorded_by,
        recorded_at,
    )


async def list_measures(conn: Conn, case_id: UUID) -> list[Row]:
    return _rows(
        await conn.fetch(
            "SELECT * FROM intake.investigation_measures WHERE case_id = $1"
            " ORDER BY recorded_at, measure_id",
            case_id,
        )
    )


async def insert_interview(conn: asyncpg.Connection, row: Row) -> None:
    """`row`: the columns of intake.investigation_interviews (interviewer as a dict)."""
    await conn.execute(
        """INSERT INTO intake.investigation_interviews (interview_id, case_id,
               interviewee_role, interviewee_name, interviewee_email, interviewee_employee_id,
               scheduled_for, duration_minutes, time_zone, location, video_link,
               companion_allowed, interviewer, recorded_by, recorded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14, $15)""",
        row["interview_id"],
        row["case_id"],
        row["interviewee_role"],
        row["interviewee_name"],
        row["interviewee_email"],
        row["interviewee_employee_id"],
        row["scheduled_for"],
        row["duration_minutes"],
        row["time_zone"],
        row["location"],
        row["video_link"],
        row["companion_allowed"],
        json.dumps(row["interviewer"]),
        row["recorded_by"],
        row["recorded_at"],
    )


async def list_interviews(conn: Conn, case_id: UUID) -> list[Row]:
    return _rows(
        await conn.fetch(
            "SELECT * FROM intake.investigation_interviews WHERE case_id = $1"
            " ORDER BY scheduled_for, interview_id",
            case_id,
        )
    )


# --- Statements and evidence ---------------------------------------------------------------


async def insert_statement(conn: asyncpg.Connection, row: Row) -> None:
    """`row`: the columns of intake.investigation_statements (allegation_ids as strings)."""
    await conn.execute(
        """INSERT INTO intake.investigation_statements (statement_id, case_id, interview_id,
               given_by_role, given_by_name, given_by_employee_id, text, allegation_ids,
               companion_name, recorded_by, recorded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)""",
        row["statement_id"],
        row["case_id"],
        row["interview_id"],
        row["given_by_role"],
        row["given_by_name"],
        row["given_by_employee_id"],
        row["text"],
        json.dumps(row["allegation_ids"]),
        row["companion_name"],
        row["recorded_by"],
        row["recorded_at"],
    )


async def list_statements(conn: Conn, case_id: UUID) -> list[Row]:
    return _rows(
        await conn.fetch(
            "SELECT * FROM intake.investigation_statements WHERE case_id = $1"
            " ORDER BY recorded_at, statement_id",
            case_id,
        )
    )


async def lock_statement(conn: asyncpg.Connection, case_id: UUID, statement_id: UUID) -> Row | None:
    record = await conn.fetchrow(
        "SELECT * FROM intake.investigation_statements WHERE case_id = $1"
        " AND statement_id = $2 FOR UPDATE",
        case_id,
        statement_id,
    )
    return _row(record) if record else None


async def review_statement(
    conn: asyncpg.Connection,
    statement_id: UUID,
    *,
    confirmed: bool,
    corrections: str | None,
    reviewed_at: datetime,
) -> None:
    await conn.execute(
        """UPDATE intake.investigation_statements SET review_state = $2, corrections = $3,
               reviewed_at = $4 WHERE statement_id = $1""",
        statement_id,
        "confirmed" if confirmed else "corrected",
        corrections,
        reviewed_at,
    )


async def insert_evidence(conn: asyncpg.Connection, row: Row) -> None:
    """`row`: the columns of intake.investigation_evidence (attachment as a dict or None)."""
    await conn.execute(
        """INSERT INTO intake.investigation_evidence (evidence_id, case_id, kind, description,
               source, collected_by, collected_at, sha256, attachment, allegation_ids)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb)""",
        row["evidence_id"],
        row["case_id"],
        row["kind"],
        row["description"],
        row["source"],
        row["collected_by"],
        row["collected_at"],
        row["sha256"],
        json.dumps(row["attachment"]) if row["attachment"] is not None else None,
        json.dumps(row["allegation_ids"]),
    )


async def list_evidence(conn: Conn, case_id: UUID) -> list[Row]:
    return _rows(
        await conn.fetch(
            "SELECT * FROM intake.investigation_evidence WHERE case_id = $1"
            " ORDER BY collected_at, evidence_id",
            case_id,
        )
    )


# --- Findings, outcome, appeal -------------------------------------------------------------


async def record_finding(
    conn: asyncpg.Connection,
    *,
    finding_id: UUID,
    case_id: UUID,
    allegation_id: UUID,
    finding: str,
    reasoning: str,
    recorded_by: str,
    recorded_at: datetime,
) -> None:
    """The new current finding on the allegation; the one it replaces is kept, marked
    superseded by it."""
    await conn.execute(
        """UPDATE intake.investigation_findings SET superseded_by = $1, superseded_at = $3
           WHERE allegation_id = $2 AND superseded_by IS NULL""",
        finding_id,
        allegation_id,
        recorded_at,
    )
    await conn.execute(
        """INSERT INTO intake.investigation_findings (finding_id, case_id, allegation_id,
               finding, reasoning, recorded_by, recorded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        finding_id,
        case_id,
        allegation_id,
        finding,
        reasoning,
        recorded_by,
        recorded_at,
    )


async def list_findings(conn: Conn, case_id: UUID) -> list[Row]:
    """Every finding of the case, current and superseded, oldest first."""
    return _rows(
        await conn.fetch(
            "SELECT * FROM intake.investigation_findings WHERE case_id = $1"
            " ORDER BY recorded_at, finding_id",
            case_id,
        )
    )


async def insert_outcome(
    conn: asyncpg.Connection,
    *,
    outcome_id: UUID,
    case_id: UUID,
    summary: str,
    actions: list[dict[str, Any]],
    decided_by: str,
    decided_at: datetime,
) -> None:
    """A newly decided outcome; an earlier one not approved is superseded."""
    await conn.execute(
        """UPDATE intake.investigation_outcomes SET approval_state = 'superseded'
           WHERE case_id = $1 AND approval_state <> 'approved'""",
        case_id,
    )
    await conn.execute(
        """INSERT INTO intake.investigation_outcomes (outcome_id, case_id, summary, actions,
               decided_by, decided_at)
           VALUES ($1, $2, $3, $4::jsonb, $5, $6)""",
        outcome_id,
        case_id,
        summary,
        json.dumps(actions),
        decided_by,
        decided_at,
    )


async def current_outcome(conn: Conn, case_id: UUID, *, lock: bool = False) -> Row | None:
    """The case's latest outcome that is not superseded, or None."""
    record = await conn.fetchrow(
        "SELECT * FROM intake.investigation_outcomes WHERE case_id = $1"
        " AND approval_state <> 'superseded' ORDER BY decided_at DESC LIMIT 1"
        + (" FOR UPDATE" if lock else ""),
        case_id,
    )
    return _row(record) if record else None


async def request_approval(
    conn: asyncpg.Connection, outcome_id: UUID, *, event_id: UUID, requested_by: str
) -> None:
    await conn.execute(
        """UPDATE intake.investigation_outcomes SET approval_state = 'approval_requested',
               approval_request_event_id = $2, approval_requested_by = $3,
               approval_refused_reason = NULL
           WHERE outcome_id = $1""",
        outcome_id,
        event_id,
        requested_by,
    )


async def refuse_approval(conn: asyncpg.Connection, request_event_id: UUID, reason: str) -> None:
    """Routing refused the approval request (the outcome may be sent again)."""
    await conn.execute(
        """UPDATE intake.investigation_outcomes SET approval_state = 'refused',
               approval_refused_reason = $2
           WHERE approval_request_event_id = $1 AND approval_state = 'approval_requested'""",
        request_event_id,
        reason,
    )


async def approve_outcome(
    conn: asyncpg.Connection,
    outcome_id: UUID,
    *,
    approver: dict[str, Any],
    approved_at: datetime,
    appeal_window_ends_at: datetime,
) -> bool:
    """False when intake does not know the outcome (retry: it is recorded first)."""
    status = await conn.execute(
        """UPDATE intake.investigation_outcomes SET approval_state = 'approved',
               approver = $2::jsonb, approved_at = $3, appeal_window_ends_at = $4,
               approval_refused_reason = NULL
           WHERE outcome_id = $1""",
        outcome_id,
        json.dumps(approver),
        approved_at,
        appeal_window_ends_at,
    )
    return bool(status != "UPDATE 0")


async def close_appeal_window(
    conn: asyncpg.Connection, outcome_id: UUID, *, appealed: bool, closed_at: datetime
) -> bool:
    status = await conn.execute(
        """UPDATE intake.investigation_outcomes SET window_closed_at = $3, appealed = $2
           WHERE outcome_id = $1""",
        outcome_id,
        appealed,
        closed_at,
    )
    return bool(status != "UPDATE 0")


async def insert_appeal(conn: asyncpg.Connection, row: Row) -> bool:
    """False when this party already appealed this outcome."""
    status = await conn.execute(
        """INSERT INTO intake.investigation_appeals (appeal_id, case_id, outcome_id, by_role,
               by_employee_id, grounds, lodged_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
        row["appeal_id"],
        row["case_id"],
        row["outcome_id"],
        row["by_role"],
        row["by_employee_id"],
        row["grounds"],
        row["lodged_at"],
    )
    return bool(status != "INSERT 0 0")


async def list_appeals(conn: Conn, case_id: UUID) -> list[Row]:
    return _rows(
        await conn.fetch(
            "SELECT * FROM intake.investigation_appeals WHERE case_id = $1"
            " ORDER BY lodged_at, appeal_id",
            case_id,
        )
    )


async def decide_appeal(
    conn: asyncpg.Connection,
    appeal_id: UUID,
    *,
    decision: str,
    reasoning: str,
    decided_by: str,
    decided_at: datetime,
) -> None:
    await conn.execute(
        """UPDATE intake.investigation_appeals SET decision = $2, reasoning = $3,
               decided_by = $4, decided_at = $5 WHERE appeal_id = $1""",
        appeal_id,
        decision,
        reasoning,
        decided_by,
        decided_at,
    )


async def staff_contact(conn: Conn, staff_id: str) -> Row | None:
    """A member of staff's work contact from routing's roster: {staff_id, name, email}."""
    record = await conn.fetchrow(
        "SELECT staff_id, name, email FROM intake.staff WHERE staff_id = $1", staff_id
    )
    return dict(record) if record else None
