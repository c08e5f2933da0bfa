"""Statutory clocks on a case: the staff's view and "record as done", and the projection.

Reading (API and case page) needs a staff role and read access to the case (404 as for a
missing case); the reporter never sees them. Recording one as done goes through the agent
actions' one path (`agent_actions._act`: role 403, access 404, closed case 409), refuses a
clock the case does not have (404) or one already met (409), and publishes
`statutory_clock.completion_requested`; routing answers statutory_clock.met or
case.request_refused. The projection applies routing's statutory_clock.* events to
`intake.statutory_clocks` under the case's lock, in the order routing published them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.adapters import sql
from services.intake.adapters import statutory_clock_sql as clock_sql
from services.intake.application import actions, agent_actions
from services.intake.application.actions import Client
from services.intake.domain.case import is_reporter
from services.intake.domain.refusals import Refused
from services.intake.domain.statutory_clocks import (
    CLOCK_ROLES,
    STATE_WORDS,
    ClockCompletion,
    completion_conflict,
    local_time,
)
from shared.auth import Principal
from shared.consumer import Handler, HandlerContext
from shared.envelope import Envelope, utcnow
from shared.events import (
    StatutoryClockBreached,
    StatutoryClockCompletionRequested,
    StatutoryClockDueSoon,
    StatutoryClockMet,
    StatutoryClockStarted,
    payload_as,
)
from shared.service import Runtime

Case = dict[str, Any]


async def request_completion(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    pack: str,
    clock: str,
    completion: ClockCompletion,
) -> agent_actions.ActionAccepted:
    """Publish `statutory_clock.completion_requested` for a clock the case has, not met."""

    async def check(conn: asyncpg.Connection, case: Case, event: Envelope) -> None:
        problem = completion_conflict(await clock_sql.clock_states(conn, case_id, pack, clock))
        if problem == "not_found":
            raise Refused("not_found", f"no statutory clock {pack}/{clock} on this case")
        if problem:
            raise agent_actions.conflict(problem)

    return await agent_actions._act(
        runtime,
        principal,
        case_id,
        roles=CLOCK_ROLES,
        action="recording a statutory clock as done",
        build=lambda case: StatutoryClockCompletionRequested(
            reference=case["reference"],
            pack=pack,
            clock=clock,
            note=completion.note,
            completed_at=utcnow(),
        ),
        record=check,
        kind="statutory_clock_completion_requested",
        summary=lambda _case: {"pack": pack, "clock": clock},
    )


async def _shown(pool: asyncpg.Pool | asyncpg.Connection, case: Case) -> list[dict[str, Any]]:
    zone = await clock_sql.team_time_zone(pool, case.get("team"))
    rows = await clock_sql.list_clocks(pool, case["case_id"])
    for row in rows:
        row["time_zone"] = zone or "UTC"
        row["due_local"] = local_time(row["due_at"], zone)
        row["met_local"] = local_time(row["met_at"], zone)
        row["state_label"] = STATE_WORDS.get(row["state"], row["state"])
    return rows


async def list_clocks(
    runtime: Runtime, principal: Principal, case_id: UUID, client: Client, *, view: str
) -> list[dict[str, Any]]:
    """The case's statutory clocks for staff who may read it (404 otherwise)."""
    agent_actions.require_role(principal, CLOCK_ROLES, "reading a case's statutory clocks")
    row = await actions.readable_case(runtime, principal, case_id, client, view=view)
    if is_reporter(principal, actions.facts(row)):
        raise Refused("forbidden", "statutory clocks are for the HR staff working the case")
    return await _shown(runtime.pool, row)


async def clock_section(
    pool: asyncpg.Pool, principal: Principal, staff_view: bool, case: Case
) -> dict[str, Any]:
    """The case page's block: nothing unless the viewer is staff working the case."""
    shown = staff_view and principal.has_any(*CLOCK_ROLES)
    clocks = await _shown(pool, case) if shown else []
    return {"shown": shown and bool(clocks), "clocks": clocks}


# --- projection of routing's statutory_clock.* events -------------------------------------


async def _case(ctx: HandlerContext) -> UUID:
    case_id = ctx.envelope.case_id
    if case_id is None:
        raise ValueError(f"{ctx.envelope.event_type} without case_id")
    if await sql.lock_case_status(ctx.conn, case_id) is None:
        raise LookupError(f"case {case_id} is not known to intake")
    return case_id


async def on_clock_started(ctx: HandlerContext) -> None:
    started = payload_as(ctx.envelope, StatutoryClockStarted)
    await clock_sql.insert_clock(
        ctx.conn,
        case_id=await _case(ctx),
        pack=started.pack,
        clock=started.clock,
        conference_id=started.conference_id,
        label=started.label,
        citation=started.citation,
        basis=started.basis,
        trigger=started.trigger,
        started_at=started.started_at,
        due_at=started.due_at,
        due_soon_at=started.due_soon_at,
    )


async def _update(ctx: HandlerContext, payload: Any, **fields: Any) -> None:
    found = await clock_sql.update_clock(
        ctx.conn,
        case_id=await _case(ctx),
        pack=payload.pack,
        clock=payload.clock,
        conference_id=payload.conference_id,
        **fields,
    )
    if not found:  # routing starts a clock before anything else is said of it: retry
        raise LookupError(f"statutory clock {payload.pack}/{payload.clock} is not known")


async def on_clock_due_soon(ctx: HandlerContext) -> None:
    due_soon = payload_as(ctx.envelope, StatutoryClockDueSoon)
    await _update(ctx, due_soon, state="due_soon", unless_state=("met", "breached"))


async def on_clock_breached(ctx: HandlerContext) -> None:
    breached = payload_as(ctx.envelope, StatutoryClockBreached)
    await _update(
        ctx,
        breached,
        state="breached",
        breached_at=ctx.envelope.occurred_at,
        escalated_to_name=breached.escalated_to.name if breached.escalated_to else None,
        unless_state=("met",),
    )


async def on_clock_met(ctx: HandlerContext) -> None:
    met = payload_as(ctx.envelope, StatutoryClockMet)
    await _update(
        ctx, met, state="met", met_at=met.met_at, met_by=met.met_by, met_on_time=met.on_time
    )


CLOCK_HANDLERS: Mapping[str, Handler] = {
    "statutory_clock.started": on_clock_started,
    "statutory_clock.due_soon": on_clock_due_soon,
    "statutory_clock.breached": on_clock_breached,
    "statutory_clock.met": on_clock_met,
}
