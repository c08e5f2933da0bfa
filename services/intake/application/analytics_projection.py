"""Keeping intake.case_analytics: one fact row per case, rewritten in the transaction of
every event that touches the case (inbox: exactly once), from intake's own read model.

- intake's own writes (a case submitted, an agent's message...) call `refresh_case` from
  history.record_written, after the entry is written;
- every consumed event runs its projection, then `refresh_case` (`with_analytics`);
- directory.employee_updated keeps employees' departments and fills them on their rows.
The row is recomputed whole (domain/analytics_facts.py), so no event needs its own rule
and a missed refresh heals at the case's next event.
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

import asyncpg

from services.intake.adapters import analytics_sql, roster
from services.intake.domain.analytics_facts import clock_facts, met
from services.intake.domain.clocks import ROUND_THE_CLOCK
from shared.consumer import Handler, HandlerContext
from shared.events import DirectoryEmployeeUpdated, payload_as


async def refresh_case(conn: asyncpg.Connection, case_id: UUID) -> None:
    """Rewrite the case's fact row from its current read model (inside the caller's
    transaction; the case row is normally locked by it)."""
    found = await analytics_sql.case_inputs(conn, case_id)
    if found is None:
        return
    row, history = found
    calendar = (
        roster.calendar_of(
            row["calendar_time_zone"], row["calendar_hours"], row["calendar_holidays"]
        )
        if row["calendar_time_zone"] is not None
        else ROUND_THE_CLOCK
    )
    clocks = clock_facts(
        submitted_at=row["submitted_at"],
        routed_at=row["routed_at"],
        status=row["status"],
        history=history,
        calendar=calendar,
    )
    conference = row["conference"] or ("required" if row["conference_required_at"] else None)
    await analytics_sql.upsert_fact(
        conn,
        case_id,
        {
            "category": row["category"],
            "channel": row["channel"],
            "team": row["team"],
            "department": row["department"],
            "reporter_key": None if row["anonymous"] else row["reporter_employee_id"],
            "respondent_ids": list(row["respondent_ids"]),
            "restricted": row["restricted"],
            "status": row["status"],
            "submitted_at": row["submitted_at"],
            "first_response_at": clocks.first_response_at,
            "first_response_due": _due(row["first_response_due"]),
            "first_response_working_s": clocks.first_response_working_s,
            "first_response_met": met(clocks.first_response_at, row["first_response_due"]),
            "resolved_at": clocks.resolved_at,
            "resolution_due": _due(row["resolution_due"]),
            "resolution_working_s": clocks.resolution_working_s,
            "resolution_met": met(clocks.resolved_at, row["resolution_due"]),
            "reopen_count": clocks.reopen_count,
            "first_response_breached": clocks.first_response_breached,
            "resolution_breached": clocks.resolution_breached,
            "escalations": clocks.escalations,
            "process": row["process"],
            "stage": row["stage"],
            "conference": conference,
        },
    )


def _due(value: object) -> object:
    # asyncpg gives +/-infinity as naive datetime.max/min: no deadline to report.
    return None if getattr(value, "tzinfo", True) is None else value


def with_analytics(handlers: Mapping[str, Handler]) -> dict[str, Handler]:
    """The same handlers, each followed by refreshing its case's fact row."""

    def wrap(handler: Handler) -> Handler:
        async def counted(ctx: HandlerContext) -> None:
            await handler(ctx)
            if ctx.envelope.case_id is not None:
                await refresh_case(ctx.conn, ctx.envelope.case_id)

        counted.__name__ = getattr(handler, "__name__", "handler")
        return counted

    return {event_type: wrap(handler) for event_type, handler in handlers.items()}


async def on_employee_updated(ctx: HandlerContext) -> None:
    """The directory's word on an employee: their department, for the recurring figures."""
    updated = payload_as(ctx.envelope, DirectoryEmployeeUpdated)
    await analytics_sql.set_department(
        ctx.conn, updated.employee_id, updated.department, ctx.envelope.occurred_at
    )


BACKFILL_BATCH = 500


async def backfill(pool: asyncpg.Pool) -> int:
    """Write the fact row of every case that has none (cases raised before the projection
    existed), each in its own transaction under the case's lock, as the handlers do.
    Idempotent; returns how many rows it wrote. Run in the background at startup."""
    written = 0
    while True:
        missing = await pool.fetch(
            """SELECT c.case_id FROM intake.cases c
               WHERE NOT EXISTS (SELECT 1 FROM intake.case_analytics a
                                 WHERE a.case_id = c.case_id)
               LIMIT $1""",
            BACKFILL_BATCH,
        )
        if not missing:
            return written
        for row in missing:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "SELECT 1 FROM intake.cases WHERE case_id = $1 FOR UPDATE", row["case_id"]
                )
                await refresh_case(conn, row["case_id"])
            written += 1
