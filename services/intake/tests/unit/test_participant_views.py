"""A conference participant's view: what it copies (names and roles, never addresses),
how actions change status, how the worker is found, how it reads in the plan's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

from services.intake.domain.participant_views import (
    acknowledgement_refusal,
    invited_people,
    summary_view,
    with_action_status,
    worker_participant,
)
from services.intake.entrypoints.portal.conference_links import BadLinkThrottle
from services.intake.entrypoints.portal.conference_present import present
from shared.events import ConferenceAction, ConferenceObjection, ConferenceParticipant


def participant(role: str, name: str, email: str, employee_id: str | None = None) -> Any:
    return ConferenceParticipant(
        participant_id=uuid4(), role=role, name=name, email=email, employee_id=employee_id
    )


def test_invited_people_are_names_and_roles_only_without_those_awaiting_consent():
    worker = participant("worker", "Sam Rivera", "sam@example.com", "E-7001")
    doctor = participant("treating_doctor", "Dr Ng", "ng@clinic.example")
    people = invited_people([worker, doctor], [doctor.participant_id])
    assert people == [
        {"participant_id": str(worker.participant_id), "name": "Sam Rivera", "role": "worker"}
    ]
    assert "sam@example.com" not in repr(people) and "E-7001" not in repr(people)


def test_the_summary_names_owners_and_objectors_and_actions_change_status():
    doctor = participant("treating_doctor", "Dr Ng", "ng@clinic.example")
    action_id = uuid4()
    action = ConferenceAction(
        action_id=action_id,
        description="Write the duties plan",
        owner_participant_id=doctor.participant_id,
        owner_name="Dr Ng",
        owner_email="ng@clinic.example",
        due_on=date.today(),
        due_at=datetime.now(UTC),
    )
    summary = summary_view(
        ["Light duties"],
        [action],
        [ConferenceObjection(participant_id=doctor.participant_id, text="Too fast")],
        [doctor],
    )
    assert summary["actions"][0]["status"] == "open"
    assert "ng@clinic.example" not in repr(summary)
    assert summary["objections"] == [{"by": "Dr Ng", "text": "Too fast"}]
    done = with_action_status(summary, action_id, "done")
    assert done["actions"][0]["status"] == "done"
    moved = with_action_status(summary, action_id, "replanned", due_on="2030-01-02")
    assert moved["actions"][0]["due_on"] == "2030-01-02"
    assert with_action_status(summary, uuid4(), "ended") == summary  # unknown action


def test_the_worker_is_found_by_employee_id_then_by_address():
    rows: list[dict[str, Any]] = [
        {"role": "employer_representative", "employee_id": "E-7001", "email": "x@example.com"},
        {"role": "worker", "employee_id": None, "email": "Sam.Rivera@Example.com"},
    ]
    # The employer representative shares no role with the worker: never matched.
    assert worker_participant(rows, "E-7001", None) is None
    assert worker_participant(rows, "E-7001", "sam.rivera@example.com") is rows[1]
    assert worker_participant(rows, None, None) is None


def test_only_a_recorded_summary_can_be_acknowledged_by_a_current_participant():
    assert acknowledgement_refusal("planned", False) is not None
    assert acknowledgement_refusal("summarised", True) is not None
    assert acknowledgement_refusal("summarised", False) is None
    assert acknowledgement_refusal("completed", False) is None


def test_the_page_reads_in_the_plans_time_zone():
    view = {
        "conference_id": uuid4(),
        "reference": "HR-2026-000001",
        "name": "Dr Ng",
        "role": "treating_doctor",
        "status": "planned",
        "plan": {
            "purpose": "Return to work",
            "scheduled_for": "2026-12-09T23:00:00+00:00",
            "duration_minutes": 90,
            "time_zone": "Australia/Sydney",
            "mode": "video",
            "video_link": "javascript:alert(1)",
            "agenda": ["Medical update"],
            "desired_outcomes": [{"topic": "Future employment", "proposals": []}],
        },
        "participants": [],
        "summary": None,
        "acknowledged_at": None,
    }
    shown = present(view)
    assert shown["when"] == ("Thursday 10 December 2026, 10:00 AEDT to 11:30 (Australia/Sydney)")
    assert shown["video_link"] is None  # only https is ever a link
    assert shown["may_respond"] is False


def test_bad_links_from_one_address_are_throttled():
    throttle = BadLinkThrottle(limit=3, window=60)
    for _ in range(3):
        assert not throttle.blocked("198.51.100.7")
        throttle.refused("198.51.100.7")
    assert throttle.blocked("198.51.100.7")
    assert not throttle.blocked("203.0.113.9")
