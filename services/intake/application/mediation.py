"""Independent case management (mediation): the case manager's doors, each party's doors,
the read views and the projection of routing's agreement clocks.

Staff doors go through the agent actions' one path (`agent_actions.require_role` and
`case_to_act_on`, the steps of `agent_actions._act`, which builds its event before it can
read the case's mediation rows): a staff role (403), a case the caller may read (404, as
for a missing case), not their own case (403), not closed (409). Then, in the same
transaction: the caller must hold the case's `case_manager` process role or be an HR
manager (403); the case must be in the `case_management` process and not ended (409).
Each door records its fact in intake's tables and publishes its event (mediation.*,
agreement.drafted, agreement.obligation_met) in that transaction: these are facts, not
requests; routing reads them to judge its stage requirements and runs the agreement's
clocks.

Party doors (the employee and the employer's representative, signed in as employees
whose employee_id is a party's): accept the latest ground rules and the current version
of the agreement for their own role. Anyone else: 404, as for a missing case.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.intake.adapters import conference_sql, mediation_sql, process_sql, sql
from services.intake.adapters import documents as files
from services.intake.application import actions, agent_actions, erased_cases, history
from services.intake.application.actions import Client
from services.intake.application.cases import NewAttachment
from services.intake.application.conferences import default_time_zone
from services.intake.application.documents import StaffDocuments, record_documents, staff_files
from services.intake.domain import mediation as rules
from services.intake.domain.case import CLOSED_STATUSES, is_reporter
from services.intake.domain.mediation import (
    MEDIATION_ROLES,
    AgreementAcceptanceInput,
    AgreementInput,
    AssessmentInput,
    GroundRulesInput,
    MeetingInput,
    MeetingRecordInput,
    ObligationMetInput,
)
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.consumer import Handler, HandlerContext
from shared.envelope import Actor, Envelope
from shared.events import (
    AgreementAccepted,
    AgreementDrafted,
    AgreementInForce,
    AgreementObligationDueSoon,
    AgreementObligationMet,
    AgreementObligationOverdue,
    AgreementTerm,
    Attachment,
    CaseFollowUpDue,
    EventPayload,
    MediationAssessmentRecorded,
    MediationGroundRulesAccepted,
    MediationGroundRulesProposed,
    MediationMeetingHeld,
    MediationMeetingScheduled,
    MediationParty,
    Person,
    make_event,
    payload_as,
)
from shared.service import Runtime
from shared.uow import unit_of_work

Case = dict[str, Any]
Accepted = agent_actions.ActionAccepted
MAX_DOCUMENTS = 20


def forbidden(detail: str) -> Refused:
    return Refused("forbidden", detail)


def _ids(principal: Principal) -> set[str]:
    return {i for i in (principal.subject, principal.employee_id) if i}


def holds_case_manager(principal: Principal, holders: Mapping[str, Any]) -> bool:
    holder = holders.get(rules.CASE_MANAGER_ROLE)
    return holder is not None and holder["staff_id"] in _ids(principal)


async def _may_record(conn: asyncpg.Connection, principal: Principal, case_id: UUID) -> None:
    """The case manager role holder or an HR manager (403), on a case in case management
    that has not ended (409)."""
    holders = await process_sql.role_holders(conn, case_id)
    if not holds_case_manager(principal, holders) and not principal.has_any("hr_manager"):
        raise forbidden(
            "recording independent case management needs the case manager role on this"
            " case (or the hr_manager role)"
        )
    reason = rules.process_conflict(await process_sql.case_process(conn, case_id))
    if reason:
        raise agent_actions.conflict(reason)


# Given the locked transaction and the case: the event's payload, and what to store once
# the event (its id and instant) exists.
Store = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]
Prepare = Callable[[asyncpg.Connection, Case], Awaitable[tuple[EventPayload, Store]]]


async def _staff_act(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    *,
    action: str,
    kind: str,
    prepare: Prepare,
    summary: dict[str, Any],
) -> Accepted:
    """One staff door, on the agent actions' path (role 403, readable 404, not one's own
    case 403, not closed 409), then the mediation checks (`_may_record`), then `prepare`
    (more refusals; the payload) and the event, its row(s) and history in one
    transaction."""
    agent_actions.require_role(principal, MEDIATION_ROLES, action)
    async with unit_of_work(runtime) as uow:
        case = await agent_actions.case_to_act_on(uow.conn, principal, case_id, None)
        await _may_record(uow.conn, principal, case_id)
        payload, store = await prepare(uow.conn, case)
        event = make_event(
            payload,
            producer="intake",
            actor=Actor(type="agent", id=principal.subject),
            case_id=case_id,
        )
        await erased_cases.refuse_new_personal_data(uow.conn, case_id, event)
        await store(uow.conn, event)
        await uow.emit(event)
        await history.record_written(uow.conn, event, kind, actor_name=principal.name, **summary)
    return Accepted(case_id, case["reference"], event.event_id, event.event_type)


def _party(row: Mapping[str, Any]) -> MediationParty:
    return MediationParty.model_validate(row)


async def _parties(conn: asyncpg.Connection, case_id: UUID) -> list[MediationParty]:
    assessed = await mediation_sql.assessments(conn, case_id)
    missing = rules.party_roles_missing(assessed)
    if missing:
        labels = ", ".join(rules.PARTY_LABELS[m].lower() for m in missing)
        raise agent_actions.conflict(f"both parties must be assessed first (missing: {labels})")
    return [_party(p) for p in rules.parties_of(assessed)]


# --- the case manager's doors --------------------------------------------------------------


async def record_assessment(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    body: AssessmentInput,
    uploads: tuple[NewAttachment, ...] = (),
) -> Accepted:
    """mediation.assessment_recorded: the party's account, desired outcomes and the case's
    documents named (422 `documents` for an id that is not a file of this case). `uploads`
    (checked files, at most 5) are stored on the case first, as staff's documents
    (`case.document_added` each, in the same transaction), and named too."""
    if len(body.documents) + len(uploads) > MAX_DOCUMENTS:
        raise Refused("invalid", f"documents: at most {MAX_DOCUMENTS} documents")

    async def prepare(conn: asyncpg.Connection, case: Case) -> tuple[EventPayload, Store]:
        documents: list[Attachment] = []
        if uploads:
            about = StaffDocuments(description=f"Initial assessment: {body.party.role}")
            stored, _ = await record_documents(
                conn, principal, case, staff_files(principal, uploads, about)
            )
            documents.extend(stored)
        for attachment_id in body.documents:
            found = await files.get_document(conn, case_id, attachment_id)
            if found is None:
                raise Refused("invalid", f"documents: {attachment_id} is not a file of this case")
            documents.append(
                Attachment(
                    attachment_id=attachment_id,
                    filename=found["filename"],
                    content_type=found["content_type"],
                    size=found["size"],
                    sha256=found["sha256"],
                )
            )
        party = MediationParty(
            role=body.party.role,
            employee_id=body.party.employee_id,
            name=body.party.name,
            email=str(body.party.email),
        )

        async def store(c: asyncpg.Connection, event: Envelope) -> None:
            await mediation_sql.upsert_assessment(
                c,
                case_id,
                party=party.model_dump(mode="json"),
                account=body.account,
                desired_outcomes=body.desired_outcomes,
                documents=[d.model_dump(mode="json") for d in documents],
                recorded_by=principal.subject,
                recorded_at=event.occurred_at,
                event_id=event.event_id,
            )

        other = await mediation_sql.assessments(conn, case_id)
        for row in other:
            if row["party_role"] != party.role and row["employee_id"] == party.employee_id:
                raise Refused(
                    "invalid", "party: employee_id is already the other party of this case"
                )
        return (
            MediationAssessmentRecorded(
                reference=case["reference"],
                party=party,
                account=body.account,
                desired_outcomes=body.desired_outcomes,
                documents=documents,
            ),
            store,
        )

    return await _staff_act(
        runtime,
        principal,
        case_id,
        action="recording a party's assessment",
        kind="mediation_assessment_recorded",
        prepare=prepare,
        summary={"party_role": body.party.role, "employee_id": body.party.employee_id},
    )


async def propose_ground_rules(
    runtime: Runtime, principal: Principal, case_id: UUID, body: GroundRulesInput
) -> tuple[Accepted, UUID]:
    """mediation.ground_rules_proposed to both assessed parties (409 until both are)."""
    ground_rules_id = uuid4()

    async def prepare(conn: asyncpg.Connection, case: Case) -> tuple[EventPayload, Store]:
        parties = await _parties(conn, case_id)

        async def store(c: asyncpg.Connection, event: Envelope) -> None:
            await mediation_sql.insert_ground_rules(
                c,
                ground_rules_id=ground_rules_id,
                case_id=case_id,
                rules=body.rules,
                parties=[p.model_dump(mode="json") for p in parties],
                proposed_by=principal.subject,
                proposed_at=event.occurred_at,
            )

        return (
            MediationGroundRulesProposed(
                reference=case["reference"],
                ground_rules_id=ground_rules_id,
                rules=body.rules,
                parties=parties,
            ),
            store,
        )

    accepted = await _staff_act(
        runtime,
        principal,
        case_id,
        action="proposing ground rules",
        kind="mediation_ground_rules_proposed",
        prepare=prepare,
        summary={"ground_rules_id": str(ground_rules_id), "rules": len(body.rules)},
    )
    return accepted, ground_rules_id


async def _work_contact(conn: asyncpg.Connection, principal: Principal, case_id: UUID) -> Person:
    """The signed-in member of staff's work contact: routing's roster, else their process
    role's row, else the address on their token (409 when none is known)."""
    for staff_id in (principal.employee_id, principal.subject):
        found = await conference_sql.staff_contact(conn, staff_id)
        if found is not None:
            return Person(id=found["staff_id"], name=found["name"], email=found["email"])
    holders = await process_sql.role_holders(conn, case_id)
    holder = holders.get(rules.CASE_MANAGER_ROLE)
    if holder is not None and holder["staff_id"] in _ids(principal):
        return Person(id=holder["staff_id"], name=holder["name"], email=holder["email"])
    if principal.email:
        return Person(
            id=principal.employee_id or principal.subject,
            name=principal.name or principal.subject,
            email=principal.email,
        )
    raise agent_actions.conflict("your work contact is not known (not on routing's roster)")


