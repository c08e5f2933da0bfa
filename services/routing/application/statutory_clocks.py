"""Statutory clocks: started and met by the events routing handles, fired by its timer loop.

`observe_statutory_clocks` wraps routing's handler map: each handler runs with a context
that records what it emits; afterwards, in the same transaction, the event it consumed
and every event it emitted (in that order) are matched against the case's packs
(domain/statutory_clocks.py): a running clock an event meets is met
(`statutory_clock.met`), a clock an event starts is started (`statutory_clock.started`)
with its due-soon and breach timers. Matching after the handler means the case row and its
injury facts (hence its jurisdiction) are already written. Events the timer loop emits
are not observed: no clock starts or stops on a timer.

`statutory_clock.completion_requested` (staff, through intake) meets the named clock, the
running instance due first for a per-conference clock, or is refused
(`case.request_refused`) when the case has no such clock or it is met already.

The timers (`fire_due_statutory_timers`, in the routing tick) are claimed with their clock
and case under FOR UPDATE SKIP LOCKED and marked fired in the transaction that records
their event: each due-soon and each breach is announced once across replicas. A breach
escalates (pack `escalate`) to level 1 of the case team's ladder, passed up past anyone
conflicted (respondents, their managers) and the case owner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID, uuid4

import asyncpg
import structlog

from services.routing.adapters import sql
from services.routing.adapters import statutory_clock_sql as clock_sql
from services.routing.application.requests import locked_case, refuse
from services.routing.application.timer_batches import fire_batch
from services.routing.domain.policy import Policy
from services.routing.domain.statutory_clocks import (
    ClockStart,
    due_at,
    due_soon_at,
    event_moment,
    meets,
    packs_for,
    plan_timers,
    spec_of,
    starts,
    watched_event_types,
)
from services.routing.domain.triage import escalation_target
from shared.consumer import Handler, HandlerContext
from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    EventPayload,
    Person,
    StatutoryClockBreached,
    StatutoryClockCompletionRequested,
    StatutoryClockDueSoon,
    StatutoryClockMet,
    StatutoryClockStarted,
    make_event,
    payload_as,
)

log = structlog.get_logger(__name__)
SERVICE = "routing"
COMPLETION_REQUESTED = "statutory_clock.completion_requested"


@dataclass
class ObservingContext(HandlerContext):
    """A handler's context that remembers every event the handler emits."""

    emitted: list[Envelope] = field(default_factory=list)

    async def emit(
        self,
        payload: EventPayload,
        *,
        case_id: UUID | None = None,
        actor: Actor | None = None,
    ) -> Envelope:
        event = await super().emit(payload, case_id=case_id, actor=actor)
        self.emitted.append(event)
        return event


def observe_statutory_clocks(policy: Policy, handlers: Mapping[str, Handler]) -> dict[str, Handler]:
    """`handlers`, each followed by the statutory clocks' look at what it consumed and
    emitted (same transaction)."""
    watched = watched_event_types(policy)

    def observed(handle: Handler) -> Handler:
        async def handler(ctx: HandlerContext) -> None:
            recording = ObservingContext(
                envelope=ctx.envelope,
                conn=ctx.conn,
                service=ctx.service,
                schema=ctx.schema,
                outbox=ctx.outbox,
            )
            await handle(recording)
            await observe(ctx, policy, watched, recording.emitted)

        return handler

    return {event_type: observed(handle) for event_type, handle in handlers.items()}


