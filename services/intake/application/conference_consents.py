"""Consents for a case's conferences: recorded by staff who may act on the case, or by the
worker (the case's reporter) for themselves; published as conference.consent_recorded and
kept in intake.conference_consents in the same transaction (intake does not consume its
own events). Routing decides what a consent unlocks (inviting a treating practitioner).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.intake.adapters import conference_sql, sql
from services.intake.application import actions, agent_actions, history
from services.intake.domain.case import case_access, is_reporter, status_conflict
from services.intake.domain.conferences import CONFERENCE_ROLES, ConsentInput
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.envelope import Actor, utcnow
from shared.events import ConferenceConsentRecorded, make_event
from shared.service import Runtime
from shared.uow import unit_of_work


async def record_consent(
    runtime: Runtime, principal: Principal, case_id: UUID, body: ConsentInput
) -> agent_actions.ActionAccepted:
    """Record a consent and publish conference.consent_recorded. Staff who may act on the
    case record any (recorded_via "staff"); the case's own reporter gives only their own
    (given_by "worker", recorded_via "portal"). Anyone else: 404, as for a missing case."""
    async with unit_of_work(runtime) as uow:
        case = await sql.lock_case_for_action(uow.conn, case_id)
        if case is None:
            raise actions.not_found()
        facts = actions.facts(case)
        as_worker = is_reporter(principal, facts)
        if not as_worker and not (
            principal.has_any(*CONFERENCE_ROLES) and case_access(principal, facts).allowed
        ):
            raise actions.not_found()
        if as_worker and body.given_by != "worker":
            raise Refused("invalid", 'given_by: the worker gives only their own ("worker")')
        reason = status_conflict(case["status"])
        if reason:
            raise agent_actions.conflict(reason)
        recorded_at = utcnow()
        via = "portal" if as_worker else "staff"
        event = make_event(
            ConferenceConsentRecorded(
                reference=case["reference"],
                consent=body.consent,
                given_by=body.given_by,
                granted=body.granted,
                recorded_via=via,
                basis=body.basis,
                recorded_at=recorded_at,
            ),
            producer="intake",
            # The worker is named by their employee id, as on every other event an
            # employee causes (submitter_actor); staff by their subject.
            actor=(
                Actor(type="employee", id=principal.employee_id or principal.subject)
                if as_worker
                else Actor(type="agent", id=principal.subject)
            ),
            case_id=case_id,
        )
        # Intake does not consume its own events: the consent is kept here directly.
        await conference_sql.record_consent(
            uow.conn,
            case_id=case_id,
            consent=body.consent,
            given_by=body.given_by,
            granted=body.granted,
            recorded_via=via,
            basis=body.basis,
            recorded_by=principal.name or principal.subject,
            recorded_at=recorded_at,
            event_id=event.event_id,
        )
        await uow.emit(event)
        await history.record_written(
            uow.conn,
            event,
            "consent_recorded",
            actor_name=principal.name,
            consent=body.consent,
            given_by=body.given_by,
            granted=body.granted,
            recorded_via=via,
        )
    return agent_actions.ActionAccepted(
        case_id, case["reference"], event.event_id, event.event_type
    )


async def list_consents(runtime: Runtime, case_id: UUID) -> list[dict[str, Any]]:
    return await conference_sql.list_consents(runtime.pool, case_id)