async def schedule_meeting(
    runtime: Runtime, principal: Principal, case_id: UUID, body: MeetingInput
) -> tuple[Accepted, UUID]:
    """mediation.meeting_scheduled with both parties and the signed-in case manager."""
    meeting_id = uuid4()
    zone = body.time_zone or await default_time_zone(runtime, case_id)

    async def prepare(conn: asyncpg.Connection, case: Case) -> tuple[EventPayload, Store]:
        parties = await _parties(conn, case_id)
        manager = await _work_contact(conn, principal, case_id)

        async def store(c: asyncpg.Connection, event: Envelope) -> None:
            await mediation_sql.insert_meeting(
                c,
                meeting_id=meeting_id,
                case_id=case_id,
                scheduled_for=body.scheduled_for,
                duration_minutes=body.duration_minutes,
                time_zone=zone,
                location=body.location,
                video_link=body.video_link,
                case_manager=manager.model_dump(mode="json"),
                scheduled_at=event.occurred_at,
            )

        return (
            MediationMeetingScheduled(
                reference=case["reference"],
                meeting_id=meeting_id,
                scheduled_for=body.scheduled_for,
                duration_minutes=body.duration_minutes,
                time_zone=zone,
                location=body.location,
                video_link=body.video_link,
                parties=parties,
                case_manager=manager,
            ),
            store,
        )

    accepted = await _staff_act(
        runtime,
        principal,
        case_id,
        action="scheduling a meeting",
        kind="mediation_meeting_scheduled",
        prepare=prepare,
        summary={"meeting_id": str(meeting_id), "scheduled_for": body.scheduled_for.isoformat()},
    )
    return accepted, meeting_id


