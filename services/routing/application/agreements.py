"""Written agreements in independent case management: routing reads intake's agreement
facts, decides when an agreement comes into force, and runs its obligations' clocks and
the follow-up check-ins.

Facts consumed (each applied with the case row-locked, so replicas apply one case's
events one at a time):
- agreement.drafted: the version's terms and parties are stored; a new version replaces
  the last and its acceptances start afresh (an older or repeated version changes nothing);
- agreement.accepted: recorded per party role for that version. An acceptance of a
  superseded version (or by someone who is not that version's party) is logged and
  ignored. When both party roles accepted the latest version and it is not in force yet,
  `agreement.in_force` is published with every obligation's due and reminder instant and
  the follow-up check-ins (domain/agreements.py), and their timers are planned (replacing
  the unfired timers of a version in force before);
- agreement.obligation_met: the term is met; its timers are dropped (a met obligation
  never fires). Repeated: nothing more happens; an unknown agreement or term is logged
  and ignored.

Timers (`fire_due_agreement_timers`, in the routing timer loop) are claimed with their
agreement and case under FOR UPDATE SKIP LOCKED and marked fired in the transaction that
records their events: each reminder (agreement.obligation_due_soon), each overdue
obligation (agreement.obligation_overdue, naming whom it escalates to: the policy's ladder
level, skipping anyone conflicted) and each check-in (case.follow_up_due) is announced once
across replicas. Each names the case manager (the current holder of the `case_manager`
process role) and, for an obligation, its owner (the party's work contact). The
escalation does not raise the case's SLA escalation level: the case's own clocks still
escalate on their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from uuid import UUID

import asyncpg
import structlog

from services.routing.adapters import agreement_sql, sql
from services.routing.application.requests import locked_case
from services.routing.application.timer_batches import fire_batch
from services.routing.domain.agreements import PARTY_ROLES, acceptance_outcome, plan_in_force
from services.routing.domain.policy import Policy
from services.routing.domain.triage import escalation_target
from shared.consumer import Handler, HandlerContext
from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    AgreementAccepted,
    AgreementDrafted,
    AgreementInForce,
    AgreementObligationDueSoon,
    AgreementObligationMet,
    AgreementObligationOverdue,
    CaseFollowUpDue,
    EventPayload,
    Person,
    make_event,
    payload_as,
)

log = structlog.get_logger(__name__)
SERVICE = "routing"
CASE_MANAGER = "case_manager"


class AgreementNotDraftedYet(LookupError):
    """An acceptance of a version routing has not stored yet (its draft is still on the
    way): retried until it lands."""


async def record_draft(ctx: HandlerContext, policy: Policy) -> None:
    drafted = payload_as(ctx.envelope, AgreementDrafted)
    case = await locked_case(ctx)
    await agreement_sql.lock_agreement(ctx.conn, case.case_id, drafted.agreement_id)
    stored = await agreement_sql.save_draft(
        ctx.conn,
        agreement_id=drafted.agreement_id,
        case_id=case.case_id,
        version=drafted.version,
        terms=drafted.terms,
        parties=drafted.parties,
        drafted_at=ctx.envelope.occurred_at,
    )
    if not stored:
        log.warning(
            "agreement draft ignored: this or a later version is stored (or another case's)",
            agreement_id=str(drafted.agreement_id),
            version=drafted.version,
        )
        return
    if {p.role for p in drafted.parties} != PARTY_ROLES:
        # Both parties must accept: without one of each role it can never come into force.
        log.warning(
            "agreement drafted without one party of each role",
            agreement_id=str(drafted.agreement_id),
            roles=sorted(p.role for p in drafted.parties),
        )
    log.info("agreement drafted", agreement_id=str(drafted.agreement_id), version=drafted.version)


async def record_acceptance(ctx: HandlerContext, policy: Policy) -> None:
    accepted = payload_as(ctx.envelope, AgreementAccepted)
    case = await locked_case(ctx)
    agreement = await agreement_sql.lock_agreement(ctx.conn, case.case_id, accepted.agreement_id)
    if agreement is None or accepted.version > agreement.version:
        raise AgreementNotDraftedYet(
            f"agreement {accepted.agreement_id} version {accepted.version} not drafted yet"
        )
    fields = {"agreement_id": str(agreement.agreement_id), "version": accepted.version}
    if accepted.version < agreement.version:
        log.warning(
            "acceptance of a superseded agreement version ignored",
            latest=agreement.version,
            party_role=accepted.party_role,
            **fields,
        )
        return
    party = next((p for p in agreement.parties if p.role == accepted.party_role), None)
    if party is None or party.employee_id != accepted.employee_id:
        log.warning(
            "acceptance by someone who is not that party ignored",
            party_role=accepted.party_role,
            **fields,
        )
        return
    await agreement_sql.record_acceptance(
        ctx.conn,
        agreement_id=agreement.agreement_id,
        version=accepted.version,
        party_role=accepted.party_role,
        employee_id=accepted.employee_id,
        accepted_at=ctx.envelope.occurred_at,
        event_id=ctx.envelope.event_id,
    )
    outcome = acceptance_outcome(
        latest_version=agreement.version,
        in_force_version=agreement.in_force_version,
        version=accepted.version,
        accepted_roles=await agreement_sql.accepted_roles(
            ctx.conn, agreement.agreement_id, accepted.version
        ),
    )
    log.info("agreement accepted", party_role=accepted.party_role, outcome=outcome, **fields)
    if outcome == "in_force":
        await _put_in_force(ctx, policy, case, agreement)


async def _put_in_force(
    ctx: HandlerContext, policy: Policy, case: sql.CaseRow, agreement: agreement_sql.AgreementRow
) -> None:
    at = ctx.envelope.occurred_at
    plan = plan_in_force(
        policy.team_calendar(case.team),
        agreement.terms,
        in_force_at=at,
        due_soon_share=policy.agreements.obligation_due_soon_share,
        follow_up_offsets=policy.agreements.follow_up_after_working_days,
        met_term_ids=await agreement_sql.met_term_ids(
            ctx.conn, agreement.agreement_id, agreement.version
        ),
    )
    event = await ctx.emit(
        AgreementInForce(
            reference=case.reference,
            agreement_id=agreement.agreement_id,
            version=agreement.version,
            obligations=plan.obligations,
            follow_ups_at=plan.follow_ups_at,
        )
    )
    dropped = await agreement_sql.put_in_force(
        ctx.conn,
        agreement=agreement,
        at=at,
        event_id=event.event_id,
        obligations=plan.obligations,
        timers=plan.timers,
    )
    log.info(
        "agreement in force",
        agreement_id=str(agreement.agreement_id),
        version=agreement.version,
        obligations=len(plan.obligations),
        timers=len(plan.timers),
        replaced_timers=dropped,
    )


async def record_obligation_met(ctx: HandlerContext, policy: Policy) -> None:
    met = payload_as(ctx.envelope, AgreementObligationMet)
    case = await locked_case(ctx)
    fields = {"agreement_id": str(met.agreement_id), "term_id": str(met.term_id)}
    agreement = await agreement_sql.lock_agreement(ctx.conn, case.case_id, met.agreement_id)
    if agreement is None:
        log.warning("obligation met on an unknown agreement ignored", **fields)
        return
    newly, dropped = await agreement_sql.mark_met(
        ctx.conn,
        agreement_id=agreement.agreement_id,
        term_id=met.term_id,
        met_on=met.met_on,
        at=ctx.envelope.occurred_at,
        event_id=ctx.envelope.event_id,
    )
    if newly:
        log.info("obligation met", timers_cancelled=dropped, **fields)
    elif await agreement_sql.is_obligation(ctx.conn, agreement.agreement_id, met.term_id):
        log.info("obligation met already; repeated fact ignored", **fields)
    else:
        log.warning("obligation met names no tracked obligation of the agreement", **fields)


def agreement_handlers(policy: Policy) -> Mapping[str, Handler]:
    """The handlers of the agreement facts routing subscribes to."""

    def with_policy(handle: Callable[[HandlerContext, Policy], Awaitable[None]]) -> Handler:
        async def handler(ctx: HandlerContext) -> None:
            await handle(ctx, policy)

        return handler

    return {
        "agreement.drafted": with_policy(record_draft),
        "agreement.accepted": with_policy(record_acceptance),
        "agreement.obligation_met": with_policy(record_obligation_met),
    }


# --- Timers ------------------------------------------------------------------------------


async def fire_due_agreement_timers(
    pool: asyncpg.Pool,
    policy: Policy,
    *,
    on_commit: Callable[[], None] | None = None,
    batch_size: int = 100,
) -> int:
    """Fire one batch of due obligation reminders, overdue obligations and follow-up
    check-ins; return how many were claimed."""
    return await fire_batch(
        pool,
        claim=agreement_sql.claim_due_timers,
        fire=lambda conn, timer: _fire(conn, policy, timer),
        mark=lambda conn, timer, event_id: agreement_sql.mark_fired(conn, timer.id, event_id),
        on_commit=on_commit,
        batch_size=batch_size,
    )


def _timer_event(case: sql.CaseRow, payload: EventPayload) -> Envelope:
    event = make_event(
        payload,
        producer=SERVICE,
        actor=Actor(type="system", id="routing-timers"),
        case_id=case.case_id,
    )
    if case.correlation_id is not None:
        event = event.model_copy(update={"correlation_id": case.correlation_id})
    return event


async def case_manager(conn: asyncpg.Connection, policy: Policy, case_id: UUID) -> Person | None:
    """The work contact of the case manager now on the case: the policy's staff entry,
    else the directory's; None when nobody holds the role (or they are unknown)."""
    holder = await agreement_sql.role_holder(conn, case_id, CASE_MANAGER)
    if holder is None:
        return None
    member = policy.person(holder)
    if member is not None:
        return Person(id=member.id, name=member.name, email=member.email)
    contact = await agreement_sql.directory_contact(conn, holder)
    if contact is None:
        log.error("case manager unknown to the policy and the directory", staff_id=holder)
        return None
    return Person(id=holder, name=contact[0], email=contact[1])


