"""Case conferences: routing decides on intake's conference requests and fires the agreed
actions' timers.

Each request handler row-locks the case (then the conference, then the action), so
replicas apply one case's events one at a time, like tasks. A refused request is answered
with `case.request_refused` naming the rule (domain/conferences.py); an accepted one with
its decision event carrying the conference as it now stands (plan, participants, who
awaits consent, the calendar SEQUENCE, the case owner). The rules come from the policy's
`conferences:` section for the case's jurisdiction (the claim's, else its team's); working
days count in the owning team's calendar.

The timer side (`fire_due_conference_timers`) claims open actions whose reminder or
overdue instant has passed, with their case, under FOR UPDATE SKIP LOCKED and marks the
timer fired in the transaction that records the event: each reminder and each overdue
escalation is announced once across replicas.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from services.routing.adapters import conference_sql, sql
from services.routing.application.requests import locked_case as _locked_case
from services.routing.application.requests import refuse as _refuse
from services.routing.application.timer_batches import fire_batch
from services.routing.domain.calendar import WorkingCalendar
from services.routing.domain.conferences import (
    OPEN_ACTION_STATUSES,
    PRACTITIONER_CONSENT,
    ConferenceRefused,
    action_due_at,
    awaiting_consent,
    changed_fields,
    check_cancel_allowed,
    check_change_allowed,
    check_hold,
    check_plan,
    conference_complete,
    normalised,
    plan_actions,
    reminder_at,
    removed_participants,
    summary_due_at,
)
from services.routing.domain.lifecycle import ENDED_STATUSES
from services.routing.domain.policy import ConferenceRules, Policy
from services.routing.domain.triage import escalation_target
from shared.consumer import HandlerContext
from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    ConferenceActionCompleted,
    ConferenceActionCompletionRequested,
    ConferenceActionDueSoon,
    ConferenceActionOverdue,
    ConferenceActionReplanned,
    ConferenceActionReplanningRequested,
    ConferenceCancellationRequested,
    ConferenceCancelled,
    ConferenceChangeRequested,
    ConferenceCompleted,
    ConferenceConsentRecorded,
    ConferenceHeld,
    ConferenceHoldRecordingRequested,
    ConferenceParticipantInvited,
    ConferencePlanned,
    ConferencePlanningRequested,
    ConferenceRescheduled,
    ConferenceSummaryRecorded,
    ConferenceSummaryRecordingRequested,
    EventPayload,
    Person,
    make_event,
    payload_as,
)

log = structlog.get_logger(__name__)
SERVICE = "routing"
NO_SUCH_CONFERENCE = "no such conference on this case"


async def _rules(
    ctx: HandlerContext, policy: Policy, case: sql.CaseRow
) -> tuple[ConferenceRules, WorkingCalendar]:
    """The case's conference rules (its jurisdiction's) and its team's calendar."""
    claim = await conference_sql.claim_jurisdiction(ctx.conn, case.case_id)
    jurisdiction = policy.jurisdiction_for(case.team, claim)
    return policy.conferences.rules_for(jurisdiction), policy.team_calendar(case.team)


def _standing(case: sql.CaseRow, conference: conference_sql.ConferenceRow) -> dict[str, Any]:
    """The fields every decision carries: the conference as it now stands."""
    return {
        "reference": case.reference,
        "conference_id": conference.conference_id,
        "plan": conference.plan,
        "participants": conference.participants,
        "awaiting_consent": conference.awaiting_consent,
        "sequence": conference.sequence,
        "owner_id": case.owner_id,
    }


async def _conference(
    ctx: HandlerContext, case: sql.CaseRow, conference_id: UUID
) -> conference_sql.ConferenceRow | None:
    conference = await conference_sql.lock_conference(ctx.conn, case.case_id, conference_id)
    if conference is None:
        await _refuse(ctx, case, NO_SUCH_CONFERENCE)
    return conference