async def record_meeting(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    meeting_id: UUID,
    body: MeetingRecordInput,
) -> Accepted:
    """mediation.meeting_held: the shared summary and the privileged notes (404 for a
    meeting not on the case; 409 once it is recorded)."""

    async def prepare(conn: asyncpg.Connection, case: Case) -> tuple[EventPayload, Store]:
        meeting = await mediation_sql.lock_meeting(conn, case_id, meeting_id)
        if meeting is None:
            raise Refused("not_found", "no such meeting on this case")
        if meeting["held_at"] is not None:
            raise agent_actions.conflict("this meeting is already recorded as held")

        async def store(c: asyncpg.Connection, event: Envelope) -> None:
            await mediation_sql.record_meeting(
                c,
                meeting_id,
                held_at=body.held_at,
                discussed=body.discussed,
                proposals=body.proposals,
                privileged_notes=body.privileged_notes,
                recorded_at=event.occurred_at,
            )

        return (
            MediationMeetingHeld(
                reference=case["reference"],
                meeting_id=meeting_id,
                held_at=body.held_at,
                discussed=body.discussed,
                proposals=body.proposals,
                privileged_notes=body.privileged_notes,
            ),
            store,
        )

    return await _staff_act(
        runtime,
        principal,
        case_id,
        action="recording a meeting",
        kind="mediation_meeting_held",
        prepare=prepare,
        summary={"meeting_id": str(meeting_id), "held_at": body.held_at.isoformat()},
    )


