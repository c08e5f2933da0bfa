"""Processes: routing puts a case in its process and decides on staff's process requests.

- First routing (`start_default_process`, from the case.submitted path after case.routed):
  the category's process (`assigned_by: policy`) and its first stage with its clock.
  Re-categorising a case does not change its process; staff switch it with a reason.
- Requests (`case.process_change_requested`, `case.stage_change_requested`,
  `case.process_role_assignment_requested`, `case.outcome_approval_requested`): applied
  with the case row-locked (application/requests.py) and answered with the decision, or
  `case.request_refused` naming the rule (domain/processes.py).
- Facts are recorded by application/process_facts.py, which calls `enter_on` after
  each: an event a stage names in `enter_on` enters it when the rules allow.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
import structlog

from services.routing.adapters import process_sql, sql
from services.routing.application.requests import locked_case, refuse
from services.routing.domain import processes as rules
from services.routing.domain.policy import Policy, StaffMember
from services.routing.domain.process_policy import ProcessSpec, StageSpec
from services.routing.domain.processes import (
    ProcessFacts,
    ProcessRefused,
    RoleCheck,
    StageClock,
    StageMove,
)
from shared.consumer import Handler, HandlerContext
from shared.events import (
    CaseOutcomeApprovalRequested,
    CaseOutcomeApproved,
    CaseProcessAssigned,
    CaseProcessChangeRequested,
    CaseProcessRoleAssigned,
    CaseProcessRoleAssignmentRequested,
    CaseStageChangeRequested,
    CaseStageEntered,
    Person,
    ProcessStage,
    payload_as,
)

log = structlog.get_logger(__name__)
NO_PROCESS = "the case is in no process"


def person(member: StaffMember) -> Person:
    return Person(id=member.id, name=member.name, email=member.email)


async def snapshot(conn: asyncpg.Connection, case_id: UUID) -> ProcessFacts:
    """The facts routing holds on the case, with its role holders and outcomes."""
    return rules.facts_from(
        await process_sql.facts(conn, case_id),
        roles=await process_sql.current_roles(conn, case_id),
        outcomes=await process_sql.outcomes(conn, case_id),
    )


async def respondent_chain(
    ctx: HandlerContext, case: sql.CaseRow, facts: ProcessFacts
) -> frozenset[str]:
    """The case's respondents and those the allegations name, with their managers."""
    ids = tuple(dict.fromkeys((*case.respondent_ids, *sorted(facts.respondent_ids))))
    return await sql.conflicted_ids(ctx.conn, ids)


# --- starting and switching a process ----------------------------------------------------


async def _start(
    ctx: HandlerContext,
    policy: Policy,
    case_id: UUID,
    *,
    reference: str,
    name: str,
    team: str,
    owner_id: str | None,
    at: datetime,
    previous: str | None,
    assigned_by: Literal["policy", "staff"],
    reason: str | None,
) -> None:
    process = policy.processes[name]
    first = process.stages[0]
    clock = rules.stage_clock(process, first, policy.team_calendar(team), at)
    await process_sql.start_process(
        ctx.conn, case_id, process=name, stage=first.name, at=at, clock=clock
    )
    await ctx.emit(
        CaseProcessAssigned(
            reference=reference,
            process=name,
            label=process.label,
            stages=[
                ProcessStage(name=s.name, label=s.label, target_working_days=s.target_working_days)
                for s in process.stages
            ],
            endings=list(process.endings),
            previous_process=previous,
            assigned_by=assigned_by,
            reason=reason,
            companion_allowed=process.companion_allowed,
        )
    )
    await ctx.emit(
        CaseStageEntered(
            reference=reference,
            process=name,
            stage=first.name,
            label=first.label,
            direction="start",
            target_at=clock.target_at,
            due_soon_at=clock.due_soon_at,
            owner_id=owner_id,
        )
    )


async def start_default_process(
    ctx: HandlerContext,
    policy: Policy,
    case_id: UUID,
    *,
    reference: str,
    category: str,
    team: str,
    owner_id: str | None,
    at: datetime,
    reporter_employee_id: str | None,
) -> None:
    """A newly routed case: remember the complainant (the reporter) and start the
    category's process (none when the policy declares no processes)."""
    if reporter_employee_id is not None:
        await process_sql.record_fact(
            ctx.conn,
            case_id,
            kind=rules.REPORTER,
            key=rules.REPORTER,
            data={"employee_id": reporter_employee_id},
            at=at,
            event_id=ctx.envelope.event_id,
        )
    name = policy.process_for(category)
    if name is None:
        return
    await _start(
        ctx,
        policy,
        case_id,
        reference=reference,
        name=name,
        team=team,
        owner_id=owner_id,
        at=at,
        previous=None,
        assigned_by="policy",
        reason=None,
    )


