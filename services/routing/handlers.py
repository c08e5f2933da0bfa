"""Routing's event handlers: thin glue between the bus, the triage rules and the tables."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from services.routing.adapters import sql
from services.routing.domain.policy import Policy
from services.routing.domain.triage import classify, prioritise, round_robin, sla_deadlines
from shared.consumer import Handler, HandlerContext
from shared.envelope import utcnow
from shared.events import (
    CaseAssigned,
    CaseRouted,
    CaseStatusChanged,
    CaseSubmitted,
    Person,
    payload_as,
)

log = structlog.get_logger(__name__)


async def route_submitted_case(ctx: HandlerContext, policy: Policy) -> None:
    """Triage a new case, assign an owner, and announce both."""
    submitted = payload_as(ctx.envelope, CaseSubmitted)
    case_id = ctx.envelope.case_id
    if case_id is None:
        raise ValueError("case.submitted without case_id")
    text = f"{submitted.subject}\n{submitted.description}"
    classification = classify(policy, text=text, requested=submitted.category)
    prioritisation = prioritise(policy, category=classification.category, text=text)
    deadlines = sla_deadlines(
        policy, priority=prioritisation.priority, start=submitted.submitted_at
    )
    team = policy.categories[classification.category].team
    owner, _ = round_robin(
        policy, team=team, cursor=await sql.take_round_robin_cursor(ctx.conn, team)
    )
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
        owner_id=owner.id,
        status="assigned",
        submitted_at=submitted.submitted_at,
        routed_at=utcnow(),
        first_response_due=deadlines.first_response_due,
        resolution_due=deadlines.resolution_due,
        policy_hash=policy.source_hash,
    )
    if not await sql.insert_case(ctx.conn, routed):
        # Same case submitted under a second event id: routing it again would double-assign.
        log.warning("case already routed; ignoring repeated submission")
        return
    await ctx.emit(
        CaseRouted(
            reference=routed.reference,
            category=routed.category,
            category_source=classification.source,
            matched_terms=list(routed.matched_terms),
            sensitivity=classification.sensitivity,
            priority=prioritisation.priority,
            priority_reasons=list(prioritisation.reasons),
            first_response_due=routed.first_response_due,
            resolution_due=routed.resolution_due,
            policy_hash=routed.policy_hash,
        )
    )
    await ctx.emit(
        CaseAssigned(
            reference=routed.reference,
            team=team,
            owner=Person(id=owner.id, name=owner.name, email=owner.email),
            strategy=policy.teams[team].strategy,
            priority=prioritisation.priority,
            sensitivity=classification.sensitivity,
            category=routed.category,
            first_response_due=routed.first_response_due,
        )
    )
    await ctx.emit(
        CaseStatusChanged(
            reference=routed.reference, from_status="new", to_status="assigned", reason="routed"
        )
    )
    log.info(
        "case routed",
        category=routed.category,
        priority=routed.priority,
        team=team,
        owner_id=owner.id,
    )


def build_handlers(policy: Policy) -> Mapping[str, Handler]:
    async def on_case_submitted(ctx: HandlerContext) -> None:
        await route_submitted_case(ctx, policy)

    return {"case.submitted": on_case_submitted}