async def draft_agreement(
    runtime: Runtime, principal: Principal, case_id: UUID, body: AgreementInput
) -> tuple[Accepted, UUID, int, list[UUID]]:
    """agreement.drafted: the next version (previous + 1) of the case's one agreement, in
    the `agreement` stage only (409); a new version clears every acceptance. Returns the
    agreement's id, the version and the terms' ids in the order given."""
    term_ids = [uuid4() for _ in body.terms]
    drafted: dict[str, Any] = {}

    async def prepare(conn: asyncpg.Connection, case: Case) -> tuple[EventPayload, Store]:
        reason = rules.agreement_stage_conflict(await process_sql.case_process(conn, case_id))
        if reason:
            raise agent_actions.conflict(reason)
        parties = await _parties(conn, case_id)
        current = await mediation_sql.agreement(conn, case_id, lock=True)
        if current is not None and current.get("in_force_version") is not None:
            raise agent_actions.conflict("the agreement is already in force")
        agreement_id = current["agreement_id"] if current else uuid4()
        version = (current["version"] + 1) if current else 1
        drafted.update(agreement_id=agreement_id, version=version)
        terms = [
            AgreementTerm(term_id=tid, text=t.text, owner_role=t.owner_role, due_on=t.due_on)
            for tid, t in zip(term_ids, body.terms, strict=True)
        ]

        async def store(c: asyncpg.Connection, event: Envelope) -> None:
            await mediation_sql.save_draft(
                c,
                agreement_id=agreement_id,
                case_id=case_id,
                version=version,
                terms=[t.model_dump(mode="json") for t in terms],
                parties=[p.model_dump(mode="json") for p in parties],
                drafted_by=principal.subject,
                drafted_at=event.occurred_at,
            )

        return (
            AgreementDrafted(
                reference=case["reference"],
                agreement_id=agreement_id,
                version=version,
                terms=terms,
                parties=parties,
            ),
            store,
        )

    accepted = await _staff_act(
        runtime,
        principal,
        case_id,
        action="drafting the agreement",
        kind="agreement_drafted",
        prepare=prepare,
        summary={"terms": len(body.terms)},
    )
    return accepted, drafted["agreement_id"], drafted["version"], term_ids


