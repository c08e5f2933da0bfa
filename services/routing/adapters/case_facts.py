"""Routing's tables for named respondents and injury facts (schema `routing`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.routing.domain.respondents import Candidate
from shared.events import InjuryDetails, RespondentNamed, RespondentResolution


def _name_prefilter(name: str) -> str:
    return " ".join(name.lower().split())


async def directory_candidates(
    conn: asyncpg.Connection, named: Sequence[RespondentNamed]
) -> list[Candidate]:
    """Directory rows any of `named` could resolve to (by id, email or name; the exact
    rules are the domain's, this only narrows the directory down)."""
    ids = [n.employee_id for n in named if n.employee_id]
    emails = [str(n.email).lower() for n in named if n.email]
    names = [_name_prefilter(n.name) for n in named if n.name]
    rows = await conn.fetch(
        """SELECT employee_id, name, email FROM routing.employees
           WHERE employee_id = ANY($1::text[])
              OR lower(email) = ANY($2::text[])
              OR lower(regexp_replace(btrim(name), '\\s+', ' ', 'g')) = ANY($3::text[])""",
        ids,
        emails,
        names,
    )
    return [Candidate(r["employee_id"], r["name"], r["email"]) for r in rows]


async def save_respondents(
    conn: asyncpg.Connection,
    case_id: UUID,
    named: Sequence[RespondentNamed],
    resolutions: Sequence[RespondentResolution],
) -> None:
    await conn.executemany(
        """INSERT INTO routing.case_respondents (case_id, position, named_employee_id,
               named_name, named_email, employee_id, matched_by, problem)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (case_id, position) DO NOTHING""",
        [
            (
                case_id,
                r.position,
                n.employee_id,
                n.name,
                str(n.email) if n.email else None,
                r.employee_id,
                r.matched_by,
                r.problem,
            )
            for n, r in zip(named, resolutions, strict=True)
        ],
    )


async def lock_respondent(
    conn: asyncpg.Connection, case_id: UUID, position: int
) -> dict[str, Any] | None:
    """One named respondent of the case (row-locked), or None when the case names nobody
    at `position`."""
    row = await conn.fetchrow(
        """SELECT position, named_employee_id, employee_id, matched_by, problem
           FROM routing.case_respondents WHERE case_id = $1 AND position = $2 FOR UPDATE""",
        case_id,
        position,
    )
    return dict(row) if row else None


async def employee_known(conn: asyncpg.Connection, employee_id: str) -> bool:
    """Whether the employee directory lists `employee_id` (active or not)."""
    found = await conn.fetchval(
        "SELECT true FROM routing.employees WHERE employee_id = $1", employee_id
    )
    return bool(found)


async def resolve_by_person(
    conn: asyncpg.Connection,
    case_id: UUID,
    position: int,
    *,
    employee_id: str,
    resolved_by: str | None,
    at: datetime,
    reason: str | None,
) -> None:
    await conn.execute(
        """UPDATE routing.case_respondents SET employee_id = $3, matched_by = 'person',
               problem = NULL, resolved_by = $4, resolved_at = $5, resolution_reason = $6
           WHERE case_id = $1 AND position = $2""",
        case_id,
        position,
        employee_id,
        resolved_by,
        at,
        reason,
    )


async def resolutions(conn: asyncpg.Connection, case_id: UUID) -> list[RespondentResolution]:
    """How each of the case's named respondents stands now, in position order."""
    rows = await conn.fetch(
        """SELECT position, employee_id, matched_by, problem FROM routing.case_respondents
           WHERE case_id = $1 ORDER BY position""",
        case_id,
    )
    return [RespondentResolution(**dict(row)) for row in rows]


async def save_injury(
    conn: asyncpg.Connection,
    case_id: UUID,
    injury: InjuryDetails | None,
    *,
    conference_required_at: datetime | None = None,
) -> None:
    """Store the case's injury facts; `conference_required_at` only ever goes from NULL
    to a time (a conference is required once per case)."""
    await conn.execute(
        """UPDATE routing.cases SET injury = $2::jsonb,
               conference_required_at = coalesce(conference_required_at, $3),
               updated_at = now()
           WHERE case_id = $1""",
        case_id,
        injury.model_dump(mode="json") if injury else None,  # the pool's jsonb codec
        conference_required_at,
    )


async def conference_required_at(conn: asyncpg.Connection, case_id: UUID) -> datetime | None:
    value: Any = await conn.fetchval(
        "SELECT conference_required_at FROM routing.cases WHERE case_id = $1", case_id
    )
    return value if isinstance(value, datetime) else None
