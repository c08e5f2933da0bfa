"""Tasks on a case: routing decides on intake's task requests and fires their timers.

Each request handler row-locks the case (and the task), so replicas apply one case's
events one at a time, like the lifecycle handlers. A refused request is answered with
`case.request_refused` naming the reason; an accepted one with its outcome event. The
timer side (`fire_due_task_timers`) claims due timers with their task and case under
FOR UPDATE SKIP LOCKED and marks them fired in the transaction that records the event,
so each reminder and each overdue escalation is announced once across replicas.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import asyncpg
import structlog

from services.routing.adapters import sql, task_sql
from services.routing.application.requests import locked_case as _locked_case
from services.routing.application.requests import refuse as _refuse
from services.routing.application.timer_batches import fire_batch
from services.routing.domain.policy import Policy, StaffMember
from services.routing.domain.tasks import (
    ENDED_TASK_STATUSES,
    TaskRefused,
    assignee_problem,
    due_soon_at,
    plan_task_timers,
    task_due,
)
from services.routing.domain.triage import escalation_target
from shared.consumer import HandlerContext
from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    EventPayload,
    Person,
    TaskCancellationRequested,
    TaskCancelled,
    TaskCompleted,
    TaskCompletionRequested,
    TaskCreated,
    TaskCreationRequested,
    TaskDueSoon,
    TaskOverdue,
    TaskReassigned,
    TaskReassignmentRequested,
    make_event,
    payload_as,
)

log = structlog.get_logger(__name__)
SERVICE = "routing"


def _person(member: StaffMember) -> Person:
    return Person(id=member.id, name=member.name, email=member.email)


async def _assignee(
    ctx: HandlerContext, policy: Policy, case: sql.CaseRow, assignee_id: str
) -> StaffMember:
    """The staff member who may hold a task on the case; TaskRefused with the reason."""
    person = policy.person(assignee_id)
    readers = None
    if case.sensitivity == "restricted":
        # Intake shows a restricted case to its owner and HR managers only (case_access).
        owner = {case.owner_id} if case.owner_id else set()
        readers = frozenset({s.id for s in policy.staff} | owner)
    problem = assignee_problem(
        person,
        assignee_id,
        conflicted=await sql.conflicted_ids(ctx.conn, case.respondent_ids),
        inactive=await sql.inactive_ids(ctx.conn, [assignee_id]),
        restricted_readers=readers,
    )
    if problem is not None:
        raise TaskRefused(problem)
    assert person is not None
    return person


async def create_task(ctx: HandlerContext, policy: Policy) -> None:
    """Accept a task: a known, unconflicted assignee, an open case, a due instant computed
    in the case team's working calendar; plan its reminder and overdue timers."""
    request = payload_as(ctx.envelope, TaskCreationRequested)
    case = await _locked_case(ctx)
    requested_at = ctx.envelope.occurred_at
    calendar = policy.team_calendar(case.team)
    try:
        if case.status == "closed":
            raise TaskRefused("a closed case cannot get new tasks")
        assignee = await _assignee(ctx, policy, case, request.assignee_id)
        due = task_due(
            calendar,
            policy.tasks,
            requested_at=requested_at,
            due_in_working_hours=request.due_in_working_hours,
            due_at=request.due_at,
        )
    except TaskRefused as refused:
        return await _refuse(ctx, case, str(refused))
    reminder = due_soon_at(calendar, policy.tasks, start=requested_at, due=due)
    task = task_sql.TaskRow(
        task_id=request.task_id,
        case_id=case.case_id,
        title=request.title,
        assignee_id=assignee.id,
        status="open",
        team=case.team,
        requested_at=requested_at,
        due_at=due,
        due_soon_at=reminder,
        overdue_at=None,
    )
    if not await task_sql.insert_task(ctx.conn, task, request_event_id=ctx.envelope.event_id):
        log.warning("task already exists; repeated request ignored", task_id=str(task.task_id))
        return
    timers = plan_task_timers(due=due, reminder=reminder, now=utcnow())
    await task_sql.schedule(ctx.conn, task, timers)
    await ctx.emit(
        TaskCreated(
            reference=case.reference,
            task_id=task.task_id,
            title=task.title,
            assignee=_person(assignee),
            due_at=due,
            due_soon_at=reminder if any(t.kind == "due_soon" for t in timers) else None,
        )
    )
    log.info("task created", task_id=str(task.task_id), assignee_id=assignee.id)


async def _open_task(
    ctx: HandlerContext, case: sql.CaseRow, task_id: UUID
) -> task_sql.TaskRow | None:
    """The open task, or None after telling the requester why not."""
    task = await task_sql.lock_task(ctx.conn, case.case_id, task_id)
    if task is None:
        await _refuse(ctx, case, "no such task on this case")
        return None
    if task.status in ENDED_TASK_STATUSES:
        await _refuse(ctx, case, f"the task is already {task.status}")
        return None
    return task


async def _end(
    ctx: HandlerContext, task: task_sql.TaskRow, status: str, outcome: EventPayload
) -> int:
    """Mark `task` done or cancelled, drop its timers (no reminder may fire after) and
    announce `outcome`; returns how many timers were dropped."""
    await task_sql.update_task(
        ctx.conn, task.task_id, status=status, ended_at=ctx.envelope.occurred_at
    )
    dropped = await task_sql.cancel_timers(ctx.conn, task.task_id)
    await ctx.emit(outcome)
    return dropped


def _cancelled(case: sql.CaseRow, task: task_sql.TaskRow, reason: str) -> TaskCancelled:
    return TaskCancelled(
        reference=case.reference,
        task_id=task.task_id,
        title=task.title,
        assignee_id=task.assignee_id,
        reason=reason,
    )