async def obligation_met(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    term_id: UUID,
    body: ObligationMetInput,
) -> Accepted:
    """agreement.obligation_met for an obligation of the agreement in force (404 for a term
    that is not one; 409 before the agreement is in force or once it is met)."""

    async def prepare(conn: asyncpg.Connection, case: Case) -> tuple[EventPayload, Store]:
        agreement = await mediation_sql.agreement(conn, case_id, lock=True)
        if agreement is None or not any(
            str(t["term_id"]) == str(term_id) and t.get("owner_role") for t in agreement["terms"]
        ):
            raise Refused("not_found", "no such obligation in this case's agreement")
        if agreement.get("in_force_version") != agreement["version"]:
            raise agent_actions.conflict("the agreement is not in force yet")
        obligation = await mediation_sql.lock_obligation(conn, agreement["agreement_id"], term_id)
        if obligation is None:
            raise agent_actions.conflict("routing has not started this obligation's clock yet")
        if obligation["state"] == "met":
            raise agent_actions.conflict("this obligation is already recorded as met")
        agreement_id = agreement["agreement_id"]

        async def store(c: asyncpg.Connection, event: Envelope) -> None:
            await mediation_sql.obligation_met(c, agreement_id, term_id, body.met_on, body.note)

        return (
            AgreementObligationMet(
                reference=case["reference"],
                agreement_id=agreement_id,
                term_id=term_id,
                met_on=body.met_on,
                note=body.note,
            ),
            store,
        )

    return await _staff_act(
        runtime,
        principal,
        case_id,
        action="recording an obligation met",
        kind="agreement_obligation_met",
        prepare=prepare,
        summary={"term_id": str(term_id), "met_on": body.met_on.isoformat()},
    )


# --- what staff read -----------------------------------------------------------------------


async def staff_view(
    runtime: Runtime, principal: Principal, case_id: UUID, client: Client, *, view: str
) -> tuple[Case, dict[str, Any]]:
    """Everything recorded for staff who may read the case (404 otherwise; the read is
    audited as any case read); privileged notes for the case manager role holder only."""
    agent_actions.require_role(principal, MEDIATION_ROLES, "reading case management")
    case = await actions.readable_case(runtime, principal, case_id, client, view=view)
    if is_reporter(principal, actions.facts(case)):
        raise forbidden("this view is for the HR staff working the case")
    pool = runtime.pool
    holders = await process_sql.role_holders(pool, case_id)
    agreement = await mediation_sql.agreement(pool, case_id)
    agreement_id = agreement["agreement_id"] if agreement else None
    shown = rules.staff_view(
        process=await process_sql.case_process(pool, case_id),
        case_manager=holders.get(rules.CASE_MANAGER_ROLE),
        viewer_is_case_manager=holds_case_manager(principal, holders),
        assessments=await mediation_sql.assessments(pool, case_id),
        ground_rules=await mediation_sql.ground_rules(pool, case_id),
        meetings=await mediation_sql.meetings(pool, case_id),
        agreement=agreement,
        obligations=await mediation_sql.obligations(pool, agreement_id) if agreement_id else [],
        follow_ups=await mediation_sql.follow_ups(pool, agreement_id) if agreement_id else [],
    )
    return case, shown


async def case_link(
    pool: asyncpg.Pool, principal: Principal, staff: bool, case: Case
) -> str | None:
    """The case page's link to case management: staff see /mediation once the case is in
    case management; a party (the reporter) sees /mediation/mine once assessed."""
    process = await process_sql.case_process(pool, case["case_id"])
    if process is None or process.get("process") != rules.PROCESS:
        return None
    base = f"/portal/cases/{case['case_id']}/mediation"
    if staff:
        return base if principal.has_any(*MEDIATION_ROLES) else None
    assessed = await mediation_sql.assessments(pool, case["case_id"])
    return f"{base}/mine" if rules.party_role_of(assessed, principal.employee_id) else None


# --- the parties ---------------------------------------------------------------------------


async def _party_case(
    conn: asyncpg.Connection | asyncpg.Pool, principal: Principal, case_id: UUID
) -> tuple[Case, str, list[dict[str, Any]]]:
    """The case, the caller's party role and the assessments; 404 for anyone who is not
    a party (the same answer as a missing case)."""
    case = await sql.get_case(conn, case_id)
    if case is None:
        raise actions.not_found()
    assessed = await mediation_sql.assessments(conn, case_id)
    role = rules.party_role_of(assessed, principal.employee_id)
    if role is None:
        raise actions.not_found()
    return case, role, assessed


