"""What every request handler of routing does first and when it says no.

A request (a `*_requested` command from intake) is applied with its case row locked, so
replicas apply one case's requests one at a time; a refused one is answered with
`case.request_refused` naming the reason, never dropped.
"""

from __future__ import annotations

import structlog

from services.routing.adapters import sql
from shared.consumer import HandlerContext
from shared.errors import PermanentError
from shared.events import CaseRequestRefused

log = structlog.get_logger(__name__)


class CaseNotRoutedYet(LookupError):
    """The case's submission has not been applied yet (another replica may hold it): retry."""


async def locked_case(ctx: HandlerContext) -> sql.CaseRow:
    """The request's case, row-locked for the handler's transaction. Raises PermanentError
    (dead-lettered) for an event without case_id, CaseNotRoutedYet (retried) when routing
    has not applied the case's submission yet."""
    if ctx.envelope.case_id is None:
        raise PermanentError(f"{ctx.envelope.event_type} without case_id")
    case = await sql.lock_case(ctx.conn, ctx.envelope.case_id)
    if case is None:
        raise CaseNotRoutedYet(f"case {ctx.envelope.case_id} is not routed yet")
    return case


async def refuse(ctx: HandlerContext, case: sql.CaseRow, reason: str) -> None:
    """Tell the requester (via intake) why their request was not applied."""
    log.info("request refused", reason=reason, request_type=ctx.envelope.event_type)
    await ctx.emit(
        CaseRequestRefused(
            reference=case.reference,
            request_event_id=ctx.envelope.event_id,
            request_type=ctx.envelope.event_type,
            reason=reason,
        )
    )