async def observe(
    ctx: HandlerContext, policy: Policy, watched: frozenset[str], emitted: list[Envelope]
) -> None:
    """Start and meet clocks for the consumed event and the events emitted for it."""
    consumed = ctx.envelope
    relevant = [
        e for e in (consumed, *emitted) if e.event_type in watched and e.case_id is not None
    ]
    if not relevant:
        return
    # Everything the handler emitted happened "now" for the case: the consumed event's
    # moment (a submission's submitted_at), so a conference.required emitted at submission
    # runs from the same instant as its own due_by.
    fallback = event_moment(consumed.event_type, consumed.payload, consumed.occurred_at)
    by_case: dict[UUID, list[Envelope]] = {}
    for event in relevant:
        assert event.case_id is not None
        by_case.setdefault(event.case_id, []).append(event)
    for case_id, events in by_case.items():
        case = await sql.lock_case(ctx.conn, case_id)
        if case is None:
            continue  # not routed yet: no clock can run on it
        jurisdiction = policy.jurisdiction_for(
            case.team, await clock_sql.claim_jurisdiction(ctx.conn, case_id)
        )
        packs = packs_for(policy, jurisdiction)
        running = await clock_sql.lock_running_clocks(ctx.conn, case_id)
        for event in events:
            moment = event_moment(event.event_type, event.payload, fallback)
            for row in list(running):
                spec = spec_of(policy, packs, row.pack, row.clock)
                if meets(spec, row.clock_key, event.event_type, event.payload):
                    await _meet(ctx, case, row, met_at=moment, met_by=event.event_type)
                    running.remove(row)
            for start in starts(packs, event.event_type, event.payload):
                started = await _start(ctx, policy, case, start, event, at=moment)
                if started is not None:
                    running.append(started)


def _calendar_name(policy: Policy, case: sql.CaseRow, pack_calendar: str | None) -> str:
    return pack_calendar or policy.teams[case.team].calendar


async def _start(
    ctx: HandlerContext,
    policy: Policy,
    case: sql.CaseRow,
    start: ClockStart,
    trigger: Envelope,
    *,
    at: datetime,
) -> clock_sql.StatutoryClockRow | None:
    spec = start.spec
    calendar = policy.working_calendars[_calendar_name(policy, case, start.pack_calendar)]
    due = due_at(spec.within, calendar, at)
    reminder = due_soon_at(spec.within, calendar, at, due, spec.due_soon_share)
    row = clock_sql.StatutoryClockRow(
        clock_id=uuid4(),
        case_id=case.case_id,
        pack=start.pack,
        clock=spec.name,
        clock_key=start.key,
        conference_id=UUID(start.key) if start.key else None,
        label=spec.label,
        citation=spec.citation,
        basis=spec.within.basis,
        trigger=trigger.event_type,
        escalate=spec.escalate,
        started_at=at,
        due_at=due,
        due_soon_at=reminder,
        status="running",
        breached_at=None,
        met_at=None,
    )
    if not await clock_sql.insert_clock(ctx.conn, row, trigger_event_id=trigger.event_id):
        return None  # started before: a clock starts once
    timers = plan_timers(due=due, reminder=reminder, now=utcnow())
    await clock_sql.schedule(ctx.conn, row, timers)
    await ctx.emit(
        StatutoryClockStarted(
            reference=case.reference,
            pack=row.pack,
            clock=row.clock,
            label=row.label,
            citation=row.citation,
            due_at=due,
            conference_id=row.conference_id,
            owner_id=case.owner_id,
            basis=spec.within.basis,
            started_at=at,
            trigger=trigger.event_type,
            due_soon_at=reminder if any(t.kind == "due_soon" for t in timers) else None,
        )
    )
    log.info("statutory clock started", pack=row.pack, clock=row.clock, due_at=due.isoformat())
    return row


async def _meet(
    ctx: HandlerContext,
    case: sql.CaseRow,
    row: clock_sql.StatutoryClockRow,
    *,
    met_at: datetime,
    met_by: str,
) -> None:
    on_time = met_at <= row.due_at
    dropped = await clock_sql.mark_met(
        ctx.conn, row.clock_id, met_at=met_at, met_by=met_by, on_time=on_time
    )
    await ctx.emit(
        StatutoryClockMet(
            reference=case.reference,
            pack=row.pack,
            clock=row.clock,
            label=row.label,
            citation=row.citation,
            due_at=row.due_at,
            conference_id=row.conference_id,
            owner_id=case.owner_id,
            met_at=met_at,
            on_time=on_time,
            met_by=met_by,
        )
    )
    log.info("statutory clock met", pack=row.pack, clock=row.clock, met_by=met_by, timers=dropped)