async def party_view(runtime: Runtime, principal: Principal, case_id: UUID) -> dict[str, Any]:
    """What one party reads of the case's management (domain/mediation.party_view)."""
    pool = runtime.pool
    case, role, assessed = await _party_case(pool, principal, case_id)
    agreement = await mediation_sql.agreement(pool, case_id)
    return rules.party_view(
        role=role,
        case=case,
        process=await process_sql.case_process(pool, case_id),
        assessments=assessed,
        ground_rules=await mediation_sql.ground_rules(pool, case_id),
        meetings=await mediation_sql.meetings(pool, case_id),
        agreement=agreement,
        obligations=await mediation_sql.obligations(pool, agreement["agreement_id"])
        if agreement
        else [],
    )


async def cases_of_party(runtime: Runtime, principal: Principal) -> list[dict[str, Any]]:
    """The cases the signed-in employee is a party of (the portal's list)."""
    if not principal.employee_id:
        return []
    return await mediation_sql.cases_of_party(runtime.pool, principal.employee_id)


PartyStore = Callable[[asyncpg.Connection, datetime], Awaitable[None]]


async def _party_act(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    *,
    kind: str,
    prepare: Callable[
        [asyncpg.Connection, Case, str, str], Awaitable[tuple[EventPayload, PartyStore]]
    ],
    summary: dict[str, Any],
) -> Accepted:
    async with unit_of_work(runtime) as uow:
        case = await sql.lock_case_for_action(uow.conn, case_id)
        if case is None:
            raise actions.not_found()
        _, role, _ = await _party_case(uow.conn, principal, case_id)
        if case["status"] in CLOSED_STATUSES:
            raise agent_actions.conflict("the case is closed")
        reason = rules.process_conflict(await process_sql.case_process(uow.conn, case_id))
        if reason:
            raise agent_actions.conflict(reason)
        employee_id = principal.employee_id or ""
        payload, store = await prepare(uow.conn, case, role, employee_id)
        event = make_event(
            payload,
            producer="intake",
            actor=Actor(type="employee", id=employee_id),
            case_id=case_id,
        )
        await erased_cases.refuse_new_personal_data(uow.conn, case_id, event)
        await store(uow.conn, event.occurred_at)
        await uow.emit(event)
        await history.record_written(
            uow.conn, event, kind, actor_name=principal.name, party_role=role, **summary
        )
    return Accepted(case_id, case["reference"], event.event_id, event.event_type)


async def accept_ground_rules(
    runtime: Runtime, principal: Principal, case_id: UUID, ground_rules_id: UUID
) -> Accepted:
    """mediation.ground_rules_accepted for the caller's role (404 for a proposal not on
    the case; 409 for one replaced by a newer proposal or already accepted)."""

    async def prepare(
        conn: asyncpg.Connection, case: Case, role: str, employee_id: str
    ) -> tuple[EventPayload, PartyStore]:
        proposals = await mediation_sql.ground_rules(conn, case_id)
        found = next((p for p in proposals if p["ground_rules_id"] == ground_rules_id), None)
        if found is None:
            raise Refused("not_found", "no such ground rules on this case")
        if found is not proposals[-1]:
            raise agent_actions.conflict("these ground rules were replaced by a newer proposal")
        if role in (found.get("acceptances") or {}):
            raise agent_actions.conflict("you have already accepted these ground rules")

        async def store(c: asyncpg.Connection, at: datetime) -> None:
            await mediation_sql.accept_ground_rules(c, ground_rules_id, role, at)

        return (
            MediationGroundRulesAccepted(
                reference=case["reference"],
                ground_rules_id=ground_rules_id,
                party_role=role,
                employee_id=employee_id,
            ),
            store,
        )

    return await _party_act(
        runtime,
        principal,
        case_id,
        kind="mediation_ground_rules_accepted",
        prepare=prepare,
        summary={"ground_rules_id": str(ground_rules_id)},
    )


