"""Projection of routing's decisions on an investigation's outcome into intake's tables.

case.outcome_approved -> the outcome approved (approver, appeal window end: the parties'
letters and the appeal form show from then); case.appeal_window_closed -> the window
closed (whether an appeal was lodged); case.request_refused for an approval request ->
the outcome shows routing's reason (called from handlers.on_request_refused). Each runs
under the case's row lock, in the order routing published them.
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

import asyncpg

from services.intake.adapters import investigation_sql as store
from services.intake.application.process_projection import locked_case
from shared.consumer import Handler, HandlerContext
from shared.events import CaseAppealWindowClosed, CaseOutcomeApproved, payload_as

APPROVAL_REQUEST = "case.outcome_approval_requested"


async def on_outcome_approved(ctx: HandlerContext) -> None:
    approved = payload_as(ctx.envelope, CaseOutcomeApproved)
    await locked_case(ctx)
    found = await store.approve_outcome(
        ctx.conn,
        approved.outcome_id,
        approver=approved.approver.model_dump(mode="json"),
        approved_at=ctx.envelope.occurred_at,
        appeal_window_ends_at=approved.appeal_window_ends_at,
    )
    if not found:  # intake records the outcome before routing can approve it: retry
        raise LookupError(f"outcome {approved.outcome_id} is not known to intake")


async def on_appeal_window_closed(ctx: HandlerContext) -> None:
    closed = payload_as(ctx.envelope, CaseAppealWindowClosed)
    await locked_case(ctx)
    found = await store.close_appeal_window(
        ctx.conn, closed.outcome_id, appealed=closed.appealed, closed_at=ctx.envelope.occurred_at
    )
    if not found:
        raise LookupError(f"outcome {closed.outcome_id} is not known to intake")


async def refuse_approval_request(
    conn: asyncpg.Connection, request_event_id: UUID, reason: str
) -> None:
    """Routing refused an approval request: the outcome shows the reason."""
    await store.refuse_approval(conn, request_event_id, reason)


INVESTIGATION_HANDLERS: Mapping[str, Handler] = {
    "case.outcome_approved": on_outcome_approved,
    "case.appeal_window_closed": on_appeal_window_closed,
}