async def complete_clock(ctx: HandlerContext, policy: Policy) -> None:
    """Staff recorded a clock's obligation as fulfilled: met (met_by "staff"), or refused
    with the reason when the case has no such clock or it is met already."""
    request = payload_as(ctx.envelope, StatutoryClockCompletionRequested)
    case = await locked_case(ctx)
    rows = await clock_sql.lock_clocks_named(ctx.conn, case.case_id, request.pack, request.clock)
    name = f"{request.pack}/{request.clock}"
    reason = None
    if not rows:
        reason = f"no statutory clock {name} runs on this case"
    elif rows[0].status != "running":
        reason = f"the statutory clock {name} is already met"
    if reason is not None:
        await refuse(ctx, case, reason)
        return
    await _meet(ctx, case, rows[0], met_at=request.completed_at, met_by="staff")


def completion_handler(policy: Policy) -> Handler:
    async def handler(ctx: HandlerContext) -> None:
        await complete_clock(ctx, policy)

    return handler


# --- Timers ------------------------------------------------------------------------------


async def fire_due_statutory_timers(
    pool: asyncpg.Pool,
    policy: Policy,
    *,
    on_commit: Callable[[], None] | None = None,
    batch_size: int = 100,
) -> int:
    """Fire one batch of due statutory clock timers; return how many were claimed."""
    return await fire_batch(
        pool,
        claim=clock_sql.claim_due_timers,
        fire=lambda conn, timer: _fire(conn, policy, timer),
        mark=lambda conn, timer, event_id: clock_sql.mark_fired(conn, timer.id, event_id),
        on_commit=on_commit,
        batch_size=batch_size,
    )


async def _fire(
    conn: asyncpg.Connection, policy: Policy, timer: clock_sql.DueStatutoryTimer
) -> Envelope | None:
    case = await sql.lock_case(conn, timer.case_id)  # locked by the claim already
    clock = await clock_sql.lock_clock(conn, timer.clock_id)
    if case is None or clock is None or clock.status != "running":
        return None  # stale: met after the timer was planned
    payload: EventPayload
    common = {
        "reference": case.reference,
        "pack": clock.pack,
        "clock": clock.clock,
        "label": clock.label,
        "citation": clock.citation,
        "due_at": clock.due_at,
        "conference_id": clock.conference_id,
        "owner_id": case.owner_id,
    }
    if timer.kind == "due_soon":
        if clock.due_at <= utcnow():
            return None  # fired late, past the due instant: the breach speaks
        payload = StatutoryClockDueSoon.model_validate(common)
        await clock_sql.record_due_soon(conn, clock.clock_id)
    else:
        target = None
        if clock.escalate:
            owner = {case.owner_id} if case.owner_id else set()
            conflicted = await sql.conflicted_ids(conn, case.respondent_ids) | owner
            target = escalation_target(policy, team=case.team, level=1, conflicted=conflicted)
            if target is None:
                log.error("no escalation target for a breached clock", clock=clock.clock)
        payload = StatutoryClockBreached.model_validate(
            {
                **common,
                "escalated_to": (
                    Person(id=target[1].id, name=target[1].name, email=target[1].email)
                    if target
                    else None
                ),
                "escalation_level": target[0] if target else None,
            }
        )
        await clock_sql.record_breach(
            conn,
            clock.clock_id,
            escalated_to=target[1].id if target else None,
            escalation_level=target[0] if target else None,
        )
    event = make_event(
        payload,
        producer=SERVICE,
        actor=Actor(type="system", id="routing-timers"),
        case_id=case.case_id,
    )
    if case.correlation_id is not None:
        event = event.model_copy(update={"correlation_id": case.correlation_id})
    log.info("statutory clock timer fired", kind=timer.kind, pack=clock.pack, clock=clock.clock)
    return event
