"""Routing's event handlers: thin glue between the bus, the triage rules and the tables.

Every handler that touches an existing case first row-locks it (`sql.lock_case`), so two
replicas apply one case's events one after the other; an event for a case not routed yet
fails with `CaseNotRoutedYet` and the consumer retries it until `case.submitted` lands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Literal
from uuid import UUID

import structlog

from services.routing.adapters import case_facts, sql
from services.routing.application import (
    agreements,
    conferences,
    process_facts,
    processes,
    retention,
    statutory_clocks,
    tasks,
)
from services.routing.application.erasure import on_data_subject_erased
from services.routing.application.requests import locked_case as _locked_case
from services.routing.application.requests import refuse as _refuse
from services.routing.application.respondents import (
    announce_respondents,
    record_injury_facts,
    require_conference,
    resolve_respondents,
)
from services.routing.application.scheduling import save_clocks
from services.routing.domain import lifecycle
from services.routing.domain.calendar import WorkingCalendar
from services.routing.domain.lifecycle import (
    ENDED_STATUSES,
    StatusMoveRefused,
    next_status,
    reply_to_ended_case,
)
from services.routing.domain.policy import Policy, StaffMember
from services.routing.domain.sla import (
    CLOCKS,
    Clock,
    ClockName,
    apply_status,
    first_response_given,
    rebase,
    resume_on_reply,
    retarget,
    start_clock,
)
from services.routing.domain.triage import (
    NoEligibleOwner,
    choose_owner,
    classify,
    prioritise,
    urgency_raises,
)
from shared.consumer import Handler, HandlerContext
from shared.envelope import utcnow
from shared.errors import PermanentError
from shared.events import (
    CaseAssigned,
    CaseAssignmentNeeded,
    CaseAssignmentRequested,
    CaseFollowUpCaseRequested,
    CaseMessageReceived,
    CaseRecategorisationRequested,
    CaseReopened,
    CaseRespondentResolutionRequested,
    CaseRespondentsResolved,
    CaseRouted,
    CaseStatusChanged,
    CaseStatusChangeRequested,
    CaseSubmitted,
    DirectoryEmployeeUpdated,
    Person,
    Priority,
    payload_as,
)

log = structlog.get_logger(__name__)


def _case_id(ctx: HandlerContext) -> UUID:
    if ctx.envelope.case_id is None:
        raise PermanentError(f"{ctx.envelope.event_type} without case_id")
    return ctx.envelope.case_id


def _person(member: StaffMember) -> Person:
    return Person(id=member.id, name=member.name, email=member.email)


def _encode_raises(raises: tuple[tuple[Priority, str], ...]) -> tuple[str, ...]:
    return tuple(f"{level}|{why}" for level, why in raises)


def _decode_raises(encoded: tuple[str, ...]) -> tuple[tuple[Priority, str], ...]:
    pairs = (item.split("|", 1) for item in encoded)
    return tuple((level, why) for level, why in pairs)  # type: ignore[misc]


async def _cursor(ctx: HandlerContext, policy: Policy, team: str) -> int:
    """Round robin needs the team's shared cursor (a row lock held to commit, which
    serialises that team's assignments across replicas); the other strategies only use it
    to break ties, and a per-case number spreads those just as well without the lock."""
    if policy.teams[team].strategy == "round_robin":
        return await sql.take_round_robin_cursor(ctx.conn, team)
    return _case_id(ctx).int % 1_000_003


async def _pick_owner(
    ctx: HandlerContext, policy: Policy, *, team: str, category: str, conflicted: frozenset[str]
) -> tuple[str, StaffMember] | None:
    """The case's team and owner; the fallback team when everyone in it is conflicted out;
    None when nobody in either is eligible (a person must decide: NO_ELIGIBLE_OWNER)."""
    for candidate in dict.fromkeys((team, policy.conflict_fallback_team)):
        members = [m.id for m in policy.teams[candidate].members]
        # A member the directory marks inactive is passed over like a conflicted one.
        unavailable = conflicted | await sql.inactive_ids(ctx.conn, members)
        try:
            owner = choose_owner(
                policy,
                team=candidate,
                category=category,
                conflicted=unavailable,
                open_cases=(
                    {}
                    if policy.teams[candidate].strategy == "round_robin"
                    else await sql.open_case_counts(ctx.conn, members)
                ),
                cursor=await _cursor(ctx, policy, candidate),
            )
        except NoEligibleOwner:
            log.warning("no eligible owner in team", team=candidate)
            continue
        return candidate, owner
    return None


# Says what happened, never who the respondents are (the reason reaches staff mail).
NO_ELIGIBLE_OWNER = (
    "no eligible owner: every candidate in the case's team and the conflict fallback team"
    " is conflicted out or unavailable; an HR manager must assign a person"
)


async def route_submitted_case(ctx: HandlerContext, policy: Policy) -> None:
    """Triage a new case, start its SLA clocks, assign an owner, and announce all of it."""
    submitted = payload_as(ctx.envelope, CaseSubmitted)
    case_id = _case_id(ctx)
    text = f"{submitted.subject}\n{submitted.description}"
    classification = classify(policy, text=text, requested=submitted.category)
    raises = urgency_raises(
        policy,
        text=text,
        channel=submitted.channel,
        reporter_urgent=submitted.urgent,
        injury=submitted.injury,
    )
    prioritisation = prioritise(policy, category=classification.category, raises=raises)
    respondents = await resolve_respondents(ctx, policy, submitted)
    conflicted = await sql.conflicted_ids(ctx.conn, respondents.conflict_ids)
    category_team = policy.categories[classification.category].team
    picked = await _pick_owner(
        ctx, policy, team=category_team, category=classification.category, conflicted=conflicted
    )
    # Nobody eligible: routed, unowned, and a person is asked to assign (not a dead letter).
    team, owner = picked if picked is not None else (category_team, None)
    calendar = policy.team_calendar(team)
    clocks: dict[ClockName, Clock] = {
        name: start_clock(
            name, policy.sla_hours(prioritisation.priority, name), submitted.submitted_at
        )
        for name in CLOCKS
    }
    first_response_due = clocks["first_response"].due(calendar)
    resolution_due = clocks["resolution"].due(calendar)
    assert first_response_due is not None and resolution_due is not None  # just started
    routed = sql.RoutedCase(
        case_id=case_id,
        reference=submitted.reference,
        channel=submitted.channel,
        category=classification.category,
        category_source=classification.source,
        matched_terms=classification.matched_terms,
        sensitivity=classification.sensitivity,
        priority=prioritisation.priority,
        team=team,
        owner_id=owner.id if owner is not None else None,
        status="assigned" if owner is not None else "routed",
        submitted_at=submitted.submitted_at,
        routed_at=utcnow(),
        first_response_due=first_response_due,
        resolution_due=resolution_due,
        policy_hash=policy.source_hash,
        priority_reasons=prioritisation.reasons,
        priority_raises=_encode_raises(raises),
        respondent_ids=respondents.conflict_ids,
        correlation_id=ctx.envelope.correlation_id,
    )
    if not await sql.insert_case(ctx.conn, routed):
        # Same case submitted under a second event id: routing it again would double-assign.
        log.warning("case already routed; ignoring repeated submission")
        return
    await save_clocks(ctx.conn, policy, case_id=case_id, team=team, clocks=clocks)
    await retention.record_submitted_subjects(ctx, submitted)
    await announce_respondents(ctx, case_id, routed.reference, respondents)
    await ctx.emit(
        CaseRouted(
            reference=routed.reference,
            category=routed.category,
            category_source=classification.source,
            matched_terms=list(routed.matched_terms),
            sensitivity=classification.sensitivity,
            priority=prioritisation.priority,
            priority_reasons=list(prioritisation.reasons),
            first_response_due=first_response_due,
            resolution_due=resolution_due,
            policy_hash=policy.source_hash,
        )
    )
    if owner is not None:
        await ctx.emit(
            CaseAssigned(
                reference=routed.reference,
                team=team,
                owner=_person(owner),
                strategy=policy.teams[team].strategy,
                priority=prioritisation.priority,
                sensitivity=classification.sensitivity,
                category=routed.category,
                first_response_due=first_response_due,
            )
        )
    else:
        await ctx.emit(
            CaseAssignmentNeeded(
                reference=routed.reference,
                team=team,
                reason=NO_ELIGIBLE_OWNER,
                priority=prioritisation.priority,
                sensitivity=classification.sensitivity,
                first_response_due=first_response_due,
                notify=[_person(s) for s in policy.staff if s.id not in conflicted],
            )
        )
    await ctx.emit(
        CaseStatusChanged(
            reference=routed.reference,
            from_status="new",
            to_status=routed.status,
            reason="routed" if owner is not None else "assignment needed",
        )
    )
    conference = await require_conference(
        ctx,
        policy,
        case_id=case_id,
        reference=routed.reference,
        team=team,
        injury=submitted.injury,
        since=submitted.submitted_at,
        already_required=False,
    )
    # The category's process and its first stage (application/processes.py).
    await processes.start_default_process(
        ctx,
        policy,
        case_id,
        reference=routed.reference,
        category=routed.category,
        team=team,
        owner_id=routed.owner_id,
        at=submitted.submitted_at,
        reporter_employee_id=submitted.reporter.employee_id if submitted.reporter else None,
    )
    log.info(
        "case routed",
        category=routed.category,
        priority=routed.priority,
        p1=prioritisation.p1,
        team=team,
        owner_id=owner.id if owner is not None else None,
        conference=conference,
    )


async def recategorise_case(ctx: HandlerContext, policy: Policy) -> None:
    """A person corrected the category: priority, SLA targets and (if the team changes) owner."""
    request = payload_as(ctx.envelope, CaseRecategorisationRequested)
    case = await _locked_case(ctx)
    if request.category not in policy.categories:
        return await _refuse(ctx, case, f"unknown category {request.category!r}")
    if case.status == "closed":
        return await _refuse(ctx, case, "a closed case cannot be re-categorised")
    category = policy.categories[request.category]
    prioritisation = prioritise(
        policy, category=request.category, raises=_decode_raises(case.priority_raises)
    )
    who = ctx.envelope.actor.id or ctx.envelope.actor.type
    reasons = (
        f"re-categorised from {case.category} to {request.category} by {who}: {request.reason}",
        *prioritisation.reasons,
    )
    team, owner_id = case.team, case.owner_id
    new_owner: StaffMember | None = None
    if category.team != case.team:
        conflicted = await sql.conflicted_ids(ctx.conn, case.respondent_ids)
        picked = await _pick_owner(
            ctx, policy, team=category.team, category=request.category, conflicted=conflicted
        )
        if picked is None:  # the case keeps its owner; the requester learns why
            return await _refuse(
                ctx, case, f"cannot move to {request.category}: {NO_ELIGIBLE_OWNER}"
            )
        team, new_owner = picked
        owner_id = new_owner.id
    now = ctx.envelope.occurred_at
    # Working time used so far is measured in the calendar it ran in (the old team's);
    # from `now` on the clocks run in the new team's calendar.
    old_calendar = policy.team_calendar(case.team)
    calendar = policy.team_calendar(team)
    clocks = {
        name: retarget(
            clock,
            old_calendar,
            policy.sla_hours(prioritisation.priority, name),
            at=now,
            warn_at=policy.sla.warn_at,
        )
        for name, clock in (await sql.load_clocks(ctx.conn, case.case_id)).items()
    }
    first_due, resolution_due = _dues(clocks, calendar, fallback=now, announced=case)
    await save_clocks(ctx.conn, policy, case_id=case.case_id, team=team, clocks=clocks)
    await sql.update_case(
        ctx.conn,
        case.case_id,
        category=request.category,
        category_source="reporter",
        matched_terms=(),
        sensitivity=category.sensitivity,
        priority=prioritisation.priority,
        priority_reasons=reasons,
        team=team,
        owner_id=owner_id,
        first_response_due=first_due,
        resolution_due=resolution_due,
        policy_hash=policy.source_hash,
    )
    await ctx.emit(
        CaseRouted(
            reference=case.reference,
            category=request.category,
            category_source="reporter",
            matched_terms=[],
            sensitivity=category.sensitivity,
            priority=prioritisation.priority,
            priority_reasons=list(reasons),
            first_response_due=first_due,
            resolution_due=resolution_due,
            policy_hash=policy.source_hash,
        )
    )
    if new_owner is not None:
        await sql.record_assignment(
            ctx.conn,
            case.case_id,
            owner_id=new_owner.id,
            previous_owner_id=case.owner_id,
            reason=f"re-categorised to {request.category}",
            event_id=ctx.envelope.event_id,
        )
        await ctx.emit(
            CaseAssigned(
                reference=case.reference,
                team=team,
                owner=_person(new_owner),
                strategy=policy.teams[team].strategy,
                priority=prioritisation.priority,
                sensitivity=category.sensitivity,
                category=request.category,
                first_response_due=first_due,
                previous_owner_id=case.owner_id,
            )
        )
        await _owned_at_last(ctx, case, reason=f"re-categorised to {request.category}")
    log.info("case re-categorised", category=request.category, priority=prioritisation.priority)


async def _owned_at_last(ctx: HandlerContext, case: sql.CaseRow, *, reason: str) -> None:
    """A case that waited for a person (case.assignment_needed) has just got an owner:
    it moves routed -> assigned (call after its case.assigned)."""
    if case.owner_id is not None or case.status != "routed":
        return
    await sql.update_case(
        ctx.conn, case.case_id, status="assigned", status_changed_at=ctx.envelope.occurred_at
    )
    await ctx.emit(
        CaseStatusChanged(
            reference=case.reference, from_status="routed", to_status="assigned", reason=reason
        )
    )


def _dues(
    clocks: dict[ClockName, Clock],
    calendar: WorkingCalendar,
    *,
    fallback: datetime,
    announced: sql.CaseRow,
) -> tuple[datetime, datetime]:
    """Due dates to announce: a running clock's deadline; a paused one shows when it would
    fall due if it ran again now; a stopped one (a met first response, a resolved case)
    keeps the deadline announced before, which is history and never rewritten."""
    previous = {
        "first_response": announced.first_response_due,
        "resolution": announced.resolution_due,
    }
    dues = []
    for name in CLOCKS:
        clock = clocks[name]
        if clock.state == "stopped":
            due = previous[name] or fallback
        else:
            due = clock.due(calendar) or clock.resume(fallback).due(calendar) or fallback
        dues.append(due)
    return dues[0], dues[1]


async def assign_by_hand(ctx: HandlerContext, policy: Policy) -> None:
    """An HR manager assigns or reassigns; a conflicted person is refused (with the reason)."""
    request = payload_as(ctx.envelope, CaseAssignmentRequested)
    case = await _locked_case(ctx)
    if case.status == "closed":
        return await _refuse(ctx, case, "a closed case cannot be assigned")
    person = policy.person(request.owner_id)
    if person is None:
        return await _refuse(
            ctx, case, f"{request.owner_id!r} is not HR staff in the routing policy"
        )
    conflicted = await sql.conflicted_ids(ctx.conn, case.respondent_ids)
    if person.id in conflicted:
        return await _refuse(
            ctx,
            case,
            f"conflict of interest: {person.id} is a respondent or in a respondent's"
            " management chain",
        )
    if person.id == case.owner_id:
        log.info("assignment request names the current owner; nothing to do")
        return
    team = next((t for t, spec in policy.teams.items() if person in spec.members), case.team)
    await _hand_over(ctx, policy, case, person, team=team, strategy="manual", reason=request.reason)
    await _owned_at_last(ctx, case, reason="assigned by hand")
    log.info("case reassigned", owner_id=person.id, previous_owner_id=case.owner_id)


async def _hand_over(
    ctx: HandlerContext,
    policy: Policy,
    case: sql.CaseRow,
    person: StaffMember,
    *,
    team: str,
    strategy: str,
    reason: str,
) -> None:
    """Make `person` the owner in `team`: recorded, the clocks moved into the new team's
    calendar, announced as case.assigned with the previous owner."""
    await sql.update_case(ctx.conn, case.case_id, owner_id=person.id, team=team)
    await sql.record_assignment(
        ctx.conn,
        case.case_id,
        owner_id=person.id,
        previous_owner_id=case.owner_id,
        reason=reason,
        event_id=ctx.envelope.event_id,
    )
    clocks = await sql.load_clocks(ctx.conn, case.case_id)
    if team != case.team:
        # The new team's calendar runs the clocks from now; the time used so far counts
        # as measured in the old team's calendar.
        old_calendar = policy.team_calendar(case.team)
        clocks = {
            name: rebase(clock, old_calendar, ctx.envelope.occurred_at)
            for name, clock in clocks.items()
        }
        await save_clocks(ctx.conn, policy, case_id=case.case_id, team=team, clocks=clocks)
    first_due, _ = _dues(
        clocks, policy.team_calendar(team), fallback=ctx.envelope.occurred_at, announced=case
    )
    await ctx.emit(
        CaseAssigned(
            reference=case.reference,
            team=team,
            owner=_person(person),
            strategy=strategy,
            priority=case.priority,
            sensitivity=case.sensitivity,
            category=case.category,
            first_response_due=first_due,
            previous_owner_id=case.owner_id,
        )
    )


async def resolve_respondent_by_hand(ctx: HandlerContext, policy: Policy) -> None:
    """A person says which employee a flagged respondent is. Routing checks the id against
    its directory (and the policy's HR staff), records it, announces the respondents' new
    state, and applies the conflict-of-interest rule late: an owner who is now the
    respondent or in their management chain loses the case to an eligible colleague (SLA
    escalations read the case's respondents when they fire, so they follow by themselves)."""
    request = payload_as(ctx.envelope, CaseRespondentResolutionRequested)
    case = await _locked_case(ctx)
    if case.status == "closed":
        return await _refuse(ctx, case, "a closed case's respondents cannot be resolved")
    row = await case_facts.lock_respondent(ctx.conn, case.case_id, request.position)
    if row is None:
        return await _refuse(ctx, case, f"the case names no respondent at {request.position}")
    if row["employee_id"] is not None:
        return await _refuse(
            ctx, case, f"respondent {request.position} is already resolved to {row['employee_id']}"
        )
    employee_id = request.employee_id
    if policy.person(employee_id) is None and not await case_facts.employee_known(
        ctx.conn, employee_id
    ):
        return await _refuse(ctx, case, f"no employee {employee_id!r} in the directory")
    at = ctx.envelope.occurred_at
    await case_facts.resolve_by_person(
        ctx.conn,
        case.case_id,
        request.position,
        employee_id=employee_id,
        resolved_by=ctx.envelope.actor.id,
        at=at,
        reason=request.reason,
    )
    respondent_ids = tuple(dict.fromkeys((*case.respondent_ids, employee_id)))
    await sql.update_case(ctx.conn, case.case_id, respondent_ids=respondent_ids)
    current = await case_facts.resolutions(ctx.conn, case.case_id)
    await ctx.emit(
        CaseRespondentsResolved(
            reference=case.reference,
            respondents=current,
            resolved_employee_ids=sorted({r.employee_id for r in current if r.employee_id}),
            unresolved=sum(1 for r in current if r.employee_id is None),
        )
    )
    conflicted = await sql.conflicted_ids(ctx.conn, respondent_ids)
    if case.owner_id is None or case.owner_id not in conflicted:
        log.info("respondent resolved by a person", position=request.position)
        return
    # Conflict of interest, applied late: the owner must not keep the case.
    reason = "conflict of interest: the owner is a respondent or in a respondent's chain"
    picked = await _pick_owner(
        ctx, policy, team=case.team, category=case.category, conflicted=conflicted
    )
    if picked is None:
        # Nobody eligible: a person must assign (the owner stays until they do).
        first_due, _ = _dues(
            await sql.load_clocks(ctx.conn, case.case_id),
            policy.team_calendar(case.team),
            fallback=at,
            announced=case,
        )
        await ctx.emit(
            CaseAssignmentNeeded(
                reference=case.reference,
                team=case.team,
                reason=f"{reason}; {NO_ELIGIBLE_OWNER}",
                priority=case.priority,
                sensitivity=case.sensitivity,
                first_response_due=first_due,
                notify=[_person(s) for s in policy.staff if s.id not in conflicted],
            )
        )
        log.warning("conflicted owner kept: nobody eligible to take the case")
        return
    team, owner = picked
    await _hand_over(
        ctx, policy, case, owner, team=team, strategy=policy.teams[team].strategy, reason=reason
    )
    log.info("case reassigned away from a conflicted owner", owner_id=owner.id)


async def _move(
    ctx: HandlerContext,
    policy: Policy,
    case: sql.CaseRow,
    *,
    to_status: str,
    clocks: dict[ClockName, Clock],
    reason: str | None,
) -> None:
    await save_clocks(ctx.conn, policy, case_id=case.case_id, team=case.team, clocks=clocks)
    await sql.update_case(
        ctx.conn, case.case_id, status=to_status, status_changed_at=ctx.envelope.occurred_at
    )
    # Retention: armed at closure, cancelled by a reopening (application/retention.py).
    await retention.on_status_moved(
        ctx.conn, policy, case, to_status=to_status, at=ctx.envelope.occurred_at
    )
    await ctx.emit(
        CaseStatusChanged(
            reference=case.reference, from_status=case.status, to_status=to_status, reason=reason
        )
    )


def _is_stale(ctx: HandlerContext, case: sql.CaseRow) -> bool:
    """An older request applied after a newer one (competing replicas): the newer one stands."""
    return lifecycle.is_stale(ctx.envelope.occurred_at, case.status_changed_at)


async def change_status(ctx: HandlerContext, policy: Policy) -> None:
    """An agent moves the case; waiting_on_employee pauses the clocks, resolved stops them."""
    request = payload_as(ctx.envelope, CaseStatusChangeRequested)
    case = await _locked_case(ctx)
    if _is_stale(ctx, case):
        # Replicas may apply a case's requests out of arrival order; a request older than
        # the case's last change is never applied after it, and the requester is told.
        return await _refuse(
            ctx, case, f"superseded: the case changed to {case.status} after this request"
        )
    if lifecycle.waits_on_a_reply_already_given(
        request.to_status, ctx.envelope.occurred_at, case.employee_replied_at
    ):
        return await _refuse(
            ctx, case, "superseded: the employee replied after this request was made"
        )
    try:
        to_status = next_status(case.status, request.to_status)
    except StatusMoveRefused as exc:
        return await _refuse(ctx, case, str(exc))
    at = ctx.envelope.occurred_at
    clocks = apply_status(
        await sql.load_clocks(ctx.conn, case.case_id),
        policy.team_calendar(case.team),
        to_status=to_status,
        at=at,
    )
    reason = request.reason or ("reopened" if request.to_status == "reopened" else None)
    await _move(ctx, policy, case, to_status=to_status, clocks=clocks, reason=reason)
    if to_status == "closed":  # resolved keeps its tasks: it may still be reopened to work on
        await tasks.cancel_open_tasks(ctx, case, reason=tasks.CASE_CLOSED)
    if request.to_status == "reopened":
        await _announce_reopened(ctx, policy, case, clocks, trigger="staff_request", at=at)


async def _announce_reopened(
    ctx: HandlerContext,
    policy: Policy,
    case: sql.CaseRow,
    clocks: dict[ClockName, Clock],
    *,
    trigger: Literal["reporter_reply", "staff_request"],
    at: datetime,
) -> None:
    """Tell the owner (through notifications) that a case they own is open again."""
    resolution = clocks.get("resolution")
    await ctx.emit(
        CaseReopened(
            reference=case.reference,
            owner_id=case.owner_id,
            trigger=trigger,
            closed_at=case.status_changed_at,
            reopened_at=at,
            resolution_due=resolution.due(policy.team_calendar(case.team)) if resolution else None,
        )
    )


async def _reply_to_ended_case(
    ctx: HandlerContext, policy: Policy, case: sql.CaseRow, message: CaseMessageReceived
) -> None:
    """The reporter wrote to a resolved or closed case: never silent (the policy decides).

    Within `reopen_within_days` of the closure the case reopens (in_progress, resolution
    clock running again, owner told); later, intake is asked to open a new case linked to
    this one, with the message as its description. An anonymous reporter can reach only
    the reference they hold, so their reply always reopens that case.
    """
    at = message.received_at
    closed_at = case.status_changed_at
    outcome = reply_to_ended_case(
        status=case.status,
        sender_role=message.sender_role,
        closed_at=closed_at,
        received_at=at,
        reopen_within_days=policy.reopen_within_days,
    )
    if outcome == "none":
        return
    if outcome == "reopen":
        clocks = apply_status(
            await sql.load_clocks(ctx.conn, case.case_id),
            policy.team_calendar(case.team),
            to_status="in_progress",
            at=at,
        )
        await _move(
            ctx,
            policy,
            case,
            to_status="in_progress",
            clocks=clocks,
            reason="reopened: the reporter replied",
        )
        await _announce_reopened(ctx, policy, case, clocks, trigger="reporter_reply", at=at)
        log.info("case reopened by the reporter's reply")
        return
    days = policy.reopen_within_days
    await ctx.emit(
        CaseFollowUpCaseRequested(
            reference=case.reference,
            message_event_id=ctx.envelope.event_id,
            channel=message.channel,
            body=message.body,
            attachments=message.attachments,
            received_at=at,
            closed_at=closed_at,
            reason=f"the reporter wrote to a case {case.status} more than {days:g} days before",
        )
    )
    log.info("follow-up case requested for a reply to an old case", status=case.status)


async def on_message(ctx: HandlerContext, policy: Policy) -> None:
    """A reply from the employee resumes paused clocks; an agent's reply is the first response."""
    message = payload_as(ctx.envelope, CaseMessageReceived)
    case = await _locked_case(ctx)
    if case.status in ENDED_STATUSES:
        # Staff reopen a case explicitly; the reporter's message is never silent.
        return await _reply_to_ended_case(ctx, policy, case, message)
    clocks = await sql.load_clocks(ctx.conn, case.case_id)
    at = message.received_at
    if message.sender_role == "agent":
        if clocks.get("first_response") and clocks["first_response"].state != "stopped":
            clocks = first_response_given(clocks, policy.team_calendar(case.team), at=at)
            if case.status == "assigned":
                await _move(
                    ctx,
                    policy,
                    case,
                    to_status="in_progress",
                    clocks=clocks,
                    reason="first response sent",
                )
            else:
                await save_clocks(
                    ctx.conn, policy, case_id=case.case_id, team=case.team, clocks=clocks
                )
        return
    # Remembered so a pause requested before this reply (applied late by another
    # replica) does not leave the case waiting on an answer already given.
    if case.employee_replied_at is None or at > case.employee_replied_at:
        await sql.update_case(ctx.conn, case.case_id, employee_replied_at=at)
    if case.status == "waiting_on_employee" and not _is_stale(ctx, case):
        await _move(
            ctx,
            policy,
            case,
            to_status="in_progress",
            clocks=resume_on_reply(clocks, at=at),
            reason="the employee replied",
        )


async def update_directory(ctx: HandlerContext) -> None:
    update = payload_as(ctx.envelope, DirectoryEmployeeUpdated)
    await sql.upsert_employees(
        ctx.conn,
        [
            sql.Employee(
                employee_id=update.employee_id,
                name=update.name,
                email=str(update.email) if update.email else None,
                manager_id=update.manager_id,
                department=update.department,
                active=update.active,
            )
        ],
    )


def build_handlers(policy: Policy) -> Mapping[str, Handler]:
    """One handler per event type routing subscribes to (entrypoints/subscriptions.py; the
    kernel refuses to start when the two differ)."""

    async def on_case_submitted(ctx: HandlerContext) -> None:
        await route_submitted_case(ctx, policy)

    async def on_recategorisation(ctx: HandlerContext) -> None:
        await recategorise_case(ctx, policy)

    async def on_assignment(ctx: HandlerContext) -> None:
        await assign_by_hand(ctx, policy)

    async def on_status_change(ctx: HandlerContext) -> None:
        await change_status(ctx, policy)

    async def on_message_received(ctx: HandlerContext) -> None:
        await on_message(ctx, policy)

    async def on_injury_facts(ctx: HandlerContext) -> None:
        await record_injury_facts(ctx, policy)

    def with_policy(handle: Callable[[HandlerContext, Policy], Awaitable[None]]) -> Handler:
        async def handler(ctx: HandlerContext) -> None:
            await handle(ctx, policy)

        return handler

    handlers: dict[str, Handler] = {
        "case.submitted": on_case_submitted,
        "case.message_received": on_message_received,
        "case.recategorisation_requested": on_recategorisation,
        "case.assignment_requested": on_assignment,
        "case.status_change_requested": on_status_change,
        "directory.employee_updated": update_directory,
        "case.injury_facts_recorded": on_injury_facts,
        "task.creation_requested": with_policy(tasks.create_task),
        "task.completion_requested": with_policy(tasks.complete_task),
        "task.reassignment_requested": with_policy(tasks.reassign_task),
        "task.cancellation_requested": with_policy(tasks.cancel_task),
        "case.respondent_resolution_requested": with_policy(resolve_respondent_by_hand),
        "conference.planning_requested": with_policy(conferences.plan_conference),
        "conference.change_requested": with_policy(conferences.change_conference),
        "conference.cancellation_requested": with_policy(conferences.cancel_conference),
        "conference.hold_recording_requested": with_policy(conferences.hold_conference),
        "conference.summary_recording_requested": with_policy(conferences.record_summary),
        "conference.action_completion_requested": with_policy(conferences.complete_action),
        "conference.action_replanning_requested": with_policy(conferences.replan_action),
        "conference.consent_recorded": with_policy(conferences.record_consent),
        "statutory_clock.completion_requested": statutory_clocks.completion_handler(policy),
        # Data-subject rights: scrub an erased person's copies (application/erasure.py).
        "privacy.data_subject_erased": on_data_subject_erased,
    }
    # Processes: stage moves, process roles, outcome approval (application/processes.py)
    # and the facts their requirements are judged on (application/process_facts.py).
    handlers.update(processes.process_handlers(policy))
    handlers.update(process_facts.fact_handlers(policy))
    # Written agreements' facts (application/agreements.py).
    handlers.update(agreements.agreement_handlers(policy))
    # Legal holds intake announced, which block retention (application/retention.py).
    handlers.update(retention.hold_handlers())
    # Every handler is followed by the statutory clocks' look at what it consumed and
    # emitted, in its transaction (application/statutory_clocks.py).
    return statutory_clocks.observe_statutory_clocks(policy, handlers)
