"""Process timers, in routing's timer tick: stage clocks and appeal windows.

- Stage clocks (routing.case_processes): `case.stage_due_soon` at the stage's reminder,
  `case.stage_overdue` at its target, escalated to level `stage_escalation_level` of the
  case team's ladder, passed up past anyone conflicted (respondents and their managers,
  staff who declared a conflict) and the case owner, whom the event names (as a task's
  and a conference action's overdue do). A stage change clears the clock
  (adapters/process_sql.enter_stage).
- Appeal windows (routing.process_outcomes): `case.appeal_window_closed` when an approved
  outcome's window has passed, `appealed` telling whether an appeal was lodged against it.

Each batch is claimed under FOR UPDATE SKIP LOCKED and marked fired in the transaction
that records its events (application/timer_batches.fire_batch): each is announced once
across replicas.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import structlog

from services.routing.adapters import process_sql, sql
from services.routing.application.timer_batches import fire_batch
from services.routing.domain import processes as rules
from services.routing.domain.policy import Policy, StaffMember
from services.routing.domain.triage import escalation_target
from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    CaseAppealWindowClosed,
    CaseStageDueSoon,
    CaseStageOverdue,
    EventPayload,
    Person,
    make_event,
)

log = structlog.get_logger(__name__)
SERVICE = "routing"
TIMER_ACTOR = Actor(type="system", id="routing-timers")


def _person(member: StaffMember | None) -> Person | None:
    if member is None:
        return None
    return Person(id=member.id, name=member.name, email=member.email)


def _event(case: sql.CaseRow, payload: EventPayload, caused_by: Envelope | None = None) -> Envelope:
    event = make_event(
        payload, producer=SERVICE, actor=TIMER_ACTOR, case_id=case.case_id, caused_by=caused_by
    )
    if case.correlation_id is not None and caused_by is None:
        # The case's own flow, so the audit trail groups the timer events with it.
        event = event.model_copy(update={"correlation_id": case.correlation_id})
    return event


async def fire_due_process_timers(
    pool: asyncpg.Pool,
    policy: Policy,
    *,
    on_commit: Callable[[], None] | None = None,
    batch_size: int = 100,
) -> int:
    """Fire one batch of stage clocks and one of appeal windows; return the larger count
    claimed (a full batch means: tick again at once)."""
    stages = await fire_batch(
        pool,
        claim=process_sql.claim_due_stage_timers,
        fire=lambda conn, timer: _fire_stage(conn, policy, timer),
        mark=process_sql.mark_stage_timer_fired,
        on_commit=on_commit,
        batch_size=batch_size,
    )
    windows = await fire_batch(
        pool,
        claim=process_sql.claim_due_appeal_windows,
        fire=_close_window,
        mark=lambda conn, timer, event_id: process_sql.mark_appeal_window_event(
            conn, timer.outcome_id, event_id
        ),
        on_commit=on_commit,
        batch_size=batch_size,
    )
    return max(stages, windows)


async def _fire_stage(
    conn: asyncpg.Connection, policy: Policy, timer: process_sql.DueStageTimer
) -> Envelope | None:
    case = await sql.lock_case(conn, timer.case_id)  # locked by the claim already
    row = await process_sql.lock_process(conn, timer.case_id)
    if case is None or row is None or row.ended or row.stage != timer.stage:
        return None  # stale: the stage changed after the claim's snapshot
    process = policy.processes.get(row.process)
    stage = process.stage(row.stage) if process else None
    if process is None or stage is None or row.target_at is None:
        log.error("stage clock of a process no longer in the policy", process=row.process)
        return None
    owner = _person(policy.person(case.owner_id)) if case.owner_id else None
    fields = {
        "reference": case.reference,
        "process": row.process,
        "stage": row.stage,
        "label": stage.label,
        "target_at": row.target_at,
        "owner": owner,
    }
    if timer.kind == "due_soon":
        if row.target_at <= utcnow():
            return None  # fired late, past the target: the overdue timer speaks
        log.info("stage due soon", stage=row.stage)
        return _event(case, CaseStageDueSoon(**fields))
    facts = rules.facts_from(await process_sql.facts(conn, case.case_id))
    respondents = tuple(dict.fromkeys((*case.respondent_ids, *sorted(facts.respondent_ids))))
    conflicted = (
        await sql.conflicted_ids(conn, respondents)
        | await process_sql.declared_conflicts(conn, case.case_id)
        | frozenset({case.owner_id} if case.owner_id else ())
    )
    target = escalation_target(
        policy, team=case.team, level=process.stage_escalation_level, conflicted=conflicted
    )
    if target is None:
        log.error("no escalation target for an overdue stage", stage=row.stage)
    overdue = _event(
        case, CaseStageOverdue(**fields, escalated_to=_person(target[1]) if target else None)
    )
    # The overdue announcement names whom it escalates to, as a task's and a conference
    # action's do: notifications mails them once, the history and the audit show it.
    log.info("stage overdue", stage=row.stage, escalated=target is not None)
    return overdue


async def _close_window(
    conn: asyncpg.Connection, timer: process_sql.DueAppealWindow
) -> Envelope | None:
    case = await sql.lock_case(conn, timer.case_id)  # locked by the claim already
    if case is None:
        return None
    facts = await process_sql.facts(conn, case.case_id)
    appealed = any(
        f.kind == rules.APPEAL and f.data.get("outcome_id") == str(timer.outcome_id) for f in facts
    )
    await process_sql.close_appeal_window(conn, timer.outcome_id, appealed=appealed)
    log.info("appeal window closed", outcome_id=str(timer.outcome_id), appealed=appealed)
    return _event(
        case,
        CaseAppealWindowClosed(
            reference=case.reference, outcome_id=timer.outcome_id, appealed=appealed
        ),
    )
