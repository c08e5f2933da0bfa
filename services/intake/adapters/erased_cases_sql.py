"""Which cases had their reporter's personal data erased (intake's own records).

A case counts as erased when retention erased it (`intake.case_retention_erasures`), or
when a carried-out erasure request (`intake.erasure_requests`, status `erased`) covered
the case and its data subject was the case's reporter (the employee id matches, or the
reporter's name was scrubbed to the erased marker). A respondent's or a witness's
erasure does not make the case erased: its reporter may still write to it.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import asyncpg

from shared.privacy.fields import ERASED

ErasedBy = Literal["retention", "erasure_request"]

_ERASED_BY = f"""
SELECT CASE
    WHEN EXISTS (SELECT 1 FROM intake.case_retention_erasures r WHERE r.case_id = $1)
        THEN 'retention'
    WHEN EXISTS (
        SELECT 1 FROM intake.erasure_requests e JOIN intake.cases c ON c.case_id = $1
         WHERE e.status = 'erased' AND $1 = ANY(e.erased_case_ids)
           AND (e.employee_id = c.reporter_employee_id OR c.reporter_name = '{ERASED}'))
        THEN 'erasure_request'
    END
"""


async def erased_by(conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID) -> ErasedBy | None:
    """How the reporter's personal data in `case_id` was erased: "retention",
    "erasure_request", or None (not erased; also for an unknown case)."""
    found: ErasedBy | None = await conn.fetchval(_ERASED_BY, case_id)
    return found
