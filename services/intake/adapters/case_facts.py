"""Intake's tables for respondents and injury facts (schema `intake`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.adapters.process_sql import process_role_holders
from shared.events import InjuryDetails, RespondentNamed, RespondentResolution


async def insert_respondents(
    conn: asyncpg.Connection, case_id: UUID, respondents: Sequence[RespondentNamed]
) -> None:
    await conn.executemany(
        """INSERT INTO intake.case_respondents (case_id, position, employee_id, name, email)
           VALUES ($1, $2, $3, $4, $5)""",
        [
            (case_id, i, r.employee_id, r.name, str(r.email) if r.email else None)
            for i, r in enumerate(respondents)
        ],
    )


async def apply_resolutions(
    conn: asyncpg.Connection,
    case_id: UUID,
    resolutions: Sequence[RespondentResolution],
    *,
    unresolved: int,
    at: datetime,
) -> None:
    """Routing's answer: which named respondent is which employee, and which need a person."""
    await conn.executemany(
        """UPDATE intake.case_respondents SET resolved_employee_id = $3, matched_by = $4,
               problem = $5, resolved_at = $6
           WHERE case_id = $1 AND position = $2""",
        [(case_id, r.position, r.employee_id, r.matched_by, r.problem, at) for r in resolutions],
    )
    await conn.execute(
        "UPDATE intake.cases SET respondents_unresolved = $2 WHERE case_id = $1",
        case_id,
        unresolved,
    )


async def list_respondents(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT position, employee_id, name, email, resolved_employee_id, matched_by,
                  problem, resolved_at
           FROM intake.case_respondents WHERE case_id = $1 ORDER BY position""",
        case_id,
    )
    return [dict(row) for row in rows]


async def record_injury(
    conn: asyncpg.Connection,
    *,
    event_id: UUID,
    case_id: UUID,
    recorded_by: str,
    recorded_at: datetime,
    injury: InjuryDetails,
) -> None:
    """Keep staff's decision and make it the case's current injury facts."""
    facts = injury.model_dump(mode="json")  # the pool's jsonb codec encodes it
    await conn.execute(
        """INSERT INTO intake.injury_records (event_id, case_id, recorded_by, recorded_at, injury)
           VALUES ($1, $2, $3, $4, $5)""",
        event_id,
        case_id,
        recorded_by,
        recorded_at,
        facts,
    )
    await conn.execute(
        "UPDATE intake.cases SET injury = $2, updated_at = $3 WHERE case_id = $1",
        case_id,
        facts,
        recorded_at,
    )


async def cases_with_respondents(
    conn: asyncpg.Connection | asyncpg.Pool,
    case_id: UUID,
    *,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Other cases naming any of this case's respondents (resolved to the same employee,
    or named by the same employee id), newest first, with the facts that decide access."""
    rows = await conn.fetch(
        f"""WITH mine AS (
               SELECT coalesce(resolved_employee_id, employee_id) AS who
               FROM intake.case_respondents
               WHERE case_id = $1 AND coalesce(resolved_employee_id, employee_id) IS NOT NULL
           )
           SELECT DISTINCT ON (c.submitted_at, c.case_id) c.case_id, c.reference, c.subject,
                  c.status, c.submitted_at, c.reporter_employee_id, c.anonymous,
                  c.sensitivity, c.owner_id, c.logged_by, c.submitted_by,
                  {process_role_holders("c")}
           FROM intake.case_respondents r
           JOIN mine ON mine.who IN (r.resolved_employee_id, r.employee_id)
           JOIN intake.cases c ON c.case_id = r.case_id
           WHERE r.case_id <> $1
           ORDER BY c.submitted_at DESC, c.case_id
           LIMIT $2""",
        case_id,
        limit,
    )
    return [dict(row) for row in rows]
