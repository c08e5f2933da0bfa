"""Saving SLA clocks with the timers they need (shared by the handlers and the timer loop)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.routing.adapters import sql
from services.routing.domain.policy import Policy
from services.routing.domain.sla import Clock, ClockName, plan_timers


async def save_clocks(
    conn: asyncpg.Connection,
    policy: Policy,
    *,
    case_id: UUID,
    team: str,
    clocks: dict[ClockName, Clock],
) -> None:
    """Persist each clock and replace its pending timers, in the caller's transaction."""
    calendar = policy.team_calendar(team)
    ladder = policy.escalation_ladders[policy.teams[team].escalation]
    after = tuple(level.after_breach_hours for level in ladder)
    timers = [
        timer
        for clock in clocks.values()
        for timer in plan_timers(
            clock, calendar, warn_at=policy.sla.warn_at, escalation_after_hours=after
        )
    ]
    await sql.save_clocks(conn, case_id, [(c, c.due(calendar)) for c in clocks.values()])
    await sql.replace_timers(conn, case_id, list(clocks), timers)