async def plan_conference(ctx: HandlerContext, policy: Policy) -> None:
    """Accept a plan on an open case under the case's rules (participants, place, notice);
    consent-gated practitioners wait for the worker's consent."""
    request = payload_as(ctx.envelope, ConferencePlanningRequested)
    case = await _locked_case(ctx)
    if case.status in ENDED_STATUSES:
        return await _refuse(ctx, case, f"a {case.status} case cannot get a conference")
    rules, calendar = await _rules(ctx, policy, case)
    consents = await conference_sql.consents(ctx.conn, case.case_id)
    try:
        plan = check_plan(
            request.plan,
            request.participants,
            rules,
            calendar=calendar,
            requested_at=ctx.envelope.occurred_at,
            consents=consents,
        )
    except ConferenceRefused as refused:
        return await _refuse(ctx, case, str(refused))
    awaiting = awaiting_consent(request.participants, rules, consents)
    inserted = await conference_sql.insert_conference(
        ctx.conn,
        conference_id=request.conference_id,
        case_id=case.case_id,
        plan=plan,
        participants=request.participants,
        awaiting_consent=awaiting,
        planned_at=ctx.envelope.occurred_at,
        request_event_id=ctx.envelope.event_id,
    )
    if not inserted:
        log.warning("conference exists already; repeated plan ignored")
        return
    await ctx.emit(
        ConferencePlanned(
            reference=case.reference,
            conference_id=request.conference_id,
            plan=plan,
            participants=request.participants,
            awaiting_consent=awaiting,
            sequence=0,
            owner_id=case.owner_id,
            notice_working_days=rules.notice_working_days,
        )
    )
    log.info("conference planned", conference_id=str(request.conference_id), awaiting=len(awaiting))


async def change_conference(ctx: HandlerContext, policy: Policy) -> None:
    """A new plan for a planned conference: the same rules (notice only for a new date),
    the calendar SEQUENCE one up, the differing fields and removed participants named."""
    request = payload_as(ctx.envelope, ConferenceChangeRequested)
    case = await _locked_case(ctx)
    conference = await _conference(ctx, case, request.conference_id)
    if conference is None:
        return
    rules, calendar = await _rules(ctx, policy, case)
    consents = await conference_sql.consents(ctx.conn, case.case_id)
    try:
        check_change_allowed(conference.status)
        if case.status in ENDED_STATUSES:
            raise ConferenceRefused(f"a conference on a {case.status} case cannot be changed")
        new_date = normalised(request.plan).scheduled_for != conference.plan.scheduled_for
        plan = check_plan(
            request.plan,
            request.participants,
            rules,
            calendar=calendar,
            requested_at=ctx.envelope.occurred_at,
            consents=consents,
            notice=new_date,
        )
        changed = changed_fields(
            conference.plan, conference.participants, plan, request.participants
        )
        if not changed:
            raise ConferenceRefused("the change changes nothing in the plan or its participants")
    except ConferenceRefused as refused:
        return await _refuse(ctx, case, str(refused))
    awaiting = awaiting_consent(request.participants, rules, consents)
    sequence = conference.sequence + 1
    await conference_sql.replan(
        ctx.conn,
        conference.conference_id,
        plan=plan,
        participants=request.participants,
        awaiting_consent=awaiting,
        sequence=sequence,
    )
    await ctx.emit(
        ConferenceRescheduled(
            reference=case.reference,
            conference_id=conference.conference_id,
            plan=plan,
            participants=request.participants,
            awaiting_consent=awaiting,
            sequence=sequence,
            owner_id=case.owner_id,
            changed=changed,
            reason=request.reason,
            removed_participants=removed_participants(
                conference.participants, request.participants
            ),
        )
    )
    log.info("conference rescheduled", changed=changed, sequence=sequence)


