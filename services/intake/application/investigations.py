"""An investigation's facts, recorded by staff who may act on the case (JSON API, portal).

Every door follows the agent actions' path (`agent_actions.case_to_act_on`): a staff role
(403), a case the caller may read (404, as for a missing case), not their own case (403),
not closed (409); then, under the case's row lock, the case must be in the investigation
process and not ended, in the stage the fact needs (409 naming it). The fact's row, its
event and the history entry are written in one transaction. Routing reads the facts to
judge stage requirements; it decides the outcome's approval (case.outcome_approved or
case.request_refused, projected by application/investigation_projection.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog

from services.intake.adapters import investigation_sql as store
from services.intake.adapters import process_sql
from services.intake.application import agent_actions, erased_cases, history
from services.intake.application.agent_actions import ActionAccepted
from services.intake.application.cases import NewAttachment
from services.intake.application.documents import StaffDocuments, record_documents, staff_files
from services.intake.domain.investigations import (
    FINDING_STAGES,
    INVESTIGATION_ROLES,
    AllegationInput,
    EvidenceItemInput,
    FindingInput,
    InterimMeasureInput,
    InterviewInput,
    StatementInput,
    process_conflict,
)
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    EventPayload,
    Interviewee,
    InvestigationAllegationRecorded,
    InvestigationEvidenceAdded,
    InvestigationFindingRecorded,
    InvestigationInterimMeasureRecorded,
    InvestigationInterviewScheduled,
    InvestigationStatementRecorded,
    Person,
    make_event,
)
from shared.service import Runtime
from shared.uow import unit_of_work

log = structlog.get_logger(__name__)

Case = dict[str, Any]
Store = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]
# Given the locked case, the fact's event payload and what to store with it.
Prepare = Callable[[asyncpg.Connection, Case], Awaitable[tuple[EventPayload, Store]]]
DEFAULT_TIME_ZONE = "UTC"


@dataclass(frozen=True)
class FactAccepted:
    """A recorded fact: the accepted event and the new fact's id."""

    accepted: ActionAccepted
    fact_id: UUID


def invalid(detail: str) -> Refused:
    return Refused("invalid", detail)


async def record_fact(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    *,
    action: str,
    kind: str,
    prepare: Prepare,
    stages: tuple[str, ...] = (),
) -> ActionAccepted:
    """The one write path of the staff doors (see the module's docstring)."""
    agent_actions.require_role(principal, INVESTIGATION_ROLES, action)
    async with unit_of_work(runtime) as uow:
        case = await agent_actions.case_to_act_on(uow.conn, principal, case_id, None)
        reason = process_conflict(await process_sql.case_process(uow.conn, case_id), stages)
        if reason:
            raise agent_actions.conflict(reason)
        payload, save = await prepare(uow.conn, case)
        event = make_event(
            payload,
            producer="intake",
            actor=Actor(type="agent", id=principal.subject),
            case_id=case_id,
        )
        await erased_cases.refuse_new_personal_data(uow.conn, case_id, event)
        await save(uow.conn, event)
        await uow.emit(event)
        await history.record_written(uow.conn, event, kind, actor_name=principal.name)
    structlog.contextvars.bind_contextvars(case_id=str(case_id), event_id=str(event.event_id))
    log.info("investigation fact recorded", event_type=event.event_type, by=principal.subject)
    return ActionAccepted(case_id, case["reference"], event.event_id, event.event_type)


async def _known_allegations(conn: asyncpg.Connection, case_id: UUID, ids: list[UUID]) -> None:
    known = {a["allegation_id"] for a in await store.list_allegations(conn, case_id)}
    unknown = [str(i) for i in ids if i not in known]
    if unknown:
        raise invalid(f"allegation_ids: {unknown[0]} is not an allegation of this case")


async def record_allegation(
    runtime: Runtime, principal: Principal, case_id: UUID, body: AllegationInput
) -> FactAccepted:
    """investigation.allegation_recorded."""
    allegation_id = uuid4()

    async def prepare(conn: asyncpg.Connection, case: Case) -> tuple[EventPayload, Store]:
        async def save(conn: asyncpg.Connection, event: Envelope) -> None:
            await store.insert_allegation(
                conn,
                allegation_id=allegation_id,
                case_id=case_id,
                allegation_type=body.allegation_type,
                summary=body.summary,
                respondent_employee_id=body.respondent_employee_id,
                respondent_name=body.respondent_name,
                occurred_on=body.occurred_on,
                recorded_by=principal.subject,
                recorded_at=event.occurred_at,
            )

        payload = InvestigationAllegationRecorded(
            reference=case["reference"],
            allegation_id=allegation_id,
            allegation_type=body.allegation_type,
            summary=body.summary,
            respondent_employee_id=body.respondent_employee_id,
            respondent_name=body.respondent_name,
            occurred_on=body.occurred_on,
        )
        return payload, save

    accepted = await record_fact(
        runtime,
        principal,
        case_id,
        action="recording an allegation",
        kind="allegation_recorded",
        prepare=prepare,
    )
    return FactAccepted(accepted, allegation_id)


