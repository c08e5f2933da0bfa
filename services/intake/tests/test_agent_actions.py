"""Agent actions' rules (pure) and the read-model projection of routing's lifecycle (on the
test database, handlers called directly in one transaction each, as the consumer would)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, get_args
from uuid import UUID

import asyncpg
import pytest
from pydantic import BaseModel, ValidationError

from services.intake.application.cases import NewCase, open_case
from services.intake.application.handlers import HANDLERS
from services.intake.domain.case import (
    AgentNote,
    AssignmentChange,
    CaseFacts,
    Recategorisation,
    RequestableStatus,
    StatusChange,
    action_refusal,
    advance_status,
    sees_internal_notes,
    status_conflict,
    status_options,
)
from shared.auth import Principal, Role
from shared.consumer import HandlerContext
from shared.envelope import Actor, utcnow
from shared.events import (
    CaseAssigned,
    CaseRouted,
    CaseStatusChanged,
    CaseStatusChangeRequested,
    EventPayload,
    Person,
    Reporter,
    make_event,
)


def person(subject: str, *roles: Role, employee_id: str | None = None) -> Principal:
    return Principal(subject=subject, roles=frozenset(roles), employee_id=employee_id)


SAM = person("u-sam", "employee", employee_id="E-1")
AGENT = person("A-1001", "hr_agent", "employee", employee_id="A-1001")
OWNER = person("A-3001", "hr_agent", employee_id="A-3001")
MANAGER = person("M-9002", "hr_manager")


def facts(**overrides: Any) -> CaseFacts:
    base: dict[str, Any] = {
        "reporter_employee_id": "E-1",
        "anonymous": False,
        "sensitivity": "normal",
        "owner_id": None,
        "logged_by": None,
        "submitted_by": "u-sam",
    }
    return CaseFacts.model_validate({**base, **overrides})


def test_routed_and_assigned_never_undo_a_later_lifecycle_status() -> None:
    assert advance_status("new", "routed") == "routed"
    assert advance_status("new", "assigned") == "assigned"
    assert advance_status("assigned", "routed") == "assigned"
    for later in ("in_progress", "waiting_on_employee", "resolved", "closed"):
        assert advance_status(later, "routed") == later
        assert advance_status(later, "assigned") == later


def test_staff_who_may_read_a_case_may_act_on_it_but_not_on_their_own() -> None:
    assert action_refusal(AGENT, facts()) is None
    # Restricted: hidden from an agent who does not own it, open to its owner and managers.
    restricted = facts(sensitivity="restricted", owner_id="A-3001")
    assert action_refusal(AGENT, restricted) == "hidden"
    assert action_refusal(OWNER, restricted) is None
    assert action_refusal(MANAGER, restricted) is None
    # Not routed yet (no sensitivity): fail closed.
    assert action_refusal(AGENT, facts(sensitivity=None)) == "hidden"
    # An agent who reported the case sees it as its reporter and may not work it.
    assert action_refusal(AGENT, facts(reporter_employee_id="A-1001")) == "own_case"
    assert action_refusal(SAM, facts(reporter_employee_id="E-2")) == "hidden"


def test_internal_notes_are_for_staff_never_for_the_reporter() -> None:
    assert sees_internal_notes(AGENT, facts())
    assert not sees_internal_notes(SAM, facts())
    assert not sees_internal_notes(AGENT, facts(reporter_employee_id="A-1001"))
    assert not sees_internal_notes(AGENT, facts(sensitivity="restricted"))


def test_status_conflicts_and_offered_moves() -> None:
    assert status_conflict("in_progress") is None
    assert status_conflict("closed") == "the case is closed; reopen it first"
    assert status_conflict("closed", "waiting_on_employee") == "the case is closed; reopen it first"
    assert status_conflict("closed", "reopened") is None
    assert status_conflict("resolved", "reopened") is None
    assert "only a resolved or closed case" in (status_conflict("assigned", "reopened") or "")
    assert status_conflict("waiting_on_employee", "waiting_on_employee") is not None
    assert status_options("closed") == ("reopened",)
    assert status_options("resolved") == ("closed", "reopened")
    assert "in_progress" not in status_options("in_progress")


def test_requestable_statuses_match_the_event_contract() -> None:
    contract = CaseStatusChangeRequested.model_fields["to_status"].annotation
    assert set(get_args(RequestableStatus)) == set(get_args(contract))


def test_action_requests_are_validated() -> None:
    assert AgentNote(body="  Called the employee. ").body == "Called the employee."
    assert AgentNote(body="x").internal is True
    assert StatusChange(to_status="resolved", reason=" ").reason is None
    invalid: list[tuple[type[BaseModel], dict[str, Any]]] = [
        (AgentNote, {"body": "  "}),
        (StatusChange, {"to_status": "assigned"}),
        (Recategorisation, {"category": "not_a_category", "reason": "wrong"}),
        (Recategorisation, {"category": "grievance", "reason": ""}),
        (AssignmentChange, {"owner_id": "A 1", "reason": "holiday cover"}),
        (AssignmentChange, {"owner_id": "A-2001"}),
    ]
    for model, data in invalid:
        with pytest.raises(ValidationError):
            model.model_validate(data)


# --- Projection on the real database --------------------------------------------------------


async def _new_case(pool: asyncpg.Pool) -> tuple[UUID, str]:
    async with pool.acquire() as conn, conn.transaction():
        opened = await open_case(
            conn,
            NewCase(
                channel="api",
                subject="Projection test",
                description="A case for the projection test.",
                reporter=Reporter(employee_id="E-1", name="Sam", email="sam@example.com"),
                actor=Actor(type="employee", id="E-1"),
            ),
        )
        # Never published: later tests' services must not route this case.
        await conn.execute("DELETE FROM intake.outbox WHERE event_id = $1", opened.event.event_id)
    return opened.case_id, opened.reference


async def _apply(pool: asyncpg.Pool, case_id: UUID, payload: EventPayload) -> dict[str, Any]:
    envelope = make_event(
        payload, producer="routing", actor=Actor(type="service", id="routing"), case_id=case_id
    )
    async with pool.acquire() as conn, conn.transaction():
        await HANDLERS[envelope.event_type](
            HandlerContext(envelope=envelope, conn=conn, service="intake", schema="intake")
        )
        row = await conn.fetchrow("SELECT * FROM intake.cases WHERE case_id = $1", case_id)
    assert row is not None
    return dict(row)


def _routed(reference: str, category: str, priority: Any, sensitivity: Any) -> CaseRouted:
    now = utcnow()
    return CaseRouted(
        reference=reference,
        category=category,
        category_source="reporter",
        matched_terms=[],
        sensitivity=sensitivity,
        priority=priority,
        priority_reasons=[],
        first_response_due=now + timedelta(hours=8),
        resolution_due=now + timedelta(hours=80),
        policy_hash="test",
    )


def _changed(reference: str, from_status: str, to_status: str) -> CaseStatusChanged:
    return CaseStatusChanged(reference=reference, from_status=from_status, to_status=to_status)


async def test_the_read_model_follows_routings_lifecycle(admin_pool: asyncpg.Pool) -> None:
    case_id, ref = await _new_case(admin_pool)
    row = await _apply(admin_pool, case_id, _routed(ref, "payroll_query", "P4", "normal"))
    assert row["status"] == "routed"
    owner = Person(id="A-1001", name="Priya Shah", email="priya.shah@example.com")
    assigned = CaseAssigned(
        reference=ref,
        team="hr_operations",
        owner=owner,
        strategy="round_robin",
        priority="P4",
        sensitivity="normal",
        category="payroll_query",
        first_response_due=utcnow(),
    )
    assert (await _apply(admin_pool, case_id, assigned))["status"] == "assigned"
    assert (await _apply(admin_pool, case_id, _changed(ref, "new", "assigned")))["status"] == (
        "assigned"
    )
    for before, after in [
        ("assigned", "in_progress"),
        ("in_progress", "waiting_on_employee"),
    ]:
        assert (await _apply(admin_pool, case_id, _changed(ref, before, after)))["status"] == after

    # Re-categorised while waiting: the new category, priority and SLA show, the status stays.
    rerouted = _routed(ref, "grievance", "P3", "confidential")
    row = await _apply(admin_pool, case_id, rerouted)
    assert (row["status"], row["category"], row["priority"], row["sensitivity"]) == (
        "waiting_on_employee",
        "grievance",
        "P3",
        "confidential",
    )
    assert row["resolution_due"] == rerouted.resolution_due
    reassigned = assigned.model_copy(update={"owner": owner.model_copy(update={"id": "A-2001"})})
    row = await _apply(admin_pool, case_id, reassigned)
    assert (row["status"], row["owner_id"]) == ("waiting_on_employee", "A-2001")

    # Resolved, closed and reopened (routing reports a reopened case as in_progress).
    for before, after in [
        ("waiting_on_employee", "resolved"),
        ("resolved", "closed"),
        ("closed", "in_progress"),
    ]:
        assert (await _apply(admin_pool, case_id, _changed(ref, before, after)))["status"] == after