async def cancel_conference(ctx: HandlerContext, policy: Policy) -> None:
    request = payload_as(ctx.envelope, ConferenceCancellationRequested)
    case = await _locked_case(ctx)
    conference = await _conference(ctx, case, request.conference_id)
    if conference is None:
        return
    try:
        check_cancel_allowed(conference.status)
    except ConferenceRefused as refused:
        return await _refuse(ctx, case, str(refused))
    await conference_sql.cancel(
        ctx.conn, conference.conference_id, at=ctx.envelope.occurred_at, reason=request.reason
    )
    await ctx.emit(ConferenceCancelled(**_standing(case, conference), reason=request.reason))
    log.info("conference cancelled", conference_id=str(conference.conference_id))


async def hold_conference(ctx: HandlerContext, policy: Policy) -> None:
    """Record that a planned conference took place; the summary falls due
    `summary_within_working_days` working days after the day it was held."""
    request = payload_as(ctx.envelope, ConferenceHoldRecordingRequested)
    case = await _locked_case(ctx)
    conference = await _conference(ctx, case, request.conference_id)
    if conference is None:
        return
    rules, calendar = await _rules(ctx, policy, case)
    try:
        check_hold(
            conference.status,
            conference.participants,
            request.attendance,
            held_at=request.held_at,
            requested_at=ctx.envelope.occurred_at,
            planned_at=conference.planned_at,
            scheduled_for=conference.plan.scheduled_for,
            time_zone=conference.plan.time_zone,
            early_minutes=policy.conferences.hold_early_minutes,
            mode=conference.plan.mode,
        )
    except ConferenceRefused as refused:
        return await _refuse(ctx, case, str(refused))
    due = summary_due_at(calendar, request.held_at, rules.summary_within_working_days)
    await conference_sql.hold(
        ctx.conn,
        conference.conference_id,
        held_at=request.held_at,
        attendance=request.attendance,
        summary_due_at=due,
    )
    await ctx.emit(
        ConferenceHeld(
            reference=case.reference,
            conference_id=conference.conference_id,
            held_at=request.held_at,
            attendance=request.attendance,
            summary_due_at=due,
        )
    )
    log.info("conference held", conference_id=str(conference.conference_id))


_SUMMARY_NOT_NOW = {
    "planned": "record the conference as held before its summary",
    "cancelled": "a cancelled conference has no summary",
    "summarised": "the summary was recorded already",
    "completed": "the summary was recorded already",
}


async def record_summary(ctx: HandlerContext, policy: Policy) -> None:
    """The written summary of a held conference, once: its agreed actions are tracked
    (reminder, overdue); with none the conference is complete at once."""
    request = payload_as(ctx.envelope, ConferenceSummaryRecordingRequested)
    case = await _locked_case(ctx)
    conference = await _conference(ctx, case, request.conference_id)
    if conference is None:
        return
    now = ctx.envelope.occurred_at
    calendar = policy.team_calendar(case.team)
    known = {p.participant_id for p in conference.participants}
    try:
        if conference.status != "held":
            raise ConferenceRefused(_SUMMARY_NOT_NOW.get(conference.status, conference.status))
        if any(o.participant_id not in known for o in request.objections if o.participant_id):
            raise ConferenceRefused("an objection names someone who is not a participant")
        actions = plan_actions(
            request.actions,
            conference.participants,
            policy.person,
            calendar=calendar,
            due_soon_share=policy.conferences.action_due_soon_share,
            now=now,
        )
    except ConferenceRefused as refused:
        return await _refuse(ctx, case, str(refused))
    assert conference.summary_due_at is not None  # set when it was held
    summary = {
        "agreed_points": request.agreed_points,
        "objections": [o.model_dump(mode="json") for o in request.objections],
    }
    await conference_sql.summarise(
        ctx.conn,
        conference.conference_id,
        summary=summary,
        at=now,
        actions=actions,
        case_id=case.case_id,
    )
    await ctx.emit(
        ConferenceSummaryRecorded(
            **_standing(case, conference),
            agreed_points=request.agreed_points,
            actions=actions,
            objections=request.objections,
            summary_due_at=conference.summary_due_at,
            on_time=now <= conference.summary_due_at,
        )
    )
    log.info("conference summary recorded", actions=len(actions))
    await _complete_if_done(ctx, case, conference.conference_id)


