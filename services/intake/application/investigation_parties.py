"""The parties' side of an investigation: the complainant (the case's named reporter) and
each respondent (an employee an allegation names), signed in as employees.

Each sees only what concerns them (domain/investigations.py): the allegations (the
complainant all, a respondent those naming them), their own interviews and statements
(which they confirm or correct), and once the outcome is approved the letter parts
concerning them: the finding (and its reasoning) on each allegation that concerns them,
and the outcome's actions that are general or concern them; the appeal form while the
window is open. Never another person's statement, the evidence log, the outcome's
internal summary, or a finding on an allegation not concerning them. Anyone else, and a
case not in the investigation process, gets 404 (the same answer as no such case).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog

from services.intake.adapters import investigation_sql as store
from services.intake.adapters import process_sql, sql
from services.intake.application import agent_actions, history
from services.intake.domain.investigations import (
    PROCESS,
    AppealInput,
    PartyRole,
    StatementReviewInput,
    appeal_window_open,
    concerns,
    letter_actions,
    own_interview,
    own_statement,
    party_roles,
    process_conflict,
)
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    CaseAppealLodged,
    EventPayload,
    InvestigationStatementReviewed,
    make_event,
)
from shared.service import Runtime
from shared.uow import unit_of_work

log = structlog.get_logger(__name__)

Row = dict[str, Any]


@dataclass(frozen=True)
class PartyCase:
    case: Row
    employee_id: str
    roles: set[PartyRole]
    process: Row
    allegations: list[Row]


def _not_found() -> Refused:
    return Refused("not_found", "no such case")


async def _party_case(
    conn: asyncpg.Connection | asyncpg.Pool, principal: Principal, case_id: UUID
) -> PartyCase:
    employee_id = principal.employee_id
    case = await sql.get_case(conn, case_id) if employee_id else None
    if case is None or employee_id is None:
        raise _not_found()
    process = await process_sql.case_process(conn, case_id)
    if process is None or process["process"] != PROCESS:
        raise _not_found()
    allegations = await store.list_allegations(conn, case_id)
    roles = party_roles(
        employee_id,
        reporter_employee_id=case.get("reporter_employee_id"),
        anonymous=bool(case.get("anonymous")),
        allegations=allegations,
    )
    if not roles:
        raise _not_found()
    return PartyCase(case, employee_id, roles, process, allegations)


def _own_statements(party: PartyCase, statements: list[Row]) -> list[Row]:
    def mine(statement: Row) -> bool:
        if own_statement(statement, party.employee_id):
            return True
        # A complainant's statement recorded without their employee id is still theirs.
        return (
            "complainant" in party.roles
            and statement["given_by_role"] == "complainant"
            and statement["given_by_employee_id"] is None
        )

    return [
        {
            key: s[key]
            for key in (
                "statement_id",
                "interview_id",
                "given_by_role",
                "given_by_name",
                "text",
                "companion_name",
                "recorded_at",
                "review_state",
                "corrections",
                "reviewed_at",
            )
        }
        for s in statements
        if mine(s)
    ]


def _letter(party: PartyCase, outcome: Row | None, findings: list[Row]) -> Row | None:
    """The outcome letter's parts for this party, once the outcome is approved."""
    if outcome is None or outcome["approval_state"] != "approved":
        return None
    current = {f["allegation_id"]: f for f in findings if f["superseded_by"] is None}
    parts = []
    for allegation in party.allegations:
        if not concerns(allegation, party.employee_id, party.roles):
            continue
        finding = current.get(allegation["allegation_id"])
        parts.append(
            {
                "allegation_id": allegation["allegation_id"],
                "allegation_type": allegation["allegation_type"],
                "respondent_name": allegation["respondent_name"],
                "finding": finding["finding"] if finding else None,
                "reasoning": finding["reasoning"] if finding else None,
            }
        )
    return {
        "outcome_id": outcome["outcome_id"],
        "approved_at": outcome["approved_at"],
        "findings": parts,
        "actions": letter_actions(outcome["actions"], party.employee_id),
        "appeal_window_ends_at": outcome["appeal_window_ends_at"],
    }


async def my_investigation(runtime: Runtime, principal: Principal, case_id: UUID) -> Row:
    """What the party sees: {case_id, reference, roles, stage, stage_label, allegations,
    interviews, statements, letter (None until approved), appeal {open, ends_at, lodged}}.
    404 for anyone who is not a party."""
    conn = runtime.pool
    party = await _party_case(conn, principal, case_id)
    outcome = await store.current_outcome(conn, case_id)
    appeals = await store.list_appeals(conn, case_id)
    role = _appeal_role(party)
    allegations = [
        {
            key: a[key]
            for key in (
                "allegation_id",
                "allegation_type",
                "summary",
                "respondent_employee_id",
                "respondent_name",
                "occurred_on",
            )
        }
        for a in party.allegations
        if concerns(a, party.employee_id, party.roles)
    ]
    interviews = [
        {
            key: i[key]
            for key in (
                "interview_id",
                "scheduled_for",
                "duration_minutes",
                "time_zone",
                "location",
                "video_link",
                "companion_allowed",
                "interviewee_role",
            )
        }
        | {"interviewer_name": i["interviewer"]["name"]}
        for i in await store.list_interviews(conn, case_id)
        if own_interview(i, party.employee_id)
        # A complainant's interview scheduled without their employee id is still theirs.
        or (
            "complainant" in party.roles
            and i["interviewee_role"] == "complainant"
            and i["interviewee_employee_id"] is None
        )
    ]
    lodged = [
        {k: a[k] for k in ("appeal_id", "grounds", "lodged_at", "decision", "decided_at")}
        for a in appeals
        if a["by_role"] == role and a["by_employee_id"] == party.employee_id
    ]
    return {
        "case_id": case_id,
        "reference": party.case["reference"],
        "roles": sorted(party.roles),
        "stage": party.process.get("stage"),
        "stage_label": party.process.get("stage_label"),
        "allegations": allegations,
        "interviews": interviews,
        "statements": _own_statements(party, await store.list_statements(conn, case_id)),
        "letter": _letter(party, outcome, await store.list_findings(conn, case_id)),
        "appeal": {
            "open": appeal_window_open(outcome, utcnow()) and not lodged,
            "ends_at": outcome["appeal_window_ends_at"] if outcome else None,
            "lodged": lodged,
        },
    }


