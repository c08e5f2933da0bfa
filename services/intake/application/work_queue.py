"""The staff work queue: one page of the cases a member of staff may see, in deadline
order, with both SLA clocks and the count of every scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.intake.adapters import roster
from services.intake.adapters import work_queue as queue_sql
from services.intake.application.clocks import calendar_for, mark_of
from services.intake.domain.clocks import CLOCK_NAMES, ClockView, clock_view
from services.intake.domain.refusals import Refused
from services.intake.domain.work_queue import (
    COUNT_LIMIT,
    Cursor,
    Viewer,
    WorkQueueQuery,
    may_use_queue,
    viewer_of,
)
from shared.auth import Principal
from shared.working_time import WorkingCalendar


@dataclass(frozen=True)
class QueueRow:
    case: dict[str, Any]
    clocks: tuple[ClockView, ...]

    @property
    def breached(self) -> bool:
        return any(clock.breached for clock in self.clocks)

    @property
    def due_soon(self) -> bool:
        return not self.breached and any(clock.due_soon for clock in self.clocks)

    @property
    def sla_state(self) -> str | None:
        return "breached" if self.breached else "due_soon" if self.due_soon else None


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None
    counts: dict[str, int]  # exact up to COUNT_LIMIT; COUNT_LIMIT + 1: more than that
    viewer: Viewer

    def count_text(self, scope: str) -> str:
        """`12`, or `1,000+` beyond the counting limit."""
        count = self.counts[scope]
        return f"{COUNT_LIMIT:,}+" if count > COUNT_LIMIT else f"{count:,}"


def case_clocks(
    case: dict[str, Any], calendars: dict[str, WorkingCalendar], now: datetime
) -> tuple[ClockView, ...]:
    """Both clocks of a case row, with working time left in its team's calendar."""
    calendar = calendar_for(calendars, case.get("team"))
    return tuple(clock_view(name, mark_of(case, name), calendar, now) for name in CLOCK_NAMES)


async def staff_viewer(conn: asyncpg.Connection | asyncpg.Pool, principal: Principal) -> Viewer:
    """The viewer behind `principal`, refused (403) unless they are staff."""
    if not may_use_queue(principal):
        raise Refused("forbidden", "the work queue is for HR staff")
    ids = viewer_of(principal).ids
    return viewer_of(principal, await roster.teams_of(conn, ids))


async def work_queue(
    pool: asyncpg.Pool, principal: Principal, query: WorkQueueQuery, *, now: datetime | None = None
) -> QueuePage:
    now = now or datetime.now(UTC)
    async with pool.acquire() as conn:
        viewer = await staff_viewer(conn, principal)
        rows, more = await queue_sql.fetch_page(conn, query, viewer, now)
        counts = await queue_sql.count_scopes(conn, query, viewer, now)
        calendars = await roster.team_calendars(conn)
    next_cursor = None
    if more and rows:
        next_cursor = Cursor(rows[-1]["queue_due"], rows[-1]["case_id"]).encode()
    return QueuePage(
        rows=[QueueRow(row, case_clocks(row, calendars, now)) for row in rows],
        next_cursor=next_cursor,
        counts=counts,
        viewer=viewer,
    )


async def clocks_of_case(
    conn: asyncpg.Connection | asyncpg.Pool, case: dict[str, Any], *, now: datetime | None = None
) -> tuple[ClockView, ...]:
    """The clocks shown on a case page (the caller has checked the case may be read)."""
    return case_clocks(case, await roster.team_calendars(conn), now or datetime.now(UTC))