async def record_interim_measure(
    runtime: Runtime, principal: Principal, case_id: UUID, body: InterimMeasureInput
) -> FactAccepted:
    """investigation.interim_measure_recorded."""
    measure_id = uuid4()

    async def prepare(conn: asyncpg.Connection, case: Case) -> tuple[EventPayload, Store]:
        async def save(conn: asyncpg.Connection, event: Envelope) -> None:
            await store.insert_measure(
                conn,
                measure_id=measure_id,
                case_id=case_id,
                kind=body.kind,
                description=body.description,
                applies_to=list(body.applies_to),
                recorded_by=principal.subject,
                recorded_at=event.occurred_at,
            )

        payload = InvestigationInterimMeasureRecorded(
            reference=case["reference"],
            measure_id=measure_id,
            kind=body.kind,
            description=body.description,
            applies_to=list(body.applies_to),
        )
        return payload, save

    accepted = await record_fact(
        runtime,
        principal,
        case_id,
        action="recording an interim measure",
        kind="interim_measure_recorded",
        prepare=prepare,
    )
    return FactAccepted(accepted, measure_id)


async def interviewer_of(conn: asyncpg.Connection, principal: Principal) -> Person:
    """The signed-in staff member's work contact: their identity's, else the roster's
    (409 when neither has an address)."""
    if principal.name and principal.email:
        return Person(id=principal.subject, name=principal.name, email=principal.email)
    contact = await store.staff_contact(conn, principal.subject)
    if contact is None:
        raise agent_actions.conflict(
            f"no work contact on file for {principal.subject}: the interviewer's address is"
            " needed for the invitation"
        )
    return Person(id=principal.subject, name=contact["name"], email=contact["email"])


async def schedule_interview(
    runtime: Runtime, principal: Principal, case_id: UUID, body: InterviewInput
) -> FactAccepted:
    """investigation.interview_scheduled (the interviewer is the caller)."""
    interview_id = uuid4()

    async def prepare(conn: asyncpg.Connection, case: Case) -> tuple[EventPayload, Store]:
        interviewer = await interviewer_of(conn, principal)
        process = await process_sql.case_process(conn, case_id)
        # The process's policy, as routing announced it (case.process_assigned).
        companion_allowed = bool(process["companion_allowed"]) if process else True
        person = body.interviewee
        payload = InvestigationInterviewScheduled(
            reference=case["reference"],
            interview_id=interview_id,
            interviewee=Interviewee(
                role=person.role,
                name=person.name,
                email=str(person.email),
                employee_id=person.employee_id,
            ),
            scheduled_for=body.scheduled_for,
            duration_minutes=body.duration_minutes,
            time_zone=body.time_zone or DEFAULT_TIME_ZONE,
            location=body.location,
            video_link=body.video_link,
            companion_allowed=companion_allowed,
            interviewer=interviewer,
        )

        async def save(conn: asyncpg.Connection, event: Envelope) -> None:
            await store.insert_interview(
                conn,
                {
                    "interview_id": interview_id,
                    "case_id": case_id,
                    "interviewee_role": person.role,
                    "interviewee_name": person.name,
                    "interviewee_email": str(person.email),
                    "interviewee_employee_id": person.employee_id,
                    "scheduled_for": body.scheduled_for,
                    "duration_minutes": body.duration_minutes,
                    "time_zone": payload.time_zone,
                    "location": body.location,
                    "video_link": body.video_link,
                    "companion_allowed": payload.companion_allowed,
                    "interviewer": interviewer.model_dump(mode="json"),
                    "recorded_by": principal.subject,
                    "recorded_at": event.occurred_at,
                },
            )

        return payload, save

    accepted = await record_fact(
        runtime,
        principal,
        case_id,
        action="scheduling an interview",
        kind="interview_scheduled",
        prepare=prepare,
    )
    return FactAccepted(accepted, interview_id)


