"""Resolving a new case's named respondents, and staff's later injury facts.

Respondents: resolved against the employee directory (and the policy's HR staff, who may
be missing from it) by `domain/respondents.py`; the resolved ones and their management
chain are kept off the case (owner, escalations). Routing announces what it resolved
(`case.respondents_resolved`, ids only), and unresolved ones wait for a person.

Injury facts: the rule (`domain/triage.conference_reasons`) decides whether a case
conference is mandatory; it is required once per case, at submission or later.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import structlog

from services.routing.adapters import case_facts, sql
from services.routing.domain.policy import Policy, StaffMember
from services.routing.domain.respondents import (
    Candidate,
    conflicted_respondent_ids,
    named_respondents,
    resolve,
)
from services.routing.domain.triage import conference_reasons
from shared.consumer import HandlerContext
from shared.errors import PermanentError
from shared.events import (
    CaseInjuryFactsRecorded,
    CaseRespondentsResolved,
    CaseSubmitted,
    ConferenceRequired,
    InjuryDetails,
    RespondentNamed,
    RespondentResolution,
    payload_as,
)

log = structlog.get_logger(__name__)


class Respondents:
    """A submission's named respondents, how each resolved, and the ids to keep off it."""

    def __init__(
        self, named: Sequence[RespondentNamed], resolutions: Sequence[RespondentResolution]
    ) -> None:
        self.named = list(named)
        self.resolutions = list(resolutions)
        self.conflict_ids = conflicted_respondent_ids(named, resolutions)


async def resolve_respondents(
    ctx: HandlerContext, policy: Policy, submitted: CaseSubmitted
) -> Respondents:
    named = named_respondents(submitted.respondents, submitted.respondent_employee_ids)
    if not named:
        return Respondents([], [])
    people = await case_facts.directory_candidates(ctx.conn, named)
    known = {p.employee_id for p in people}
    # HR staff the directory does not list are still people a case may name.
    people += [
        Candidate(m.id, m.name, str(m.email)) for m in _policy_people(policy) if m.id not in known
    ]
    return Respondents(named, [resolve(n, i, people) for i, n in enumerate(named)])


def _policy_people(policy: Policy) -> list[StaffMember]:
    people = {m.id: m for team in policy.teams.values() for m in team.members}
    for member in policy.staff:
        people.setdefault(member.id, member)
    return list(people.values())


async def announce_respondents(
    ctx: HandlerContext, case_id: UUID, reference: str, respondents: Respondents
) -> None:
    """Record how the case's respondents resolved and tell intake (ids only)."""
    if not respondents.named:
        return
    await case_facts.save_respondents(ctx.conn, case_id, respondents.named, respondents.resolutions)
    unresolved = sum(1 for r in respondents.resolutions if r.employee_id is None)
    await ctx.emit(
        CaseRespondentsResolved(
            reference=reference,
            respondents=respondents.resolutions,
            resolved_employee_ids=sorted(
                {r.employee_id for r in respondents.resolutions if r.employee_id}
            ),
            unresolved=unresolved,
        )
    )
    if unresolved:
        log.info("respondents need a person to resolve them", unresolved=unresolved)


async def require_conference(
    ctx: HandlerContext,
    policy: Policy,
    *,
    case_id: UUID,
    reference: str,
    team: str,
    injury: InjuryDetails | None,
    since: datetime,
    already_required: bool,
) -> bool:
    """Store the injury facts; emit `conference.required` when they make a conference
    mandatory and none was required for the case before. True when one is emitted."""
    reasons = conference_reasons(injury)
    emit = bool(reasons) and not already_required
    await case_facts.save_injury(
        ctx.conn, case_id, injury, conference_required_at=since if emit else None
    )
    if emit:
        due_by = policy.team_calendar(team).add_working(
            since, timedelta(hours=policy.conference_within_hours)
        )
        await ctx.emit(
            ConferenceRequired(reference=reference, reasons=list(reasons), due_by=due_by)
        )
    return emit


async def record_injury_facts(ctx: HandlerContext, policy: Policy) -> None:
    """Staff recorded the injury's facts (a later decision): a conference becomes mandatory
    if they now call for one and none was required yet."""
    recorded = payload_as(ctx.envelope, CaseInjuryFactsRecorded)
    if ctx.envelope.case_id is None:
        raise PermanentError("case.injury_facts_recorded without case_id")
    case = await sql.lock_case(ctx.conn, ctx.envelope.case_id)
    if case is None:  # its submission is not applied yet: the consumer retries
        raise LookupError(f"case {ctx.envelope.case_id} is not routed yet")
    required_at = await case_facts.conference_required_at(ctx.conn, case.case_id)
    emitted = await require_conference(
        ctx,
        policy,
        case_id=case.case_id,
        reference=case.reference,
        team=case.team,
        injury=recorded.injury,
        since=ctx.envelope.occurred_at,
        already_required=required_at is not None,
    )
    log.info("injury facts recorded", conference_required=emitted)