async def change_process(ctx: HandlerContext, policy: Policy) -> None:
    """Staff switch the case to another process, with a reason: it restarts at that
    process's first stage (roles and recorded facts stay)."""
    request = payload_as(ctx.envelope, CaseProcessChangeRequested)
    case = await locked_case(ctx)
    current = await process_sql.lock_process(ctx.conn, case.case_id)
    if request.process not in policy.processes:
        known = ", ".join(policy.processes) or "none"
        return await refuse(
            ctx, case, f"the policy has no process {request.process!r} (its processes: {known})"
        )
    if current is not None and current.process == request.process:
        label = policy.processes[request.process].label
        return await refuse(ctx, case, f"the case is already in the {label} process")
    if case.status == "closed":
        return await refuse(ctx, case, "a closed case's process cannot be switched")
    await _start(
        ctx,
        policy,
        case.case_id,
        reference=case.reference,
        name=request.process,
        team=case.team,
        owner_id=case.owner_id,
        at=ctx.envelope.occurred_at,
        previous=current.process if current else None,
        assigned_by="staff",
        reason=request.reason,
    )
    log.info("process switched", process=request.process)


# --- stage moves -------------------------------------------------------------------------


async def _enter(
    ctx: HandlerContext,
    policy: Policy,
    case: sql.CaseRow,
    name: str,
    move: StageMove,
) -> None:
    process = policy.processes[name]
    at = ctx.envelope.occurred_at
    clock = (
        StageClock()
        if move.direction == "final"
        else rules.stage_clock(process, move.stage, policy.team_calendar(case.team), at)
    )
    await process_sql.enter_stage(
        ctx.conn, case.case_id, stage=move.stage.name, at=at, clock=clock, ending=move.ending
    )
    await ctx.emit(
        CaseStageEntered(
            reference=case.reference,
            process=name,
            stage=move.stage.name,
            label=move.stage.label,
            previous_stage=move.previous,
            direction=move.direction,
            target_at=clock.target_at,
            due_soon_at=clock.due_soon_at,
            ending=move.ending,
            reason=move.reason,
            owner_id=case.owner_id,
        )
    )
    log.info("stage entered", stage=move.stage.name, direction=move.direction)


def _process_of(policy: Policy, row: process_sql.CaseProcessRow) -> ProcessSpec | None:
    process = policy.processes.get(row.process)
    if process is None or process.stage(row.stage) is None:
        # The policy changed under a running process: say so; nothing moves.
        log.error("process or stage no longer in the policy", process=row.process, stage=row.stage)
        return None
    return process


async def change_stage(ctx: HandlerContext, policy: Policy) -> None:
    """Staff move the case's stage under the process's rules (domain/processes.py)."""
    request = payload_as(ctx.envelope, CaseStageChangeRequested)
    case = await locked_case(ctx)
    row = await process_sql.lock_process(ctx.conn, case.case_id)
    process = _process_of(policy, row) if row is not None else None
    if row is None or process is None:
        return await refuse(ctx, case, NO_PROCESS)
    try:
        move = rules.plan_move(
            process,
            current=row.stage,
            ended=row.ended,
            target=request.stage,
            ending=request.ending,
            reason=request.reason,
            facts=await snapshot(ctx.conn, case.case_id),
        )
    except ProcessRefused as refused:
        return await refuse(ctx, case, str(refused))
    await _enter(ctx, policy, case, row.process, move)


async def enter_on(ctx: HandlerContext, policy: Policy, case: sql.CaseRow, event_type: str) -> None:
    """Enter the stage that names `event_type` in its `enter_on`, when the move is allowed."""
    row = await process_sql.lock_process(ctx.conn, case.case_id)
    process = _process_of(policy, row) if row is not None else None
    if row is None or process is None:
        return
    stage: StageSpec | None = rules.automatic_entry(
        process,
        current=row.stage,
        ended=row.ended,
        event_type=event_type,
        facts=await snapshot(ctx.conn, case.case_id),
    )
    if stage is None:
        return
    move = StageMove(stage, row.stage, "forward", None, f"entered on {event_type}")
    await _enter(ctx, policy, case, row.process, move)


# --- process roles -----------------------------------------------------------------------