async def _complete_if_done(ctx: HandlerContext, case: sql.CaseRow, conference_id: UUID) -> None:
    counts = await conference_sql.action_counts(ctx.conn, conference_id)
    if not conference_complete(counts):
        return
    await conference_sql.complete(ctx.conn, conference_id, at=ctx.envelope.occurred_at)
    await ctx.emit(
        ConferenceCompleted(
            reference=case.reference,
            conference_id=conference_id,
            actions_completed=counts.get("done", 0),
            actions_replanned=counts.get("ended", 0),
        )
    )
    log.info("conference completed", conference_id=str(conference_id))


async def _open_action(
    ctx: HandlerContext, case: sql.CaseRow, conference_id: UUID, action_id: UUID
) -> conference_sql.ActionRow | None:
    """The open action of a summarised conference, or None after telling the requester."""
    conference = await _conference(ctx, case, conference_id)
    if conference is None:
        return None
    action = await conference_sql.lock_action(ctx.conn, conference_id, action_id)
    if action is None:
        await _refuse(ctx, case, "no such action on this conference")
        return None
    if action.status not in OPEN_ACTION_STATUSES:
        await _refuse(ctx, case, f"the action is already {action.status}")
        return None
    return action


def _action_fields(case: sql.CaseRow, action: conference_sql.ActionRow) -> dict[str, Any]:
    return {
        "reference": case.reference,
        "conference_id": action.conference_id,
        "action_id": action.action_id,
        "description": action.description,
        "owner_name": action.owner_name,
        "owner_email": action.owner_email,
        "due_at": action.due_at,
        "owner_id": case.owner_id,
    }


async def complete_action(ctx: HandlerContext, policy: Policy) -> None:
    request = payload_as(ctx.envelope, ConferenceActionCompletionRequested)
    case = await _locked_case(ctx)
    action = await _open_action(ctx, case, request.conference_id, request.action_id)
    if action is None:
        return
    at = ctx.envelope.occurred_at
    await conference_sql.end_action(
        ctx.conn, action.action_id, status="done", at=at, note=request.note
    )
    await ctx.emit(
        ConferenceActionCompleted(
            **_action_fields(case, action), note=request.note, on_time=at <= action.due_at
        )
    )
    await _complete_if_done(ctx, case, action.conference_id)


async def replan_action(ctx: HandlerContext, policy: Policy) -> None:
    """A new due date keeps the action tracked (timers from the new date); none carries it
    out of the conference (ended)."""
    request = payload_as(ctx.envelope, ConferenceActionReplanningRequested)
    case = await _locked_case(ctx)
    action = await _open_action(ctx, case, request.conference_id, request.action_id)
    if action is None:
        return
    at = ctx.envelope.occurred_at
    if request.due_on is None:
        await conference_sql.end_action(
            ctx.conn, action.action_id, status="ended", at=at, note=request.reason
        )
        await ctx.emit(
            ConferenceActionReplanned(
                **_action_fields(case, action), reason=request.reason, ended=True
            )
        )
        await _complete_if_done(ctx, case, action.conference_id)
        return
    calendar = policy.team_calendar(case.team)
    due = action_due_at(calendar, request.due_on)
    if due <= at:
        return await _refuse(ctx, case, f"due_on {request.due_on.isoformat()} has already ended")
    reminder = reminder_at(calendar, policy.conferences.action_due_soon_share, start=at, due=due)
    await conference_sql.redate_action(
        ctx.conn, action.action_id, due_on=request.due_on, due_at=due, due_soon_at=reminder
    )
    fields = {**_action_fields(case, action), "due_at": due}
    await ctx.emit(ConferenceActionReplanned(**fields, reason=request.reason, ended=False))


