"""The legal holds that stop an erasure request (README "Data-subject rights").

`active_holds_for` is the one question data-subject rights ask of legal holds: which
active holds cover this person or any of these cases. Holds are placed in intake
(`POST /api/v1/privacy/legal-holds`, README "Retention schedule and legal holds") in
`intake.legal_holds` (migration 0026): one row per hold on a case (`case_id`), a data
subject (`subject_id`) or a matter's cases (`case_ids`), active while `released_at` is
NULL.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg


async def active_holds_for(
    conn: asyncpg.Connection, subject_id: str, case_ids: Sequence[UUID]
) -> list[UUID]:
    """The ids of the active legal holds on `subject_id` or on any of `case_ids`, sorted;
    empty when none."""
    rows = await conn.fetch(
        """SELECT hold_id FROM intake.legal_holds
            WHERE released_at IS NULL
              AND (subject_id = $1 OR case_id = ANY($2::uuid[])
                   OR case_ids && $2::uuid[])
            ORDER BY hold_id""",
        subject_id,
        list(case_ids),
    )
    return [row["hold_id"] for row in rows]
