"""Intake's projections of routing's word on respondents and injury: which named
respondent is which employee (and which need a person), and a required case conference."""

from __future__ import annotations

from services.intake.adapters import case_facts, sql
from shared.consumer import HandlerContext
from shared.events import CaseRespondentsResolved, ConferenceRequired, payload_as


async def on_respondents_resolved(ctx: HandlerContext) -> None:
    resolved = payload_as(ctx.envelope, CaseRespondentsResolved)
    case_id = ctx.envelope.case_id
    if case_id is None or await sql.lock_case_status(ctx.conn, case_id) is None:
        raise LookupError(f"case {case_id} is not known to intake")
    await case_facts.apply_resolutions(
        ctx.conn,
        case_id,
        resolved.respondents,
        unresolved=resolved.unresolved,
        at=ctx.envelope.occurred_at,
    )


async def on_conference_required(ctx: HandlerContext) -> None:
    """Shown on the case page to staff; routing requires one once per case."""
    required = payload_as(ctx.envelope, ConferenceRequired)
    case_id = ctx.envelope.case_id
    if case_id is None or await sql.lock_case_status(ctx.conn, case_id) is None:
        raise LookupError(f"case {case_id} is not known to intake")
    await sql.update_case(
        ctx.conn,
        case_id,
        conference_required_at=ctx.envelope.occurred_at,
        conference_reasons=required.reasons,
        conference_due_by=required.due_by,
    )
