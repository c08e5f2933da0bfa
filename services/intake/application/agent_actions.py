"""Agent actions: HR staff add notes and request status, category and owner changes.

Shared by the JSON API and the portal. Each action checks the caller's role (403), that
they may read the case (404, the same answer as a missing case) and that the case's status
allows it (409), then records its event in intake's outbox in one transaction with any
intake state change (a note's row). Routing decides on the requests; intake's read model
changes only when routing's case.status_changed / case.routed / case.assigned come back
(handlers.py). The request events themselves are the audit record of who acted on the case.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog

from services.intake.adapters import sql
from services.intake.application import actions, erased_cases, history
from services.intake.domain.case import (
    ASSIGNMENT_ROLES,
    CATEGORY_ROLES,
    NOTE_ROLES,
    STATUS_ROLES,
    AgentNote,
    AssignmentChange,
    Recategorisation,
    StatusChange,
    action_refusal,
    status_conflict,
)
from services.intake.domain.refusals import Refused
from shared.auth import Principal, Role
from shared.envelope import Actor, Envelope
from shared.events import (
    CaseAssignmentRequested,
    CaseNoteAdded,
    CaseRecategorisationRequested,
    CaseStatusChangeRequested,
    EventPayload,
    make_event,
)
from shared.service import Runtime
from shared.uow import unit_of_work

log = structlog.get_logger(__name__)

Case = dict[str, Any]
Record = Callable[[asyncpg.Connection, Case, Envelope], Awaitable[None]]
# The history entry's facts of a request (free text only where staff typed it as a reason).
Summary = Callable[[Case], dict[str, Any]]
# What else a note records in its transaction, after its event: e.g. its files
# (application/documents.py), given the connection, the case and the note's id.
NoteFollowUp = Callable[[asyncpg.Connection, Case, UUID], Awaitable[None]]


@dataclass(frozen=True)
class ActionAccepted:
    case_id: UUID
    reference: str
    event_id: UUID
    event_type: str
    note_id: UUID | None = None


def conflict(reason: str) -> Refused:
    return Refused("conflict", reason)


def require_role(principal: Principal, roles: tuple[Role, ...], action: str) -> None:
    if not principal.has_any(*roles):
        raise Refused("forbidden", f"{action} requires one of the roles: {', '.join(roles)}")


async def _case_to_act_on(
    conn: asyncpg.Connection, principal: Principal, case_id: UUID, to_status: str | None
) -> Case:
    case = await sql.lock_case_for_action(conn, case_id)
    if case is None:
        raise actions.not_found()
    refusal = action_refusal(principal, actions.facts(case))
    if refusal == "hidden":
        raise actions.not_found()
    if refusal == "own_case":
        raise Refused(
            "forbidden",
            "you reported this case; another member of HR staff must work on it",
        )
    reason = status_conflict(case["status"], to_status)
    if reason:
        raise conflict(reason)
    return case


# The case as an action sees it (locked, readable, not the caller's own, status allowing).
case_to_act_on = _case_to_act_on


async def _act(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    *,
    roles: tuple[Role, ...],
    action: str,
    build: Callable[[Case], EventPayload],
    kind: str,
    summary: Summary,
    to_status: str | None = None,
    record: Record | None = None,
    follow: Record | None = None,
) -> ActionAccepted:
    require_role(principal, roles, action)
    async with unit_of_work(runtime) as uow:
        case = await _case_to_act_on(uow.conn, principal, case_id, to_status)
        event = make_event(
            build(case),
            producer="intake",
            actor=Actor(type="agent", id=principal.subject),
            case_id=case_id,
        )
        await erased_cases.refuse_new_personal_data(uow.conn, case_id, event)
        if record is not None:
            await record(uow.conn, case, event)
        await uow.emit(event)
        await history.record_written(
            uow.conn, event, kind, actor_name=principal.name, **summary(case)
        )
        if follow is not None:
            await follow(uow.conn, case, event)
    structlog.contextvars.bind_contextvars(case_id=str(case_id), event_id=str(event.event_id))
    log.info("agent action recorded", event_type=event.event_type, agent=principal.subject)
    return ActionAccepted(case_id, case["reference"], event.event_id, event.event_type)


async def add_note(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    note: AgentNote,
    *,
    follow: NoteFollowUp | None = None,
) -> ActionAccepted:
    """Store a note and its `case.note_added`; `follow` records more in the same
    transaction (the note's files)."""
    note_id = uuid4()

    async def record(conn: asyncpg.Connection, case: Case, event: Envelope) -> None:
        await sql.insert_note(
            conn,
            note_id=note_id,
            case_id=case_id,
            author_id=principal.subject,
            author_name=principal.name,
            body=note.body,
            internal=note.internal,
            created_at=event.occurred_at,
        )

    async def after_note(conn: asyncpg.Connection, case: Case, event: Envelope) -> None:
        assert follow is not None
        await follow(conn, case, note_id)

    accepted = await _act(
        runtime,
        principal,
        case_id,
        roles=NOTE_ROLES,
        action="adding a note",
        kind="note",
        summary=lambda _: {"note_id": note_id, "internal": note.internal},
        build=lambda case: CaseNoteAdded(
            reference=case["reference"], note_id=note_id, body=note.body, internal=note.internal
        ),
        record=record,
        follow=after_note if follow is not None else None,
    )
    return replace(accepted, note_id=note_id)


async def request_status(
    runtime: Runtime, principal: Principal, case_id: UUID, change: StatusChange
) -> ActionAccepted:
    return await _act(
        runtime,
        principal,
        case_id,
        roles=STATUS_ROLES,
        action="changing the status",
        kind="status_change_requested",
        summary=lambda case: {
            "from_status": case["status"],
            "to_status": change.to_status,
            "reason": change.reason,
        },
        to_status=change.to_status,
        build=lambda _: CaseStatusChangeRequested(to_status=change.to_status, reason=change.reason),
    )


async def request_category(
    runtime: Runtime, principal: Principal, case_id: UUID, change: Recategorisation
) -> ActionAccepted:
    def build(case: Case) -> EventPayload:
        if case["category"] == change.category:
            raise conflict(f"the case is already in category {change.category}")
        return CaseRecategorisationRequested(category=change.category, reason=change.reason)

    return await _act(
        runtime,
        principal,
        case_id,
        roles=CATEGORY_ROLES,
        action="re-categorising a case",
        kind="recategorisation_requested",
        summary=lambda case: {
            "from_category": case["category"],
            "category": change.category,
            "reason": change.reason,
        },
        build=build,
    )


async def request_assignment(
    runtime: Runtime, principal: Principal, case_id: UUID, change: AssignmentChange
) -> ActionAccepted:
    def build(case: Case) -> EventPayload:
        if case["owner_id"] == change.owner_id:
            raise conflict(f"{change.owner_id} already owns the case")
        return CaseAssignmentRequested(owner_id=change.owner_id, reason=change.reason)

    return await _act(
        runtime,
        principal,
        case_id,
        roles=ASSIGNMENT_ROLES,
        action="assigning a case",
        kind="assignment_requested",
        summary=lambda case: {
            "previous_owner_id": case["owner_id"],
            "previous_owner_name": case["owner_name"],
            "requested_owner_id": change.owner_id,
            "reason": change.reason,
        },
        build=build,
    )
