"""The facts a process's requirements are judged on, as routing keeps them.

Intake's facts (investigation.*, case.outcome_decided, case.appeal_*, mediation.*) and
routing's own agreement.in_force are recorded in routing.process_facts /
routing.process_outcomes: ids, roles and employee ids, never the text (allegations,
statements, findings, accounts and notes stay with intake). After a fact is recorded, the
stage naming its event in `enter_on` is entered when the rules allow
(application/processes.enter_on). `case.conflict_declared` is recorded in
routing.process_conflicts: the person is never given a process role on the case nor
approves its outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog

from services.routing.adapters import process_sql
from services.routing.application.processes import enter_on
from services.routing.application.requests import locked_case
from services.routing.domain import processes as rules
from services.routing.domain.policy import Policy
from shared.consumer import Handler, HandlerContext
from shared.events import (
    AgreementInForce,
    CaseAppealDecided,
    CaseAppealLodged,
    CaseConflictDeclared,
    CaseOutcomeDecided,
    EventPayload,
    InvestigationAllegationRecorded,
    InvestigationFindingRecorded,
    InvestigationStatementRecorded,
    MediationAssessmentRecorded,
    MediationGroundRulesAccepted,
    MediationGroundRulesProposed,
    MediationMeetingHeld,
    payload_as,
)

log = structlog.get_logger(__name__)


Fact = tuple[str, str, dict[str, Any]]  # kind, key, data


def _allegation(p: InvestigationAllegationRecorded) -> Fact:
    return (
        rules.ALLEGATION,
        str(p.allegation_id),
        {"respondent_employee_id": p.respondent_employee_id},
    )


def _statement(p: InvestigationStatementRecorded) -> Fact:
    data = {"given_by_role": p.given_by_role, "given_by_employee_id": p.given_by_employee_id}
    return rules.STATEMENT, str(p.statement_id), data


def _finding(p: InvestigationFindingRecorded) -> Fact:
    return rules.FINDING, str(p.allegation_id), {"finding": p.finding}


def _appeal(p: CaseAppealLodged) -> Fact:
    return rules.APPEAL, str(p.appeal_id), {"outcome_id": str(p.outcome_id), "by_role": p.by_role}


def _appeal_decision(p: CaseAppealDecided) -> Fact:
    return rules.APPEAL_DECISION, str(p.appeal_id), {"decision": p.decision}


def _assessment(p: MediationAssessmentRecorded) -> Fact:
    return rules.ASSESSMENT, p.party.role, {"employee_id": p.party.employee_id}


def _ground_rules(p: MediationGroundRulesProposed) -> Fact:
    ids = [party.employee_id for party in p.parties]
    return rules.GROUND_RULES, str(p.ground_rules_id), {"party_employee_ids": ids}


def _ground_rules_accepted(p: MediationGroundRulesAccepted) -> Fact:
    data = {
        "ground_rules_id": str(p.ground_rules_id),
        "party_role": p.party_role,
        "employee_id": p.employee_id,
    }
    return rules.GROUND_RULES_ACCEPTED, f"{p.ground_rules_id}:{p.party_role}", data


def _meeting(p: MediationMeetingHeld) -> Fact:
    return rules.MEETING, str(p.meeting_id), {"held_at": p.held_at.isoformat()}


def _agreement(p: AgreementInForce) -> Fact:
    return rules.AGREEMENT_IN_FORCE, str(p.agreement_id), {"version": p.version}


# event type -> (payload class, what routing keeps of it)
FACTS: Mapping[str, tuple[type[EventPayload], Callable[[Any], Fact]]] = {
    InvestigationAllegationRecorded.event_type: (InvestigationAllegationRecorded, _allegation),
    InvestigationStatementRecorded.event_type: (InvestigationStatementRecorded, _statement),
    InvestigationFindingRecorded.event_type: (InvestigationFindingRecorded, _finding),
    CaseAppealLodged.event_type: (CaseAppealLodged, _appeal),
    CaseAppealDecided.event_type: (CaseAppealDecided, _appeal_decision),
    MediationAssessmentRecorded.event_type: (MediationAssessmentRecorded, _assessment),
    MediationGroundRulesProposed.event_type: (MediationGroundRulesProposed, _ground_rules),
    MediationGroundRulesAccepted.event_type: (MediationGroundRulesAccepted, _ground_rules_accepted),
    MediationMeetingHeld.event_type: (MediationMeetingHeld, _meeting),
    AgreementInForce.event_type: (AgreementInForce, _agreement),
}


async def record_fact(ctx: HandlerContext, policy: Policy) -> None:
    """Keep what the requirements need of a fact, then enter the stage it names in
    `enter_on` (if any, and allowed)."""
    event_type = ctx.envelope.event_type
    model, extract = FACTS[event_type]
    case = await locked_case(ctx)
    kind, key, data = extract(payload_as(ctx.envelope, model))
    await process_sql.record_fact(
        ctx.conn,
        case.case_id,
        kind=kind,
        key=key,
        data=data,
        at=ctx.envelope.occurred_at,
        event_id=ctx.envelope.event_id,
    )
    await enter_on(ctx, policy, case, event_type)


async def record_outcome(ctx: HandlerContext, policy: Policy) -> None:
    """The investigator's decided outcome, awaiting approval."""
    decided = payload_as(ctx.envelope, CaseOutcomeDecided)
    case = await locked_case(ctx)
    inserted = await process_sql.record_outcome(
        ctx.conn,
        case.case_id,
        outcome_id=decided.outcome_id,
        decided_by=decided.decided_by,
        at=ctx.envelope.occurred_at,
    )
    if not inserted:
        log.warning("outcome recorded already; repeated decision ignored")
        return
    await enter_on(ctx, policy, case, CaseOutcomeDecided.event_type)


async def declare_conflict(ctx: HandlerContext, policy: Policy) -> None:
    """Record a declared conflict: the person is never given a process role on the case,
    nor approves its outcome."""
    declared = payload_as(ctx.envelope, CaseConflictDeclared)
    case = await locked_case(ctx)
    await process_sql.declare_conflict(
        ctx.conn,
        case.case_id,
        staff_id=declared.staff_id,
        reason=declared.reason,
        at=ctx.envelope.occurred_at,
    )
    holds = [
        r
        for r, who in (await process_sql.current_roles(ctx.conn, case.case_id)).items()
        if who == declared.staff_id
    ]
    if holds:  # staff must name someone else; routing does not take a role away by itself
        log.warning("a role holder declared a conflict", roles=holds)


def fact_handlers(policy: Policy) -> dict[str, Handler]:
    """Routing's handlers for the facts (merged into application/handlers.build_handlers)."""

    def bound(handle: Callable[[HandlerContext, Policy], Any]) -> Handler:
        async def handler(ctx: HandlerContext) -> None:
            await handle(ctx, policy)

        return handler

    handlers: dict[str, Handler] = {
        "case.conflict_declared": bound(declare_conflict),
        "case.outcome_decided": bound(record_outcome),
    }
    handlers.update({event_type: bound(record_fact) for event_type in FACTS})
    return handlers
