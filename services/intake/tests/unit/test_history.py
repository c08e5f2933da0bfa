"""The history's pure rules: which actor an entry names, and what it says."""

from __future__ import annotations

from uuid import uuid4

from services.intake.domain.history import (
    Actor,
    CaseBefore,
    Cause,
    consumed_entry,
    describe,
    display_actor,
)
from shared.envelope import Actor as EnvelopeActor
from shared.envelope import utcnow
from shared.events import CaseStatusChanged, Person, TaskOverdue, make_event

NOBODY = CaseBefore(category="payroll_query", owner_id="A-1001", owner_name="Priya Shah")


def _changed(cause_kind: str | None) -> tuple[str | None, str]:
    case_id = uuid4()
    envelope = make_event(
        CaseStatusChanged(reference="HR-1", from_status="new", to_status="assigned"),
        producer="routing",
        actor=EnvelopeActor(type="service", id="routing"),
        case_id=case_id,
    )
    cause = None
    if cause_kind:
        cause = Cause(cause_kind, Actor("agent", "A-1001", "Priya Shah"))
    entry = consumed_entry(envelope, NOBODY, cause)
    return entry.actor.name, entry.kind


def test_an_outcome_is_the_requesters_doing_only_when_a_person_asked() -> None:
    assert _changed("status_change_requested") == ("Priya Shah", "status_changed")
    assert _changed("message") == ("Priya Shah", "status_changed")
    # Routing's first status change follows the submission: routing's own doing.
    assert _changed("submitted") == (None, "status_changed")
    assert _changed(None) == (None, "status_changed")


def test_people_are_named_and_ids_are_the_last_resort() -> None:
    names = {"A-2001": "Grace Okafor"}
    assert display_actor(Actor("agent", "A-1001", "Priya Shah"), names) == "Priya Shah"
    assert display_actor(Actor("agent", "A-2001"), names) == "Grace Okafor"
    assert display_actor(Actor("agent", "A-9999"), names) == "A-9999"
    assert display_actor(Actor("service", "routing"), names) == "Routing"
    assert display_actor(Actor("system", "routing-timers"), names) == "SLA timer"
    # Anonymous is anonymous, whatever an event might carry.
    assert display_actor(Actor("anonymous", "x", "y"), names) == "Anonymous reporter"


def test_descriptions_name_owners_and_say_what_changed() -> None:
    names = {"A-1001": "Priya Shah"}
    assigned = {"owner_id": "A-2001", "owner_name": "Grace Okafor", "team": "er"}
    assert describe("assigned", {**assigned, "previous_owner_id": "A-1001"}, names) == (
        "Assigned to Grace Okafor (team er), previously Priya Shah"
    )
    changed = {"from_status": "waiting_on_employee", "to_status": "in_progress", "reason": "r"}
    assert describe("status_changed", changed, {}) == (
        "Status changed from waiting on the employee to in progress: r"
    )
    refused = {"request_type": "case.status_change_requested", "reason": "not allowed"}
    assert describe("request_refused", refused, {}) == (
        "Requested status change was refused: not allowed"
    )
    assert describe("note", {"internal": True}, {}) == "Internal note"
    assert describe("note", {"internal": False}, {}) == "Note shared with the employee"
    due = utcnow().isoformat()
    assert describe("sla_warning", {"clock": "resolution", "due_at": due}, {}).startswith(
        "SLA warning: resolution due "
    )
    # An event type without a rule of its own is kept under its type.
    assert describe("case.unheard_of", {}, {}) == "case: unheard of"


def test_task_respondent_and_conference_entries_say_what_happened() -> None:
    task = make_event(
        TaskOverdue(
            reference="HR-1",
            task_id=uuid4(),
            title="Call the reporter",
            assignee=Person(id="A-1002", name="Tom Becker", email="tom@example.com"),
            due_at=utcnow(),
            escalated_to=Person(id="M-9001", name="Dana Whitfield", email="dana@example.com"),
            escalation_level=1,
        ),
        producer="routing",
        actor=EnvelopeActor(type="system", id="routing-timers"),
        case_id=uuid4(),
    )
    entry = consumed_entry(task, NOBODY, None)
    assert entry.kind == "task_overdue"
    assert describe(entry.kind, entry.summary, {}) == (
        "Task overdue: Call the reporter, escalated to Dana Whitfield"
    )
    assigned = {"title": "Check payslip", "assignee_id": "A-1003", "assignee_name": None}
    assert describe("task_created", assigned, {"A-1003": "Ana Lima"}) == (
        "Task assigned to Ana Lima: Check payslip"
    )
    assert describe("respondents_resolved", {"resolved": 1, "unresolved": 1}, {}) == (
        "Respondents matched in the directory: 1; 1 need a person to resolve"
    )
    assert describe("conference_required", {"reasons": ["serious_injury"]}, {}) == (
        "A case conference is required (serious_injury)"
    )