async def record_consent(ctx: HandlerContext, policy: Policy) -> None:
    """Record a consent (or its withdrawal). The worker's practitioner_involvement consent
    invites every practitioner waiting on a planned conference of the case; a withdrawal
    holds practitioners back on plans made (or changed) from now on."""
    consent = payload_as(ctx.envelope, ConferenceConsentRecorded)
    case = await _locked_case(ctx)
    if not await conference_sql.record_consent(
        ctx.conn, case.case_id, consent, ctx.envelope.event_id
    ):
        return
    consents = await conference_sql.consents(ctx.conn, case.case_id)
    if consent.consent != PRACTITIONER_CONSENT or not consents.practitioners_may_join:
        log.info("consent recorded", consent=consent.consent, granted=consent.granted)
        return
    invited = 0
    for conference in await conference_sql.lock_waiting_conferences(ctx.conn, case.case_id):
        waiting = list(conference.awaiting_consent)
        for participant_id in conference.awaiting_consent:
            waiting.remove(participant_id)
            standing = {**_standing(case, conference), "awaiting_consent": list(waiting)}
            await ctx.emit(ConferenceParticipantInvited(**standing, participant_id=participant_id))
            invited += 1
        await conference_sql.set_awaiting(ctx.conn, conference.conference_id, [])
    log.info("consent recorded", consent=consent.consent, invited=invited)


# --- Timers ------------------------------------------------------------------------------


async def fire_due_conference_timers(
    pool: asyncpg.Pool,
    policy: Policy,
    *,
    on_commit: Callable[[], None] | None = None,
    batch_size: int = 100,
) -> int:
    """Fire one batch of due action reminders and overdue escalations; return how many
    were claimed."""
    return await fire_batch(
        pool,
        claim=conference_sql.claim_due_action_timers,
        fire=lambda conn, timer: _fire(conn, policy, timer),
        mark=lambda conn, timer, event_id: conference_sql.mark_action_timer_fired(
            conn, timer.action_id, timer.kind, event_id
        ),
        on_commit=on_commit,
        batch_size=batch_size,
    )


async def _fire(
    conn: asyncpg.Connection, policy: Policy, timer: conference_sql.DueActionTimer
) -> Envelope | None:
    case = await sql.lock_case(conn, timer.case_id)  # locked by the claim already
    action = await conference_sql.lock_action_by_id(conn, timer.action_id)
    if case is None or action is None or action.status not in OPEN_ACTION_STATUSES:
        return None  # stale: ended after the claim's snapshot
    payload: EventPayload
    if timer.kind == "due_soon":
        if action.due_at <= utcnow():
            return None  # fired late, past the due instant: the overdue timer speaks
        payload = ConferenceActionDueSoon(**_action_fields(case, action))
    else:
        payload = await _overdue(conn, policy, case, action)
    event = make_event(
        payload,
        producer=SERVICE,
        actor=Actor(type="system", id="routing-timers"),
        case_id=case.case_id,
    )
    if case.correlation_id is not None:
        event = event.model_copy(update={"correlation_id": case.correlation_id})
    log.info("conference action timer fired", kind=timer.kind, action_id=str(action.action_id))
    return event


async def _overdue(
    conn: asyncpg.Connection, policy: Policy, case: sql.CaseRow, action: conference_sql.ActionRow
) -> ConferenceActionOverdue:
    """The overdue announcement with its escalation target: the ladder level the policy
    names, passed up past anyone conflicted (respondents, their managers) or the staff
    member who owns the action."""
    conflicted = await sql.conflicted_ids(conn, case.respondent_ids)
    if action.owner_staff_id is not None:
        conflicted |= {action.owner_staff_id}
    target = escalation_target(
        policy,
        team=case.team,
        level=policy.conferences.action_escalation_level,
        conflicted=conflicted,
    )
    if target is None:
        log.error("no escalation target for an overdue action", action_id=str(action.action_id))
    return ConferenceActionOverdue(
        **_action_fields(case, action),
        escalated_to=(
            Person(id=target[1].id, name=target[1].name, email=target[1].email) if target else None
        ),
        escalation_level=target[0] if target else None,
    )