def _appeal_role(party: PartyCase) -> PartyRole:
    return "complainant" if "complainant" in party.roles else "respondent"


def party_actor(principal: Principal) -> Actor:
    return Actor(type="employee", id=principal.employee_id or principal.subject)


async def _emit(
    uow: Any, principal: Principal, case: Row, payload: EventPayload, kind: str
) -> Envelope:
    event = make_event(
        payload, producer="intake", actor=party_actor(principal), case_id=case["case_id"]
    )
    await uow.emit(event)
    await history.record_written(uow.conn, event, kind, actor_name=principal.name)
    return event


async def review_statement(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    statement_id: UUID,
    body: StatementReviewInput,
) -> UUID:
    """investigation.statement_reviewed by the person the statement is from (404 for any
    other statement; 409 once the investigation has ended). Returns the event id."""
    async with unit_of_work(runtime) as uow:
        if await sql.lock_case_for_action(uow.conn, case_id) is None:
            raise _not_found()
        party = await _party_case(uow.conn, principal, case_id)
        statement = await store.lock_statement(uow.conn, case_id, statement_id)
        if statement is None or not _own_statements(party, [statement]):
            raise Refused("not_found", "no such statement of yours on this case")
        reason = process_conflict(party.process)
        if reason:
            raise agent_actions.conflict(reason)
        event = await _emit(
            uow,
            principal,
            party.case,
            InvestigationStatementReviewed(
                reference=party.case["reference"],
                statement_id=statement_id,
                confirmed=body.confirmed,
                corrections=body.corrections,
            ),
            "statement_reviewed",
        )
        await store.review_statement(
            uow.conn,
            statement_id,
            confirmed=body.confirmed,
            corrections=body.corrections,
            reviewed_at=event.occurred_at,
        )
    log.info("statement reviewed", case_id=str(case_id), confirmed=body.confirmed)
    return event.event_id


async def lodge_appeal(
    runtime: Runtime, principal: Principal, case_id: UUID, body: AppealInput
) -> tuple[UUID, UUID]:
    """case.appeal_lodged by a party while the window is open (409 after it, or when they
    already appealed). Returns (appeal id, event id)."""
    appeal_id = uuid4()
    async with unit_of_work(runtime) as uow:
        if await sql.lock_case_for_action(uow.conn, case_id) is None:
            raise _not_found()
        party = await _party_case(uow.conn, principal, case_id)
        outcome = await store.current_outcome(uow.conn, case_id, lock=True)
        if not appeal_window_open(outcome, utcnow()):
            raise agent_actions.conflict("the appeal window is not open")
        assert outcome is not None
        role = _appeal_role(party)
        event = await _emit(
            uow,
            principal,
            party.case,
            CaseAppealLodged(
                reference=party.case["reference"],
                appeal_id=appeal_id,
                outcome_id=outcome["outcome_id"],
                by_role=role,
                by_employee_id=party.employee_id,
                grounds=body.grounds,
            ),
            "appeal_lodged",
        )
        inserted = await store.insert_appeal(
            uow.conn,
            {
                "appeal_id": appeal_id,
                "case_id": case_id,
                "outcome_id": outcome["outcome_id"],
                "by_role": role,
                "by_employee_id": party.employee_id,
                "grounds": body.grounds,
                "lodged_at": event.occurred_at,
            },
        )
        if not inserted:
            raise agent_actions.conflict("you have already appealed this outcome")
    log.info("appeal lodged", case_id=str(case_id), by_role=role)
    return appeal_id, event.event_id


async def investigations_concerning(runtime: Runtime, principal: Principal) -> list[Row]:
    """The cases whose allegations name the signed-in employee as respondent (the
    portal home's entry point): [{case_id, reference, named_at}]."""
    if not principal.employee_id:
        return []
    return await store.cases_naming_respondent(runtime.pool, principal.employee_id)


async def case_page_link(
    conn: asyncpg.Pool | asyncpg.Connection, case: Row, *, staff_view: bool
) -> dict[str, str] | None:
    """The case page's way to the investigation, when the case is in that process: staff
    to the investigator's page, the reporter (the complainant) to their own page."""
    process = await process_sql.case_process(conn, case["case_id"])
    if process is None or process["process"] != PROCESS:
        return None
    if staff_view:
        return {
            "href": f"/portal/cases/{case['case_id']}/investigation",
            "label": "Open the investigation",
        }
    if case.get("anonymous"):
        return None
    return {
        "href": f"/portal/cases/{case['case_id']}/investigation/mine",
        "label": "Your investigation: interviews, your statements, the outcome",
    }
