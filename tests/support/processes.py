"""Process helpers for tests of intake's process doors while routing's decision is not
what the test is about."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from uuid import UUID

import asyncpg
import yaml

from services.routing.domain.policy import DEFAULT_POLICY_FILE

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


def policy_without_processes(path: Path) -> Path:
    """The shipped routing policy without its `processes:` (and the categories' `process:`
    keys), written to `path`: routing routes and assigns cases as usual but puts none in a
    process, so a test of intake's doors can publish routing's process decisions itself
    (the cross-service tests, tests/e2e/test_investigation_flow.py and
    test_case_management_flow.py, run the shipped policy)."""
    raw = copy.deepcopy(yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8")))
    raw.pop("processes", None)
    for category in raw["categories"].values():
        category.pop("process", None)
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path
