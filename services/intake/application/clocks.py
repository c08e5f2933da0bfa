"""Following routing's SLA clocks into the case read model (domain/clocks.py says how).

Called by the projections in handlers.py, inside the event's transaction, with the case
row already locked, before the projection writes its own columns (a team change needs the
old team's calendar).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.adapters import roster, sql
from services.intake.domain.clocks import (
    CLOCK_NAMES,
    ROUND_THE_CLOCK,
    ClockMark,
    after_status,
    moved_to_calendar,
    with_deadline,
)
from shared.working_time import WorkingCalendar


def mark_of(row: dict[str, Any], name: str) -> ClockMark:
    return ClockMark(row[f"{name}_state"], row[f"{name}_due"], row[f"{name}_left"])


def _columns(name: str, mark: ClockMark) -> dict[str, Any]:
    return {f"{name}_state": mark.state, f"{name}_due": mark.due, f"{name}_left": mark.left}


def calendar_for(calendars: dict[str, WorkingCalendar], team: str | None) -> WorkingCalendar:
    """The team's calendar; round the clock until the roster names one."""
    return calendars.get(team or "", ROUND_THE_CLOCK)


async def follow_deadlines(
    conn: asyncpg.Connection,
    case_id: UUID,
    at: datetime,
    *,
    first_response_due: datetime | None = None,
    resolution_due: datetime | None = None,
    team: str | None = None,
) -> None:
    """Routing announced deadlines (and maybe a new owning team) at `at`."""
    found = await roster.case_clocks(conn, case_id, team or None)
    assert found is not None  # locked by the caller
    row, old_calendar, new_calendar = found
    old = old_calendar or ROUND_THE_CLOCK
    new = new_calendar or ROUND_THE_CLOCK
    columns: dict[str, Any] = {}
    for name, due in (("first_response", first_response_due), ("resolution", resolution_due)):
        mark = mark_of(row, name)
        if team is not None and row["team"] is not None and team != row["team"]:
            mark = moved_to_calendar(mark, old, new, at)
        if due is not None:
            mark = with_deadline(mark, due, new, at)
        columns.update(_columns(name, mark))
    await sql.update_case(conn, case_id, **columns)


async def follow_status(
    conn: asyncpg.Connection, case_id: UUID, to_status: str, at: datetime
) -> None:
    """The case moved to `to_status` at `at`: pause, resume or stop its clocks."""
    found = await roster.case_clocks(conn, case_id)
    assert found is not None
    row, calendar_named, _ = found
    calendar = calendar_named or ROUND_THE_CLOCK
    columns: dict[str, Any] = {}
    for name in CLOCK_NAMES:
        columns.update(
            _columns(name, after_status(name, mark_of(row, name), to_status, calendar, at))
        )
    await sql.update_case(conn, case_id, **columns)


async def follow_reopened(
    conn: asyncpg.Connection, case_id: UUID, resolution_due: datetime
) -> None:
    """A reopened case's resolution clock runs again to the deadline routing announced."""
    await sql.update_case(
        conn, case_id, **_columns("resolution", ClockMark("running", resolution_due, None))
    )
