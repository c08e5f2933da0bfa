"""Case references for the privacy portal's forms and lists (intake.cases)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg


async def references_of(pool: asyncpg.Pool, case_ids: Sequence[UUID]) -> dict[UUID, str]:
    """The reference of each known case id (e.g. "HR-2026-000123"), by id."""
    if not case_ids:
        return {}
    rows = await pool.fetch(
        "SELECT case_id, reference FROM intake.cases WHERE case_id = ANY($1::uuid[])",
        list(case_ids),
    )
    return {row["case_id"]: row["reference"] for row in rows}


async def case_ids_of(pool: asyncpg.Pool, typed: Sequence[str]) -> tuple[list[UUID], list[str]]:
    """The case ids of `typed` references (case-insensitive) or case ids, in order and
    without repeats, and the typed values that name no case."""
    found: list[UUID] = []
    unknown: list[str] = []
    for value in typed:
        try:
            as_id: UUID | None = UUID(value)
        except ValueError:
            as_id = None
        case_id = await pool.fetchval(
            "SELECT case_id FROM intake.cases WHERE case_id = $1 OR upper(reference) = upper($2)",
            as_id,
            value[:100],
        )
        if case_id is None:
            unknown.append(value[:100])
        elif case_id not in found:
            found.append(case_id)
    return found, unknown