async def _fire(
    conn: asyncpg.Connection, policy: Policy, timer: agreement_sql.DueAgreementTimer
) -> Envelope | None:
    case = await sql.lock_case(conn, timer.case_id)  # locked by the claim already
    agreement = await agreement_sql.lock_agreement(conn, timer.case_id, timer.agreement_id)
    if case is None or agreement is None or agreement.in_force_version != timer.version:
        return None  # stale: a later version came into force after the claim's snapshot
    manager = await case_manager(conn, policy, case.case_id)
    if timer.kind == "follow_up":
        assert timer.check_in is not None
        log.info("follow-up check-in due", agreement_id=str(agreement.agreement_id))
        return _timer_event(
            case,
            CaseFollowUpDue(
                reference=case.reference,
                agreement_id=agreement.agreement_id,
                check_in=timer.check_in,
                due_at=timer.due_at,
                case_manager=manager,
            ),
        )
    assert timer.term_id is not None
    obligation = await agreement_sql.lock_obligation(
        conn, agreement.agreement_id, timer.version, timer.term_id
    )
    if obligation is None or obligation.met_on is not None or obligation.due_at is None:
        return None  # met after the claim's snapshot
    party = next((p for p in agreement.parties if p.role == obligation.owner_role), None)
    fields = {
        "reference": case.reference,
        "agreement_id": agreement.agreement_id,
        "term_id": obligation.term_id,
        "owner_role": obligation.owner_role,
        "owner": Person(id=party.employee_id, name=party.name, email=party.email)
        if party
        else None,
        "due_at": obligation.due_at,
        "case_manager": manager,
    }
    if timer.kind == "due_soon":
        if obligation.due_at <= utcnow():
            return None  # fired late, past the due instant: the overdue timer speaks
        log.info("obligation due soon", term_id=str(obligation.term_id))
        return _timer_event(case, AgreementObligationDueSoon(**fields))
    target = await _escalation(conn, policy, case, agreement, manager)
    overdue = _timer_event(
        case,
        AgreementObligationOverdue(**fields, escalated_to=target[1] if target else None),
    )
    # The overdue announcement names whom it escalates to, as a task's and a conference
    # action's do: notifications mails them once, the history and the audit show it.
    log.info("obligation overdue", term_id=str(obligation.term_id), escalated=bool(target))
    return overdue


async def _escalation(
    conn: asyncpg.Connection,
    policy: Policy,
    case: sql.CaseRow,
    agreement: agreement_sql.AgreementRow,
    manager: Person | None,
) -> tuple[int, Person] | None:
    """Who an overdue obligation escalates to: the ladder level the policy names, passed
    up past anyone conflicted (respondents, either party and their management chains,
    declared conflicts) and the case manager themself."""
    parties = [p.employee_id for p in agreement.parties]
    conflicted = await sql.conflicted_ids(conn, [*case.respondent_ids, *parties])
    conflicted |= await agreement_sql.declared_conflicts(conn, case.case_id)
    if manager is not None:
        conflicted |= {manager.id}
    target = escalation_target(
        policy,
        team=case.team,
        level=policy.agreements.obligation_escalation_level,
        conflicted=conflicted,
    )
    if target is None:
        log.error("no escalation target for an overdue obligation", case_id=str(case.case_id))
        return None
    level, member = target
    return level, Person(id=member.id, name=member.name, email=member.email)