async def complete_task(ctx: HandlerContext, policy: Policy) -> None:
    request = payload_as(ctx.envelope, TaskCompletionRequested)
    case = await _locked_case(ctx)
    task = await _open_task(ctx, case, request.task_id)
    if task is None:
        return
    completed = TaskCompleted(
        reference=case.reference,
        task_id=task.task_id,
        title=task.title,
        assignee_id=task.assignee_id,
    )
    dropped = await _end(ctx, task, "done", completed)
    log.info("task completed", task_id=str(task.task_id), timers_cancelled=dropped)


async def cancel_task(ctx: HandlerContext, policy: Policy) -> None:
    request = payload_as(ctx.envelope, TaskCancellationRequested)
    case = await _locked_case(ctx)
    task = await _open_task(ctx, case, request.task_id)
    if task is None:
        return
    dropped = await _end(ctx, task, "cancelled", _cancelled(case, task, request.reason))
    log.info("task cancelled", task_id=str(task.task_id), timers_cancelled=dropped)


CASE_CLOSED = "case closed"


async def cancel_open_tasks(ctx: HandlerContext, case: sql.CaseRow, *, reason: str) -> int:
    """Cancel every open (or overdue) task of `case`, dropping their timers, one
    `task.cancelled` each: a closed case has no work left and no reminder may fire.
    Call with the case row-locked; returns how many were cancelled."""
    open_tasks = await task_sql.lock_open_tasks(ctx.conn, case.case_id)
    for task in open_tasks:
        await _end(ctx, task, "cancelled", _cancelled(case, task, reason))
    if open_tasks:
        log.info("open tasks cancelled", count=len(open_tasks), reason=reason)
    return len(open_tasks)


async def reassign_task(ctx: HandlerContext, policy: Policy) -> None:
    """Another assignee, under the same rules as a new task; the due instant stays (the
    timers name whoever holds the task when they fire)."""
    request = payload_as(ctx.envelope, TaskReassignmentRequested)
    case = await _locked_case(ctx)
    task = await _open_task(ctx, case, request.task_id)
    if task is None:
        return
    try:
        if case.status == "closed":
            raise TaskRefused("a task on a closed case cannot be reassigned")
        assignee = await _assignee(ctx, policy, case, request.assignee_id)
        if assignee.id == task.assignee_id:
            raise TaskRefused(f"{assignee.id} already holds the task")
    except TaskRefused as refused:
        return await _refuse(ctx, case, str(refused))
    await task_sql.update_task(ctx.conn, task.task_id, assignee_id=assignee.id)
    await ctx.emit(
        TaskReassigned(
            reference=case.reference,
            task_id=task.task_id,
            title=task.title,
            assignee=_person(assignee),
            previous_assignee_id=task.assignee_id,
            due_at=task.due_at,
            reason=request.reason,
        )
    )


# --- Timers ------------------------------------------------------------------------------


async def fire_due_task_timers(
    pool: asyncpg.Pool,
    policy: Policy,
    *,
    on_commit: Callable[[], None] | None = None,
    batch_size: int = 100,
) -> int:
    """Fire one batch of due task timers; return how many were claimed."""
    return await fire_batch(
        pool,
        claim=task_sql.claim_due_timers,
        fire=lambda conn, timer: _fire(conn, policy, timer),
        mark=lambda conn, timer, event_id: task_sql.mark_fired(conn, timer.id, event_id),
        on_commit=on_commit,
        batch_size=batch_size,
    )


async def _fire(
    conn: asyncpg.Connection, policy: Policy, timer: task_sql.DueTaskTimer
) -> Envelope | None:
    case = await sql.lock_case(conn, timer.case_id)  # locked by the claim already
    task = await task_sql.lock_task(conn, timer.case_id, timer.task_id)
    if case is None or task is None or task.status != "open":
        return None  # stale: ended after the timer was planned
    member = policy.person(task.assignee_id)
    if member is None:  # the policy changed under an open task: say so, fire nothing
        log.error("task assignee no longer in policy", task_id=str(task.task_id))
        return None
    payload: EventPayload
    if timer.kind == "due_soon":
        if task.due_at <= utcnow():
            return None  # fired late, past the due instant: the overdue timer speaks
        payload = TaskDueSoon(
            reference=case.reference,
            task_id=task.task_id,
            title=task.title,
            assignee=_person(member),
            due_at=task.due_at,
        )
    else:
        payload = await _overdue(conn, policy, case, task, member)
        await task_sql.update_task(conn, task.task_id, overdue_at=utcnow())
    event = make_event(
        payload,
        producer=SERVICE,
        actor=Actor(type="system", id="routing-timers"),
        case_id=case.case_id,
    )
    if case.correlation_id is not None:
        event = event.model_copy(update={"correlation_id": case.correlation_id})
    log.info("task timer fired", kind=timer.kind, task_id=str(task.task_id))
    return event


async def _overdue(
    conn: asyncpg.Connection,
    policy: Policy,
    case: sql.CaseRow,
    task: task_sql.TaskRow,
    member: StaffMember,
) -> TaskOverdue:
    """The overdue announcement with its escalation target: the ladder level the policy
    names, passed up past anyone conflicted (respondents, their managers) or the assignee."""
    conflicted = await sql.conflicted_ids(conn, case.respondent_ids) | {task.assignee_id}
    target = escalation_target(
        policy, team=case.team, level=policy.tasks.escalation_level, conflicted=conflicted
    )
    if target is None:
        log.error("no escalation target for an overdue task", task_id=str(task.task_id))
    return TaskOverdue(
        reference=case.reference,
        task_id=task.task_id,
        title=task.title,
        assignee=_person(member),
        due_at=task.due_at,
        escalated_to=_person(target[1]) if target else None,
        escalation_level=target[0] if target else None,
    )