async def assign_role(ctx: HandlerContext, policy: Policy) -> None:
    """Give a process role to a member of staff the rules accept; the previous holder is
    released (domain/processes.role_problem)."""
    request = payload_as(ctx.envelope, CaseProcessRoleAssignmentRequested)
    case = await locked_case(ctx)
    row = await process_sql.lock_process(ctx.conn, case.case_id)
    process = _process_of(policy, row) if row is not None else None
    if row is None or process is None:
        return await refuse(ctx, case, NO_PROCESS)
    if row.ended:
        return await refuse(ctx, case, f"the {process.label} process has ended")
    facts = await snapshot(ctx.conn, case.case_id)
    member = policy.person(request.staff_id)
    complainant = {facts.complainant_id} if facts.complainant_id else set()
    parties = tuple(sorted(facts.parties | complainant))
    check = RoleCheck(
        process_name=row.process,
        process=process,
        known=member is not None,
        inactive=bool(await sql.inactive_ids(ctx.conn, [request.staff_id])),
        respondent_conflicted=await respondent_chain(ctx, case, facts),
        party_conflicted=await sql.conflicted_ids(ctx.conn, parties),
        declared=await process_sql.declared_conflicts(ctx.conn, case.case_id),
        ever_held=await process_sql.role_history(ctx.conn, case.case_id),
        current_holder=facts.roles.get(request.role),
        complainant_id=facts.complainant_id,
        outcome_people=frozenset(
            who for o in facts.outcomes for who in (o.decided_by, o.approved_by) if who
        ),
    )
    problem = rules.role_problem(request.role, request.staff_id, check)
    if problem is not None:
        return await refuse(ctx, case, problem)
    assert member is not None  # role_problem refuses unknown staff
    previous = await process_sql.assign_role(
        ctx.conn,
        case.case_id,
        role=request.role,
        staff_id=member.id,
        at=ctx.envelope.occurred_at,
    )
    await ctx.emit(
        CaseProcessRoleAssigned(
            reference=case.reference,
            process=row.process,
            role=request.role,
            person=person(member),
            previous_id=previous,
            reason=request.reason,
        )
    )
    log.info("process role assigned", role=request.role, staff_id=member.id)


# --- outcome approval --------------------------------------------------------------------


async def approve_outcome(ctx: HandlerContext, policy: Policy) -> None:
    """A second person approves the decided outcome: the appeal window opens
    (`appeal_window_working_days` in the team's calendar), both parties are to be told,
    and the stage naming case.outcome_approved in `enter_on` is entered."""
    request = payload_as(ctx.envelope, CaseOutcomeApprovalRequested)
    case = await locked_case(ctx)
    row = await process_sql.lock_process(ctx.conn, case.case_id)
    process = _process_of(policy, row) if row is not None else None
    if row is None or process is None:
        return await refuse(ctx, case, NO_PROCESS)
    facts = await snapshot(ctx.conn, case.case_id)
    declared = await process_sql.declared_conflicts(ctx.conn, case.case_id)
    history = await process_sql.role_history(ctx.conn, case.case_id)
    problem = rules.approval_problem(
        process,
        outcome_id=str(request.outcome_id),
        approver_id=request.approver_id,
        stage=row.stage,
        facts=facts,
        team_lead=policy.teams[case.team].lead,
        investigators=history.get("investigator", frozenset()),
        conflicted=await respondent_chain(ctx, case, facts) | declared,
    )
    approver = policy.person(request.approver_id)
    if problem is None and approver is None:
        problem = f"{request.approver_id!r} is not HR staff in the routing policy"
    if problem is not None:
        return await refuse(ctx, case, problem)
    assert approver is not None
    outcome = next(o for o in facts.outcomes if o.outcome_id == str(request.outcome_id))
    at = ctx.envelope.occurred_at
    ends_at = rules.appeal_window_ends_at(
        policy.team_calendar(case.team), at, process.appeal_window_working_days
    )
    await process_sql.approve_outcome(
        ctx.conn, request.outcome_id, approved_by=approver.id, at=at, appeal_window_ends_at=ends_at
    )
    contacts = await process_sql.work_contacts(ctx.conn, sorted(facts.respondent_ids))
    await ctx.emit(
        CaseOutcomeApproved(
            reference=case.reference,
            outcome_id=request.outcome_id,
            approver=person(approver),
            decided_by=outcome.decided_by,
            appeal_window_ends_at=ends_at,
            respondents=[Person(id=i, name=n, email=e) for i, n, e in contacts],
        )
    )
    log.info("outcome approved", outcome_id=str(request.outcome_id))
    await enter_on(ctx, policy, case, CaseOutcomeApproved.event_type)


def process_handlers(policy: Policy) -> dict[str, Handler]:
    """Routing's handlers for staff's process requests (merged into
    application/handlers.build_handlers; the facts' are application/process_facts.py's)."""

    def bound(handle: Callable[[HandlerContext, Policy], Any]) -> Handler:
        async def handler(ctx: HandlerContext) -> None:
            await handle(ctx, policy)

        return handler

    handlers: dict[str, Handler] = {
        "case.process_change_requested": bound(change_process),
        "case.stage_change_requested": bound(change_stage),
        "case.process_role_assignment_requested": bound(assign_role),
        "case.outcome_approval_requested": bound(approve_outcome),
    }
    return handlers
