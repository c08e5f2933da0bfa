"""Projection of routing's process decisions into intake's read model.

case.process_assigned -> intake.case_processes (a new process starts with no stage),
case.stage_entered -> its stage, target and ending, case.stage_due_soon / overdue -> the
stage clock's state, case.process_role_assigned -> intake.case_process_roles. Each runs
under the case's row lock, in the order routing published them (one intake consumer).
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from services.intake.adapters import process_sql, sql
from shared.consumer import Handler, HandlerContext
from shared.events import (
    CaseProcessAssigned,
    CaseProcessRoleAssigned,
    CaseStageDueSoon,
    CaseStageEntered,
    CaseStageOverdue,
    payload_as,
)


async def locked_case(ctx: HandlerContext) -> UUID:
    """The event's case, row-locked; LookupError (retry, then DLQ) if intake lacks it."""
    case_id = ctx.envelope.case_id
    if case_id is None:
        raise ValueError(f"{ctx.envelope.event_type} without case_id")
    if await sql.lock_case_status(ctx.conn, case_id) is None:
        raise LookupError(f"case {case_id} is not known to intake")
    return case_id


async def on_process_assigned(ctx: HandlerContext) -> None:
    assigned = payload_as(ctx.envelope, CaseProcessAssigned)
    await process_sql.upsert_process(
        ctx.conn,
        await locked_case(ctx),
        process=assigned.process,
        label=assigned.label,
        stages=[stage.model_dump(mode="json") for stage in assigned.stages],
        endings=list(assigned.endings),
        assigned_by=assigned.assigned_by,
        reason=assigned.reason,
        companion_allowed=assigned.companion_allowed,
    )


async def on_stage_entered(ctx: HandlerContext) -> None:
    entered = payload_as(ctx.envelope, CaseStageEntered)
    found = await process_sql.enter_stage(
        ctx.conn,
        await locked_case(ctx),
        stage=entered.stage,
        stage_label=entered.label,
        entered_at=ctx.envelope.occurred_at,
        target_at=entered.target_at,
        due_soon_at=entered.due_soon_at,
        ending=entered.ending,
        ending_reason=entered.reason if entered.ending else None,
    )
    if not found:  # routing announces the process first: this one came early, retry
        raise LookupError(f"case {ctx.envelope.case_id} has no process yet")


async def on_stage_due_soon(ctx: HandlerContext) -> None:
    due = payload_as(ctx.envelope, CaseStageDueSoon)
    await process_sql.mark_stage_clock(
        ctx.conn, await locked_case(ctx), stage=due.stage, state="due_soon"
    )


async def on_stage_overdue(ctx: HandlerContext) -> None:
    overdue = payload_as(ctx.envelope, CaseStageOverdue)
    await process_sql.mark_stage_clock(
        ctx.conn, await locked_case(ctx), stage=overdue.stage, state="overdue"
    )


async def on_process_role_assigned(ctx: HandlerContext) -> None:
    assigned = payload_as(ctx.envelope, CaseProcessRoleAssigned)
    await process_sql.upsert_role(
        ctx.conn,
        await locked_case(ctx),
        role=assigned.role,
        staff_id=assigned.person.id,
        name=assigned.person.name,
        email=str(assigned.person.email),
        assigned_at=ctx.envelope.occurred_at,
    )


PROCESS_HANDLERS: Mapping[str, Handler] = {
    "case.process_assigned": on_process_assigned,
    "case.stage_entered": on_stage_entered,
    "case.stage_due_soon": on_stage_due_soon,
    "case.stage_overdue": on_stage_overdue,
    "case.process_role_assigned": on_process_role_assigned,
}