async def accept_agreement(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    agreement_id: UUID,
    body: AgreementAcceptanceInput,
) -> Accepted:
    """agreement.accepted for the caller's role and the version they read (404 for another
    case's agreement; 409 for a superseded version, or one already accepted or in force)."""

    async def prepare(
        conn: asyncpg.Connection, case: Case, role: str, employee_id: str
    ) -> tuple[EventPayload, PartyStore]:
        agreement = await mediation_sql.agreement_by_id(conn, agreement_id)
        if agreement is None or agreement["case_id"] != case_id:
            raise Refused("not_found", "no such agreement on this case")
        if body.version != agreement["version"]:
            raise agent_actions.conflict(
                f"version {body.version} was superseded: the current draft is version"
                f" {agreement['version']}"
            )
        if agreement.get("in_force_version") == agreement["version"]:
            raise agent_actions.conflict("the agreement is already in force")
        if role in rules.current_acceptances(agreement):
            raise agent_actions.conflict("you have already accepted this version")

        async def store(c: asyncpg.Connection, at: datetime) -> None:
            await mediation_sql.accept_agreement(c, agreement_id, role, body.version, at)

        return (
            AgreementAccepted(
                reference=case["reference"],
                agreement_id=agreement_id,
                version=body.version,
                party_role=role,
                employee_id=employee_id,
            ),
            store,
        )

    return await _party_act(
        runtime,
        principal,
        case_id,
        kind="agreement_accepted",
        prepare=prepare,
        summary={"agreement_id": str(agreement_id), "version": body.version},
    )


# --- routing's agreement clocks, projected -------------------------------------------------


async def _locked_case(ctx: HandlerContext) -> UUID:
    case_id = ctx.envelope.case_id
    if case_id is None:
        raise ValueError(f"{ctx.envelope.event_type} without case_id")
    if await sql.lock_case_status(ctx.conn, case_id) is None:
        raise LookupError(f"case {case_id} is not known to intake")
    return case_id


async def on_agreement_in_force(ctx: HandlerContext) -> None:
    in_force = payload_as(ctx.envelope, AgreementInForce)
    await _locked_case(ctx)
    found = await mediation_sql.put_in_force(
        ctx.conn,
        in_force.agreement_id,
        version=in_force.version,
        at=ctx.envelope.occurred_at,
        obligations=[o.model_dump() for o in in_force.obligations],
        follow_ups_at=list(in_force.follow_ups_at),
    )
    if not found:
        raise LookupError(f"agreement {in_force.agreement_id} is not known to intake")


async def _mark(ctx: HandlerContext, state: str, payload: Any) -> None:
    await _locked_case(ctx)
    escalated = getattr(payload, "escalated_to", None)
    found = await mediation_sql.mark_obligation(
        ctx.conn,
        payload.agreement_id,
        payload.term_id,
        state=state,
        escalated_to=escalated.model_dump(mode="json") if escalated else None,
    )
    if not found:  # agreement.in_force comes first: this one came early, retry
        raise LookupError(f"obligation {payload.term_id} is not known to intake")


async def on_obligation_due_soon(ctx: HandlerContext) -> None:
    await _mark(ctx, "due_soon", payload_as(ctx.envelope, AgreementObligationDueSoon))


async def on_obligation_overdue(ctx: HandlerContext) -> None:
    await _mark(ctx, "overdue", payload_as(ctx.envelope, AgreementObligationOverdue))


async def on_follow_up_due(ctx: HandlerContext) -> None:
    due = payload_as(ctx.envelope, CaseFollowUpDue)
    case_id = await _locked_case(ctx)
    await mediation_sql.follow_up_due(
        ctx.conn, due.agreement_id, case_id, due.check_in, due.due_at, ctx.envelope.occurred_at
    )


MEDIATION_HANDLERS: Mapping[str, Handler] = {
    "agreement.in_force": on_agreement_in_force,
    "agreement.obligation_due_soon": on_obligation_due_soon,
    "agreement.obligation_overdue": on_obligation_overdue,
    "case.follow_up_due": on_follow_up_due,
}
