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

from services.intake.adapters import legal_hold_sql


async def active_holds_for(
    conn: asyncpg.Connection, subject_id: str, case_ids: Sequence[UUID]
) -> list[UUID]:
    """The ids of the active legal holds on `subject_id`, on any of `case_ids` or on a
    matter holding one of them; empty when none. The legal holds' own query
    (legal_hold_sql.active_holds_covering)."""
    return await legal_hold_sql.active_holds_covering(
        conn, subject_id=subject_id, case_ids=case_ids
    )