async def record_statement(
    runtime: Runtime, principal: Principal, case_id: UUID, body: StatementInput
) -> FactAccepted:
    """investigation.statement_recorded (its allegations and interview must be the case's)."""
    statement_id = uuid4()

    async def prepare(conn: asyncpg.Connection, case: Case) -> tuple[EventPayload, Store]:
        await _known_allegations(conn, case_id, list(body.allegation_ids))
        if body.interview_id is not None:
            interviews = {i["interview_id"] for i in await store.list_interviews(conn, case_id)}
            if body.interview_id not in interviews:
                raise invalid(f"interview_id: {body.interview_id} is not an interview of this case")

        async def save(conn: asyncpg.Connection, event: Envelope) -> None:
            await store.insert_statement(
                conn,
                {
                    **body.model_dump(exclude={"allegation_ids"}),
                    "allegation_ids": [str(a) for a in body.allegation_ids],
                    "statement_id": statement_id,
                    "case_id": case_id,
                    "recorded_by": principal.subject,
                    "recorded_at": event.occurred_at,
                },
            )

        payload = InvestigationStatementRecorded(
            reference=case["reference"], statement_id=statement_id, **body.model_dump()
        )
        return payload, save

    accepted = await record_fact(
        runtime,
        principal,
        case_id,
        action="recording a statement",
        kind="statement_recorded",
        prepare=prepare,
    )
    return FactAccepted(accepted, statement_id)


async def add_evidence(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    body: EvidenceItemInput,
    upload: NewAttachment | None = None,
) -> FactAccepted:
    """investigation.evidence_added: a document (the file stored as the case's evidence,
    opened like its other documents, SHA-256 computed here: `body.sha256` must then be
    absent or equal) or an item (its description and optional SHA-256)."""
    evidence_id = uuid4()

    async def prepare(conn: asyncpg.Connection, case: Case) -> tuple[EventPayload, Store]:
        await _known_allegations(conn, case_id, list(body.allegation_ids))
        attachment = None
        sha256 = body.sha256
        if upload is not None:
            about = StaffDocuments(evidence=True, description=body.description)
            stored, _ = await record_documents(
                conn, principal, case, staff_files(principal, (upload,), about)
            )
            attachment = stored[0]
            if sha256 is not None and sha256 != attachment.sha256:
                raise invalid("sha256: does not match the file's SHA-256")
            sha256 = attachment.sha256
        collected_at = utcnow()
        payload = InvestigationEvidenceAdded(
            reference=case["reference"],
            evidence_id=evidence_id,
            kind="document" if attachment else "item",
            description=body.description,
            source=body.source,
            collected_by=principal.subject,
            collected_at=collected_at,
            sha256=sha256,
            attachment=attachment,
            allegation_ids=list(body.allegation_ids),
        )

        async def save(conn: asyncpg.Connection, event: Envelope) -> None:
            await store.insert_evidence(
                conn,
                {
                    "evidence_id": evidence_id,
                    "case_id": case_id,
                    "kind": payload.kind,
                    "description": body.description,
                    "source": body.source,
                    "collected_by": principal.subject,
                    "collected_at": collected_at,
                    "sha256": sha256,
                    "attachment": attachment.model_dump(mode="json") if attachment else None,
                    "allegation_ids": [str(a) for a in body.allegation_ids],
                },
            )

        return payload, save

    accepted = await record_fact(
        runtime,
        principal,
        case_id,
        action="adding evidence",
        kind="evidence_added",
        prepare=prepare,
    )
    return FactAccepted(accepted, evidence_id)


async def record_finding(
    runtime: Runtime, principal: Principal, case_id: UUID, body: FindingInput
) -> FactAccepted:
    """investigation.finding_recorded (stage findings or outcome); it supersedes the
    allegation's current finding, which is kept."""
    finding_id = uuid4()

    async def prepare(conn: asyncpg.Connection, case: Case) -> tuple[EventPayload, Store]:
        await _known_allegations(conn, case_id, [body.allegation_id])

        async def save(conn: asyncpg.Connection, event: Envelope) -> None:
            await store.record_finding(
                conn,
                finding_id=finding_id,
                case_id=case_id,
                allegation_id=body.allegation_id,
                finding=body.finding,
                reasoning=body.reasoning,
                recorded_by=principal.subject,
                recorded_at=event.occurred_at,
            )

        payload = InvestigationFindingRecorded(
            reference=case["reference"], finding_id=finding_id, **body.model_dump()
        )
        return payload, save

    accepted = await record_fact(
        runtime,
        principal,
        case_id,
        action="recording a finding",
        kind="finding_recorded",
        prepare=prepare,
        stages=FINDING_STAGES,
    )
    return FactAccepted(accepted, finding_id)
