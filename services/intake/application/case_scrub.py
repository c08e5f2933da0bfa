"""Scrubbing a case's personal data from intake's read model, keeping its anonymous
skeleton (ids, category, team, priority, dates, status) so statistics and the dashboard
still count it.

`scrub_case(conn, case_id)` is the one reusable step (retention here; an erasure request
of a data subject may call it for each case it erases); `on_retention_erased` handles
`privacy.retention_erased` from routing: the erasure is recorded (rule, closure, when)
and the case scrubbed, in the event's transaction (a redelivery changes nothing more).
The analytics fact row is rewritten after it by `with_analytics` (reporter and
respondents gone from the recurring figures, the counts kept).
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import structlog

from services.intake.adapters import case_scrub_sql, legal_hold_sql
from shared.consumer import HandlerContext
from shared.events import PrivacyRetentionErased, payload_as

log = structlog.get_logger(__name__)


async def scrub_case(conn: asyncpg.Connection, case_id: UUID) -> dict[str, int]:
    """Scrub every personal field of the case in intake's tables (the caller's
    transaction); returns the rows touched per table. Idempotent."""
    return await case_scrub_sql.scrub_case_rows(conn, case_id)


async def on_retention_erased(ctx: HandlerContext) -> None:
    """Routing carried out the case's retention: record it and scrub the case."""
    erased = payload_as(ctx.envelope, PrivacyRetentionErased)
    first = await legal_hold_sql.record_retention_erasure(
        ctx.conn,
        erased.case_id,
        rule=erased.rule,
        closed_at=erased.closed_at,
        erased_at=erased.erased_at,
        event_id=ctx.envelope.event_id,
    )
    touched = await scrub_case(ctx.conn, erased.case_id)
    log.info("case scrubbed after retention", rule=erased.rule, first=first, rows=touched)
