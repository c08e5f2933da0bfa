"""Case conferences as intake checks and shows them: requests with errors naming the field,
the projection's pure updates, the plan form's fields and the history's words."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from starlette.datastructures import FormData

from services.intake.domain.conference_state import (
    participants_from,
    tracked_actions,
    with_action,
    with_mail,
)
from services.intake.domain.conferences import (
    ActionInput,
    ActionReplanning,
    ConferencePlanInput,
    ConsentInput,
    HoldRecording,
    action_conflict,
    change_conflict,
    summary_conflict,
)
from services.intake.domain.history import CaseBefore, consumed_entry, describe
from services.intake.entrypoints.portal import conference_forms as forms
from shared.envelope import Actor, new_envelope

WORKER = {"role": "worker", "name": "Sam Rivera", "email": "sam.rivera@example.com"}


def _in(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


BASE: dict[str, Any] = {
    "purpose": "Agree a return-to-work plan",
    "scheduled_for": _in(days=10),
    "duration_minutes": 60,
    "location": "Warehouse 3",
    "participants": [WORKER],
    "agenda": ["What happened"],
}


def _errors(body: Mapping[str, Any], model: Any = ConferencePlanInput) -> dict[str, str]:
    try:
        model.model_validate(body)
    except ValidationError as exc:
        return {str(e["loc"][-1]): e["msg"] for e in exc.errors()}
    return {}


def test_a_plan_defaults_to_in_person_at_the_workplace_and_video_with_a_link() -> None:
    plan = ConferencePlanInput.model_validate(BASE)
    assert (plan.resolved_mode(), plan.resolved_venue()) == ("in_person", "workplace")
    video = ConferencePlanInput.model_validate(
        {**BASE, "location": None, "video_link": "https://meet.example/abc"}
    )
    assert (video.resolved_mode(), video.resolved_venue()) == ("video", None)
    phone = ConferencePlanInput.model_validate({**BASE, "mode": "telephone"})
    assert phone.resolved_venue() is None


def test_plan_errors_name_the_field_to_fix() -> None:
    assert set(_errors({**BASE, "scheduled_for": "2030-01-01T10:00:00"})) == {"scheduled_for"}
    assert "future" in _errors({**BASE, "scheduled_for": _in(minutes=-5)})["scheduled_for"]
    assert "within a year" in _errors({**BASE, "scheduled_for": _in(days=400)})["scheduled_for"]
    assert "location" in _errors({**BASE, "location": None})["location"]
    assert "video_link" in _errors({**BASE, "mode": "video"})["video_link"]
    assert "https" in _errors({**BASE, "video_link": "ftp://x"})["video_link"]
    assert "in-person" in _errors({**BASE, "mode": "telephone", "venue": "workplace"})["venue"]
    assert set(_errors({**BASE, "venue": "other_venue"})) == {"venue_reason"}
    assert _errors({**BASE, "venue": "other_venue", "venue_reason": "Conflict"}) == {}
    assert set(_errors({**BASE, "time_zone": "Nowhere/Land"})) == {"time_zone"}
    assert set(_errors({**BASE, "participants": [{**WORKER, "role": "boss"}]})) == {"role"}
    assert set(_errors({**BASE, "participants": [{**WORKER, "email": "x"}]})) == {"email"}
    assert set(_errors({**BASE, "agenda": ["a\nb"]})) == {"agenda"}
    same = str(uuid4())
    twice = [{**WORKER, "participant_id": same}, {**WORKER, "participant_id": same}]
    assert set(_errors({**BASE, "participants": twice})) == {"participants"}
    assert set(_errors({**BASE, "purpose": "a\x00b"})) == {"purpose"}
    nul_topic = [{"topic": "Future\x00employment"}]
    assert set(_errors({**BASE, "desired_outcomes": nul_topic})) == {"desired_outcomes"}


def test_an_action_has_exactly_one_owner_and_attendance_is_not_in_the_future() -> None:
    due = {"description": "Book physiotherapy", "due_on": (DAY + timedelta(days=1)).isoformat()}
    assert "exactly one" in _errors(due, ActionInput)["owner_staff_id"]
    both = {**due, "owner_participant_id": str(uuid4()), "owner_staff_id": "A-4001"}
    assert set(_errors(both, ActionInput)) == {"owner_staff_id"}
    assert _errors({**due, "owner_staff_id": "A-4001"}, ActionInput) == {}
    for far in ("9999-12-31", "2001-01-01"):
        wrong = _errors({**due, "owner_staff_id": "A-4001", "due_on": far}, ActionInput)
        assert set(wrong) == {"due_on"}
    assert set(_errors({"reason": "Later", "due_on": "9999-01-01"}, ActionReplanning)) == {"due_on"}
    late = {"held_at": _in(days=1), "attendance": [{"participant_id": str(uuid4()), "attended": 1}]}
    assert set(_errors(late, HoldRecording)) == {"held_at"}
    assert set(_errors({"consent": "x", "given_by": "worker"}, ConsentInput)) == {"consent"}


def test_what_may_be_asked_of_a_conference_in_each_status() -> None:
    assert change_conflict("planned") is None
    assert "waiting for routing" in str(change_conflict("requested"))
    assert change_conflict("cancelled") is not None
    assert summary_conflict("held") is None and summary_conflict("planned") is not None
    assert action_conflict("summarised", {"status": "open"}) is None
    assert "already done" in str(action_conflict("summarised", {"status": "done"}))
    assert action_conflict("completed", {"status": "open"}) is not None


def test_a_decision_keeps_what_intake_knows_of_each_participant() -> None:
    kept, new, gone = (str(uuid4()) for _ in range(3))
    before: list[dict[str, Any]] = [
        {"participant_id": kept, "role": "worker", "mails": [{"notification_id": "n1"}]},
        {"participant_id": gone, "role": "support_person", "mails": []},
    ]
    now = [
        {"participant_id": kept, "role": "worker", "name": "Sam"},
        {"participant_id": new, "role": "treating_doctor", "name": "Dr Park"},
    ]
    people = participants_from(now, before, [new], decided=True)
    assert [p["participant_id"] for p in people] == [kept, new]
    assert people[0]["mails"] == [{"notification_id": "n1"}]
    assert [p["invitation"] for p in people] == ["invited", "awaiting_consent"]
    assert participants_from(now, [], decided=False)[0]["invitation"] is None
    # A mail is kept once per notification; one for somebody not on it is not kept.
    mail = {"kind": "agenda", "notification_id": "n2"}
    twice = with_mail(with_mail(people, kept, mail) or [], kept, mail) or []
    assert [m["notification_id"] for m in twice[0]["mails"]] == ["n1", "n2"]
    assert with_mail(people, gone, mail) is None


def test_actions_are_open_until_routing_says_more() -> None:
    action_id = str(uuid4())
    actions = tracked_actions([{"action_id": action_id, "description": "Book physio"}])
    assert actions[0]["status"] == "open" and not actions[0]["overdue"]
    done = with_action(actions, action_id, status="done")
    assert done is not None and done[0]["status"] == "done"
    assert with_action(actions, str(uuid4()), status="done") is None


DAY = date.today() + timedelta(days=30)


def _form(**fields: str) -> FormData:
    return FormData(list(fields.items()))


def test_the_plan_form_skips_blank_rows_and_names_errors_by_row() -> None:
    form = _form(
        purpose="Agree a return-to-work plan",
        scheduled_date=DAY.isoformat(),
        scheduled_time="10:30",
        duration_minutes="60",
        location="Warehouse 3",
        agenda="What happened\n\nSuitable duties\n",
        p0_role="worker",
        p0_name="Sam Rivera",
        p0_email="sam.rivera@example.com",
        p1_role="treating_doctor",  # a role alone: a blank row
        p2_role="",
        p2_name="Jo Union",
        p2_email="jo@union.example",
        o0_topic="Future employment",
        o0_worker="Light duties",
    )
    body, rows = forms.plan_body(form, "Australia/Sydney")
    # 10:30 on that day in Sydney, with that day's offset (daylight saving or not).
    sydney = datetime.combine(DAY, time(10, 30), ZoneInfo("Australia/Sydney"))
    assert body["scheduled_for"] == sydney.isoformat()
    assert body["time_zone"] == "Australia/Sydney"
    assert body["agenda"] == ["What happened", "Suitable duties"]
    assert [p["name"] for p in body["participants"]] == ["Sam Rivera", "Jo Union"]
    assert body["desired_outcomes"][0]["proposals"] == [{"by": "worker", "text": "Light duties"}]
    errors: dict[str, str] = {}
    try:
        ConferencePlanInput.model_validate(body)
    except ValidationError as exc:
        errors = forms.errors_for(exc, rows)
    # The second listed participant came from row 2: the error is shown beside that row.
    assert set(errors) == {"p2_role"}
    unreadable, _ = forms.plan_body(_form(scheduled_date="2030-03-04"), "UTC")
    assert unreadable["scheduled_for"] == ""


def test_history_tells_a_conference_in_staff_words() -> None:
    case_id = uuid4()
    plan = {"scheduled_for": "2030-03-03T23:30:00+00:00", "time_zone": "Australia/Sydney"}
    planned = new_envelope(
        event_type="conference.planned",
        schema_version=1,
        payload={"conference_id": str(uuid4()), "plan": plan},
        producer="routing",
        actor=Actor(type="service", id="routing"),
        case_id=case_id,
    )
    entry = consumed_entry(planned, CaseBefore(None, None, None), None)
    assert entry.kind == "conference_planned"
    line = describe(entry.kind, entry.summary, {})
    assert line == "Case conference planned for 2030-03-04 10:30 (Australia/Sydney)"
    assert describe("conference_agenda_sent", {"role": "treating_doctor"}, {}) == (
        "Conference agenda and invitation mailed to the treating doctor"
    )
    consent = {"given_by": "worker", "granted": True, "consent": "practitioner_involvement"}
    assert "the worker gave consent" in describe("consent_recorded", consent, {})
