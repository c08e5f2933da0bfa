"""Process helpers for tests of intake's process doors while routing's decision is not
what the test is about."""

from __future__ import annotations

import json
from uuid import UUID

import asyncpg

# The shipped policy's light process (categories without a process of their own).
QUERY_STAGES = [
    {"name": "handling", "label": "Handling", "target_working_days": None},
    {"name": "closed", "label": "Closed", "target_working_days": None},
]
QUERY_ENDINGS = ["answered", "withdrawn"]


async def ensure_query_process(database_url: str, case_id: UUID | str) -> None:
    """Put the case in the query process at its handling stage in intake's projection
    (intake.case_processes), unless routing already put it in a process: what routing's
    case.process_assigned + case.stage_entered would leave there for a category without a
    process of its own. `database_url`: the admin database URL (asyncpg DSN)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """INSERT INTO intake.case_processes
                   (case_id, process, label, stages, endings, assigned_by, stage, stage_label,
                    stage_entered_at)
               VALUES ($1, 'query', 'Query', $2::jsonb, $3::jsonb, 'policy', 'handling',
                       'Handling', now())
               ON CONFLICT (case_id) DO NOTHING""",
            UUID(str(case_id)),
            json.dumps(QUERY_STAGES),
            json.dumps(QUERY_ENDINGS),
        )
    finally:
        await conn.close()
