"""The deadline timer loop: fires due SLA timers from routing's tables, once, across replicas.

Each tick claims due timers with `FOR UPDATE SKIP LOCKED` (timer and case rows), and in the
same transaction marks them fired, updates the clock and records the event in the outbox.
A replica that dies mid-tick rolls back: the timers stay due and another tick fires them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog
from prometheus_client import Counter, Gauge

from services.routing.adapters import sql
from services.routing.application.agreements import fire_due_agreement_timers
from services.routing.application.conferences import fire_due_conference_timers
from services.routing.application.process_timers import fire_due_process_timers
from services.routing.application.statutory_clocks import fire_due_statutory_timers
from services.routing.application.tasks import fire_due_task_timers
from services.routing.domain.policy import Policy
from services.routing.domain.sla import record_fired
from services.routing.domain.triage import escalation_target
from shared.envelope import Actor, Envelope, utcnow
from shared.events import CaseEscalated, CaseSlaBreached, CaseSlaWarning, Person, make_event
from shared.uow import PostgresUnitOfWork

# One batch of another kind of timer: claimed, fired and marked in one transaction; returns
# how many were claimed.
TimerBatch = Callable[..., Awaitable[int]]
# Besides the SLA clocks (fire_due below): task reminders and overdue escalations
# (application/tasks.py), agreed conference actions (application/conferences.py), statutory
# clocks (application/statutory_clocks.py), stage clocks and appeal windows
# (application/process_timers.py), agreement obligations and follow-up check-ins
# (application/agreements.py).
TIMER_BATCHES = (
    fire_due_task_timers,
    fire_due_conference_timers,
    fire_due_statutory_timers,
    fire_due_process_timers,
    fire_due_agreement_timers,
)

log = structlog.get_logger(__name__)
SERVICE = "routing"

SLA_TIMERS_FIRED = Counter(
    "hrcase_routing_sla_timers_fired_total",
    "SLA timers fired, by kind (warning, breach, escalation), clock and outcome (emitted: an"
    " event was published; skipped: stale, deadline past or level already announced)",
    ["kind", "clock", "outcome"],
)
SLA_TIMERS_DUE = Gauge(
    "hrcase_routing_sla_timers_due",
    "SLA timers whose time has come but that have not fired yet (a backlog: the timer loop"
    " is behind or a case is locked)",
    ["kind"],
)
SLA_TIMERS_SCHEDULED = Gauge(
    "hrcase_routing_sla_timers_scheduled", "SLA timers planned for later, not fired", ["kind"]
)


async def refresh_sla_timer_gauges(pool: asyncpg.Pool) -> None:
    """Metrics probe (shared.metrics.MetricsRefresher): timers due and scheduled by kind."""
    async with pool.acquire() as conn:
        counts = await sql.sla_timer_counts(conn)
    for kind, (due, scheduled) in counts.items():
        SLA_TIMERS_DUE.labels(kind).set(due)
        SLA_TIMERS_SCHEDULED.labels(kind).set(scheduled)


class TimerLoop:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        policy: Policy,
        on_commit: Callable[[], None] | None = None,
        interval: float = 1.0,
        batch_size: int = 100,
        extra_batches: tuple[TimerBatch, ...] = (),
    ) -> None:
        self.pool = pool
        # Batches that need more than the pool and the policy (retention: the key store).
        self.batches: tuple[TimerBatch, ...] = (*TIMER_BATCHES, *extra_batches)
        self.policy = policy
        self.on_commit = on_commit
        self.interval = interval
        self.batch_size = batch_size
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="routing-timer-loop")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=10)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                fired = await self.fire_due()
                # The other timers share the tick, each claimed, fired and marked once
                # across replicas by its own module.
                for fire_batch in self.batches:
                    fired = max(
                        fired,
                        await fire_batch(
                            self.pool,
                            self.policy,
                            on_commit=self.on_commit,
                            batch_size=self.batch_size,
                        ),
                    )
            except Exception as exc:  # database away: try again next tick
                log.warning("timer tick failed", error=repr(exc))
                fired = 0
            if fired >= self.batch_size:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)

    async def fire_due(self) -> int:
        """Fire one batch of due timers; return how many were claimed."""
        uow = PostgresUnitOfWork(self.pool, SERVICE, on_commit=self.on_commit)
        fired: list[tuple[str, str, str]] = []
        async with uow:
            timers = await sql.claim_due_timers(uow.conn, self.batch_size)
            for timer in timers:
                event = await self._fire(uow.conn, timer)
                await sql.mark_timer_fired(uow.conn, timer.id, event.event_id if event else None)
                if event:
                    await uow.emit(event)
                fired.append((timer.kind, timer.clock, "emitted" if event else "skipped"))
        # Counted once committed: a tick rolled back fires its timers again later.
        for kind, clock, outcome in fired:
            SLA_TIMERS_FIRED.labels(kind, clock, outcome).inc()
        return len(timers)

    async def _fire(self, conn: asyncpg.Connection, timer: sql.DueTimer) -> Envelope | None:
        case = await sql.lock_case(conn, timer.case_id)  # already locked by the claim
        clocks = await sql.load_clocks(conn, timer.case_id)
        clock = clocks.get(timer.clock)
        if case is None or clock is None or clock.state != "running":
            return None  # stale: the clock paused or stopped after this timer was planned
        calendar = self.policy.team_calendar(case.team)
        due = clock.due(calendar)
        assert due is not None
        payload: CaseSlaWarning | CaseSlaBreached | CaseEscalated
        level = timer.level
        if timer.kind == "warning":
            if due <= utcnow():
                # The deadline already passed (the timer fired late, or a move or resume put
                # the clock past it): "due soon" would be wrong; the breach timer speaks.
                await sql.save_clock(conn, case.case_id, record_fired(clock, "warning", 0), due)
                log.info("sla warning skipped: deadline already past", clock=timer.clock)
                return None
            payload = CaseSlaWarning(
                reference=case.reference, clock=timer.clock, due_at=due, owner_id=case.owner_id
            )
        elif timer.kind == "breach":
            payload = CaseSlaBreached(
                reference=case.reference, clock=timer.clock, due_at=due, owner_id=case.owner_id
            )
        else:
            if level <= max(clock.escalated_level, case.escalated_level):
                # One escalation per case per ladder level: the other clock (or a conflicted
                # level passing it on) announced this level already.
                clocks[timer.clock] = record_fired(clock, "escalation", level)
                await sql.save_clock(conn, case.case_id, clocks[timer.clock], due)
                return None
            owner = frozenset({case.owner_id} if case.owner_id else ())
            conflicted = await sql.conflicted_ids(conn, case.respondent_ids) | owner
            target = escalation_target(
                self.policy, team=case.team, level=level, conflicted=conflicted
            )
            if target is None:
                log.error("no escalation target left", case_id=str(case.case_id), level=level)
                clocks[timer.clock] = record_fired(clock, "escalation", level)
                await sql.save_clock(conn, case.case_id, clocks[timer.clock], due)
                await sql.update_case(conn, case.case_id, escalated_level=level)
                return None
            level, person = target
            await sql.update_case(conn, case.case_id, escalated_level=level)
            payload = CaseEscalated(
                reference=case.reference,
                level=level,
                escalated_to=Person(id=person.id, name=person.name, email=person.email),
                reason=(
                    f"{timer.clock.replace('_', ' ')} SLA breached (due {due.isoformat()});"
                    f" {case.priority} case "
                    + (f"owned by {case.owner_id}" if case.owner_id else "with no owner yet")
                ),
            )
        await sql.save_clock(conn, case.case_id, record_fired(clock, timer.kind, level), due)
        event = make_event(
            payload,
            producer=SERVICE,
            actor=Actor(type="system", id="routing-timers"),
            case_id=case.case_id,
        )
        if case.correlation_id is not None:
            # The case's own flow, so the audit trail groups the timer events with it.
            event = event.model_copy(update={"correlation_id": case.correlation_id})
        log.info("sla timer fired", kind=timer.kind, clock=timer.clock, level=level)
        return event
