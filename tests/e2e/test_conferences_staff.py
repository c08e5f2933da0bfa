"""Case conferences from the staff side, through the real system: intake's doors record each
request and publish it through the outbox; routing decides under its conference rules
(policy `conferences:`) and notifications relays the mails; intake's projection follows
routing's decisions. The case is a workplace-injury claim: injury management, Sydney
office calendar, confidential. Only the test of a decision intake never asked for
publishes as routing itself.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest

from shared.envelope import Actor, Envelope
from shared.events import (
    ConferenceHeld,
    EventPayload,
    make_event,
)
from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, PNG_MAGIC, needs_chromium
from tests.support.auth import auth_headers
from tests.support.bus import capture_events, publish_envelope
from tests.support.conferences import conference_day_has_come
from tests.support.system import running_system

REPORTER = {"employee_id": "E-7001", "name": "Sam Rivera", "email": "sam.rivera@example.com"}
AS_REPORTER = auth_headers("u-sam", "employee", employee_id=REPORTER["employee_id"])
AS_OTHER_EMPLOYEE = auth_headers("u-alex", "employee", employee_id="E-7002")
AS_AGENT = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
AS_INVESTIGATOR = auth_headers("A-3999", "investigator", employee_id="A-3999")
DEADLINE = 30.0
SYDNEY = ZoneInfo("Australia/Sydney")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "conferences-staff") as running:
        yield running


@pytest.fixture
async def capture(amqp, system):
    async with capture_events(amqp) as captured:
        yield captured


def client(system, headers=None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.url("intake"), timeout=10, headers=headers)


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def raise_injury_case(system, category: str = "workplace_injury") -> tuple[str, str]:
    body = {
        "subject": "Back injury lifting boxes",
        "description": "I hurt my back lifting boxes in the warehouse on Monday.",
        "reporter": REPORTER,
        "category": category,
    }
    async with client(system, AS_REPORTER) as c:
        accepted = await c.post("/api/v1/cases", json=body)
        assert accepted.status_code == 202, accepted.text
        case_id: str = accepted.json()["case_id"]

        async def assigned() -> bool:
            view = (await c.get(f"/api/v1/cases/{case_id}")).json()
            return bool(view.get("status") == "assigned")

        await eventually(assigned, "the case assigned")
    return case_id, accepted.json()["reference"]


def in_days(days: int) -> str:
    """10:00 in Sydney on the first weekday at least `days` days from today (there), as ISO
    8601 with its offset: far enough ahead for routing's notice rule (5 working days)."""
    day = datetime.now(SYDNEY).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(10, 0), tzinfo=SYDNEY).isoformat()


def plan_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "purpose": "Agree a return-to-work plan after the back injury",
        "scheduled_for": in_days(14),
        "duration_minutes": 60,
        "location": "Warehouse 3 meeting room, 12 Dock Road",
        "participants": [
            {"role": "worker", "name": "Sam Rivera", "email": "sam.rivera@example.com",
             "employee_id": "E-7001"},
            {"role": "employer_representative", "name": "Dana Wells",
             "email": "dana.wells@example.com"},
            {"role": "case_manager", "name": "Sofia Rossi", "email": "sofia.rossi@example.com",
             "employee_id": "A-4001"},
            {"role": "treating_doctor", "name": "Dr Lee Park", "email": "lee.park@clinic.example",
             "organisation": "Dock Road Clinic"},
        ],
        "agenda": ["What happened", "Suitable duties", "Treatment plan"],
    }  # fmt: skip
    body.update(overrides)
    return body


async def post(system, headers, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    async with client(system, headers) as c:
        return await c.post(path, json=body if body is not None else {})


async def conference(system, case_id: str, conference_id: str) -> dict[str, Any]:
    async with client(system, AS_AGENT) as c:
        found = await c.get(f"/api/v1/cases/{case_id}/conferences/{conference_id}")
    assert found.status_code == 200, found.text
    result: dict[str, Any] = found.json()
    return result


async def until(system, case_id, conference_id, check, what) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        found = await conference(system, case_id, conference_id)
        return found if check(found) else None

    result: dict[str, Any] = await eventually(reached, what)
    return result


async def publish_as(
    amqp, payload: EventPayload, producer: str, case_id: str, caused_by: dict[str, Any]
) -> Envelope:
    """Publish `payload` as `producer` would, caused by the captured envelope."""
    envelope = make_event(
        payload,
        producer=producer,
        actor=Actor(type="service", id=producer),
        case_id=UUID(case_id),
        caused_by=Envelope.model_validate(caused_by),
    )
    await publish_envelope(amqp, envelope)
    return envelope


async def test_bad_input_is_refused_naming_the_field_and_hidden_cases_are_404(system):
    case_id, _ = await raise_injury_case(system)
    path = f"/api/v1/cases/{case_id}/conferences"
    worker = plan_body()["participants"][0]
    cases = [
        (plan_body(scheduled_for="2030-01-10T10:00:00"), "scheduled_for"),  # no offset
        (plan_body(scheduled_for="2001-01-10T10:00:00Z"), "scheduled_for"),  # past
        (plan_body(participants=[{**worker, "role": "boss"}]), "role"),
        (plan_body(participants=[{**worker, "email": "not-an-address"}]), "email"),
        (plan_body(participants=[]), "participants"),
        (plan_body(location=None), "location"),  # neither location nor video_link
        (plan_body(mode="video"), "video_link"),
        (plan_body(video_link="http://meet.example/x", location=None), "video_link"),
        (plan_body(venue="other_venue"), "venue_reason"),
        (plan_body(time_zone="Mars/Olympus"), "time_zone"),
        (plan_body(duration_minutes=5), "duration_minutes"),
        (plan_body(agenda=[]), "agenda"),
        (plan_body(colour="red"), "colour"),
    ]
    for body, field in cases:
        refused = await post(system, AS_AGENT, path, body)
        assert refused.status_code == 422, (body, refused.text)
        assert any(e["loc"][-1] == field for e in refused.json()["detail"]), (field, refused.text)

    # Not staff: 403; a case the caller may not read: 404 as if missing.
    assert (await post(system, AS_REPORTER, path, plan_body())).status_code == 403
    restricted_id, _ = await raise_injury_case(system, "harassment")
    hidden = await post(system, AS_AGENT, f"/api/v1/cases/{restricted_id}/conferences", plan_body())
    missing = await post(system, AS_AGENT, f"/api/v1/cases/{uuid4()}/conferences", plan_body())
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    async with client(system, AS_AGENT) as c:
        assert (await c.get(f"/api/v1/cases/{restricted_id}/conferences")).status_code == 404
    async with client(system, AS_INVESTIGATOR) as c:  # not assigned to the restricted case
        assert (await c.get(f"/api/v1/cases/{restricted_id}/conferences")).status_code == 404

    # Consents: an employee who did not report the case sees nothing of it.
    consent = {"consent": "practitioner_involvement", "given_by": "worker"}
    other = await post(system, AS_OTHER_EMPLOYEE, f"/api/v1/cases/{case_id}/consents", consent)
    assert other.status_code == 404
    as_doctor = await post(
        system,
        AS_REPORTER,
        f"/api/v1/cases/{case_id}/consents",
        {**consent, "given_by": "treating_doctor"},
    )
    assert as_doctor.status_code == 422 and "given_by" in as_doctor.text
    unknown = await post(
        system, AS_AGENT, f"/api/v1/cases/{case_id}/consents", {**consent, "consent": "x"}
    )
    assert unknown.status_code == 422
    assert any(e["loc"][-1] == "consent" for e in unknown.json()["detail"])


async def test_a_conference_is_requested_and_follows_routing_to_completion(
    system, capture, amqp, admin_pool
):
    case_id, reference = await raise_injury_case(system)
    accepted = await post(system, AS_AGENT, f"/api/v1/cases/{case_id}/conferences", plan_body())
    assert accepted.status_code == 202, accepted.text
    answer = accepted.json()
    assert answer["status"] == "requested"
    assert answer["event_type"] == "conference.planning_requested"
    conference_id = answer["conference_id"]

    request = await capture.wait(lambda e: e["event_id"] == answer["event_id"])
    assert request["actor"] == {"type": "agent", "id": "A-1001"}
    assert request["producer"] == "intake" and request["case_id"] == case_id
    payload = request["payload"]
    assert payload["conference_id"] == conference_id and payload["reference"] == reference
    plan = payload["plan"]
    # Defaults: the injury management team's calendar zone, in person at the workplace,
    # the two standard outcome topics; the instant travels in UTC.
    assert plan["time_zone"] == "Australia/Sydney"
    assert plan["mode"] == "in_person" and plan["venue"] == "workplace"
    assert [o["topic"] for o in plan["desired_outcomes"]] == [
        "Future employment",
        "Ongoing treatment",
    ]
    assert datetime.fromisoformat(plan["scheduled_for"]) == datetime.fromisoformat(in_days(14))
    people = {p["role"]: p for p in payload["participants"]}
    assert len({p["participant_id"] for p in payload["participants"]}) == 4
    assert people["treating_doctor"]["organisation"] == "Dock Road Clinic"
    worker_id = people["worker"]["participant_id"]
    manager_id = people["case_manager"]["participant_id"]
    doctor_id = people["treating_doctor"]["participant_id"]

    # Routing accepts, holding the doctor back until the worker consents.
    planned = await capture.wait(
        lambda e: (
            e["event_type"] == "conference.planned"
            and e["payload"]["conference_id"] == conference_id
        )
    )
    assert planned["producer"] == "routing"
    assert planned["payload"]["awaiting_consent"] == [doctor_id]
    found = await until(
        system, case_id, conference_id, lambda c: c["status"] == "planned", "planned"
    )
    invitations = {p["role"]: p["invitation"] for p in found["participants"]}
    assert invitations == {
        "worker": "invited",
        "employer_representative": "invited",
        "case_manager": "invited",
        "treating_doctor": "awaiting_consent",
    }
    assert found["notice_working_days"] == 5

    # Notifications relayed the notice to the worker.
    await capture.wait(
        lambda e: (
            e["event_type"] == "conference.notice_sent"
            and e["payload"]["participant_id"] == worker_id
        )
    )
    found = await until(
        system,
        case_id,
        conference_id,
        lambda c: any(
            "notice" in [m["kind"] for m in p["mails"]]
            for p in c["participants"]
            if p["role"] == "worker"
        ),
        "the notice relayed",
    )

    # The worker consents in their own right; routing then invites the doctor.
    consent = await post(
        system,
        AS_REPORTER,
        f"/api/v1/cases/{case_id}/consents",
        {"consent": "practitioner_involvement", "given_by": "worker"},
    )
    assert consent.status_code == 202, consent.text
    recorded = await capture.wait(lambda e: e["event_id"] == consent.json()["event_id"])
    assert recorded["event_type"] == "conference.consent_recorded"
    assert recorded["payload"]["recorded_via"] == "portal"
    assert recorded["actor"] == {"type": "employee", "id": "E-7001"}
    invited = await capture.wait(
        lambda e: (
            e["event_type"] == "conference.participant_invited"
            and e["payload"]["conference_id"] == conference_id
        )
    )
    assert invited["payload"]["participant_id"] == doctor_id
    await until(
        system,
        case_id,
        conference_id,
        lambda c: all(p["invitation"] == "invited" for p in c["participants"]),
        "the doctor invited",
    )

    # A change: a new time, the employer's representative replaced; the others keep their
    # participant_id, so what intake knows of them stays (the worker's notice).
    kept = [p for p in payload["participants"] if p["role"] != "employer_representative"]
    new_time = in_days(15)
    if new_time == in_days(14):  # both rolled over a weekend to the same Monday
        new_time = in_days(17)
    changed = await post(
        system,
        AS_AGENT,
        f"/api/v1/cases/{case_id}/conferences/{conference_id}/changes",
        plan_body(
            scheduled_for=new_time,
            participants=[
                *({k: v for k, v in p.items() if v is not None} for p in kept),
                {"role": "employer_representative", "name": "Jo Marsh",
                 "email": "jo.marsh@example.com"},
            ],
            reason="The warehouse manager is away that week",
        ),
    )  # fmt: skip
    assert changed.status_code == 202, changed.text
    change_request = await capture.wait(lambda e: e["event_id"] == changed.json()["event_id"])
    assert change_request["event_type"] == "conference.change_requested"
    after = change_request["payload"]["participants"]
    assert [p["participant_id"] for p in after[:3]] == [worker_id, manager_id, doctor_id]
    assert after[3]["role"] == "employer_representative" and after[3]["participant_id"] not in {
        p["participant_id"] for p in payload["participants"]
    }
    stranger_kept = await post(
        system,
        AS_AGENT,
        f"/api/v1/cases/{case_id}/conferences/{conference_id}/changes",
        plan_body(
            participants=[{**plan_body()["participants"][0], "participant_id": str(uuid4())}],
            reason="A participant id from nowhere",
        ),
    )
    assert stranger_kept.status_code == 422 and "participants" in stranger_kept.text
    rescheduled = await capture.wait(
        lambda e: (
            e["event_type"] == "conference.rescheduled"
            and e["payload"]["conference_id"] == conference_id
        )
    )
    assert rescheduled["payload"]["changed"] == ["scheduled_for", "participants"]
    assert [p["name"] for p in rescheduled["payload"]["removed_participants"]] == ["Dana Wells"]
    found = await until(
        system, case_id, conference_id, lambda c: c["sequence"] == 1, "the change applied"
    )
    assert found["status"] == "planned"
    assert datetime.fromisoformat(found["plan"]["scheduled_for"]) == datetime.fromisoformat(
        new_time
    )
    by_role = {p["role"]: p for p in found["participants"]}
    assert set(by_role) == {"worker", "case_manager", "treating_doctor", "employer_representative"}
    assert by_role["employer_representative"]["name"] == "Jo Marsh"
    assert "notice" in [m["kind"] for m in by_role["worker"]["mails"]]
    assert by_role["employer_representative"]["invitation"] == "invited"

    # Held: attendance recorded by staff, confirmed by routing. Routing accepts a record
    # made after the conference was planned, not in the future and not before its scheduled
    # start (less an hour): its day, weeks ahead, is made to have come in routing's table
    # (after the change, which set the date again), and "now" is recorded.
    await conference_day_has_come(admin_pool, conference_id)
    held_at = datetime.now(UTC)
    attendance = [
        {"participant_id": worker_id, "attended": True},
        {"participant_id": doctor_id, "attended": False},
    ]
    hold = await post(
        system,
        AS_AGENT,
        f"/api/v1/cases/{case_id}/conferences/{conference_id}/attendance",
        {"held_at": held_at.isoformat(), "attendance": attendance},
    )
    assert hold.status_code == 202, hold.text
    hold_request = await capture.wait(lambda e: e["event_id"] == hold.json()["event_id"])
    assert hold_request["event_type"] == "conference.hold_recording_requested"
    held = await capture.wait(
        lambda e: (
            e["event_type"] == "conference.held" and e["payload"]["conference_id"] == conference_id
        )
    )
    assert datetime.fromisoformat(held["payload"]["held_at"]) == held_at
    await until(system, case_id, conference_id, lambda c: c["status"] == "held", "held")

    # The summary with one action owned by the worker; an unknown owner is refused.
    stranger = await post(
        system,
        AS_AGENT,
        f"/api/v1/cases/{case_id}/conferences/{conference_id}/summary",
        {
            "agreed_points": ["Light duties for four weeks"],
            "actions": [
                {
                    "description": "Send the duties",
                    "owner_participant_id": str(uuid4()),
                    "due_on": (date.today() + timedelta(days=7)).isoformat(),
                },
            ],
        },
    )
    assert stranger.status_code == 422, stranger.text
    due_on = datetime.now(SYDNEY).date() + timedelta(days=7)
    summary = await post(
        system,
        AS_AGENT,
        f"/api/v1/cases/{case_id}/conferences/{conference_id}/summary",
        {
            "agreed_points": ["Light duties for four weeks", "Physiotherapy twice a week"],
            "actions": [
                {
                    "description": "Send the suitable duties plan",
                    "owner_staff_id": "A-4001",
                    "due_on": due_on.isoformat(),
                },
                {
                    "description": "Book physiotherapy",
                    "owner_participant_id": worker_id,
                    "due_on": due_on.isoformat(),
                },
            ],
            "objections": [{"participant_id": worker_id, "text": "Four weeks is too short"}],
        },
    )
    assert summary.status_code == 202, summary.text
    action_ids = summary.json()["action_ids"]
    summary_request = await capture.wait(lambda e: e["event_id"] == summary.json()["event_id"])
    requested_actions = summary_request["payload"]["actions"]
    assert [a["action_id"] for a in requested_actions] == action_ids
    recorded_summary = await capture.wait(
        lambda e: (
            e["event_type"] == "conference.summary_recorded"
            and e["payload"]["conference_id"] == conference_id
        )
    )
    assert [a["owner_name"] for a in recorded_summary["payload"]["actions"]] == [
        "Sofia Rossi",
        "Sam Rivera",
    ]
    found = await until(
        system, case_id, conference_id, lambda c: c["status"] == "summarised", "summarised"
    )
    assert [a["status"] for a in found["actions"]] == ["open", "open"]
    assert found["summary"]["agreed_points"][1] == "Physiotherapy twice a week"

    # One action overdue and escalated, then done; the other carried out of the
    # conference: the conference completes.
    first, second = action_ids
    action_path = f"/api/v1/cases/{case_id}/conferences/{conference_id}/actions"
    # A week cannot pass in a test: the action's due instant is moved to now in routing's
    # table (as services/routing/tests/test_conferences_service.py does), so routing's
    # timer loop finds it overdue and escalates it.
    await admin_pool.execute(
        "UPDATE routing.conference_actions SET due_at = now() WHERE action_id = $1",
        UUID(first),
    )
    overdue = await capture.wait(
        lambda e: (
            e["event_type"] == "conference.action_overdue" and e["payload"]["action_id"] == first
        )
    )
    escalated_to = overdue["payload"]["escalated_to"]
    assert escalated_to is not None
    # The action's owner (Sofia Rossi) is passed over for the escalation.
    assert escalated_to["id"] != "A-4001"
    found = await until(
        system, case_id, conference_id, lambda c: c["actions"][0]["overdue"], "overdue"
    )
    assert found["actions"][0]["escalated_to_name"] == escalated_to["name"]
    done = await post(system, AS_AGENT, f"{action_path}/{first}/completion", {"note": "sent"})
    assert done.status_code == 202, done.text
    done_request = await capture.wait(lambda e: e["event_id"] == done.json()["event_id"])
    assert done_request["payload"] == {
        "reference": reference,
        "conference_id": conference_id,
        "action_id": first,
        "note": "sent",
    }
    completed = await capture.wait(
        lambda e: (
            e["event_type"] == "conference.action_completed" and e["payload"]["action_id"] == first
        )
    )
    assert completed["payload"]["on_time"] is False
    assert (
        await post(system, AS_AGENT, f"{action_path}/{second}/replanning", {})
    ).status_code == 422
    moved = await post(
        system,
        AS_AGENT,
        f"{action_path}/{second}/replanning",
        {"reason": "Moved to the next conference"},
    )
    assert moved.status_code == 202, moved.text
    moved_request = await capture.wait(lambda e: e["event_id"] == moved.json()["event_id"])
    assert moved_request["payload"]["due_on"] is None
    found = await until(
        system,
        case_id,
        conference_id,
        lambda c: [a["status"] for a in c["actions"]] == ["done", "ended"],
        "one action done, one carried out",
    )
    assert found["actions"][0]["note"] == "sent" and found["actions"][0]["on_time"] is False
    for ended in (first, second):
        again = await post(system, AS_AGENT, f"{action_path}/{ended}/completion")
        assert again.status_code == 409, again.text
    unknown = await post(system, AS_AGENT, f"{action_path}/{uuid4()}/completion")
    assert unknown.status_code == 404, unknown.text
    # With every action done or carried out, routing completes the conference itself.
    finished = await capture.wait(
        lambda e: (
            e["event_type"] == "conference.completed"
            and e["payload"]["conference_id"] == conference_id
        )
    )
    assert finished["payload"]["actions_completed"] == 1
    assert finished["payload"]["actions_replanned"] == 1
    await until(system, case_id, conference_id, lambda c: c["status"] == "completed", "completed")

    # The case's history tells the story in staff's words.
    async with client(system, AS_AGENT) as c:
        page = await c.get(f"/api/v1/cases/{case_id}/history")
    assert page.status_code == 200, page.text
    lines = [e["description"] for e in page.json()["entries"]]
    assert any(line.startswith("Requested a case conference for") for line in lines), lines
    assert any(line.startswith("Case conference planned for") for line in lines), lines
    assert "Conference notice mailed to the worker" in lines
    assert "Case conference completed: 1 action(s) done, 1 re-planned" in lines


async def test_a_refused_planning_shows_routing_s_reason(system, capture):
    case_id, _ = await raise_injury_case(system)
    # Tomorrow is too little notice under routing's rule (5 working days).
    too_soon = plan_body(scheduled_for=in_days(1))
    accepted = await post(system, AS_AGENT, f"/api/v1/cases/{case_id}/conferences", too_soon)
    assert accepted.status_code == 202, accepted.text
    refused = await capture.wait(
        lambda e: (
            e["event_type"] == "case.request_refused"
            and e["payload"]["request_event_id"] == accepted.json()["event_id"]
        )
    )
    assert refused["producer"] == "routing"
    reason = refused["payload"]["reason"]
    assert reason.startswith("too little notice: the agenda must go out at least 5 working days")
    found = await until(
        system,
        case_id,
        accepted.json()["conference_id"],
        lambda c: c["status"] == "refused",
        "refused",
    )
    assert found["refused_reason"] == reason
    # Nothing more can be asked of a refused conference.
    change = await post(
        system,
        AS_AGENT,
        f"/api/v1/cases/{case_id}/conferences/{accepted.json()['conference_id']}/cancellation",
        {"reason": "not needed"},
    )
    assert change.status_code == 409, change.text


async def ops(system, *args: str) -> str:
    """Run `hrcase ARGS` as an operator would, in the system's environment; its output."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hrcase.cli", *args],
        env=system.services["intake"].env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


async def test_a_decision_about_a_conference_intake_never_recorded_holds_the_case(
    system, capture, amqp
):
    """Dead-lettered by intake, it holds the case there: routing's real answer that follows
    is not applied past it but dead-lettered behind it, until an operator releases the
    foreign event and replays the rest (`hrcase holds`, `hrcase dlq replay`)."""
    case_id, reference = await raise_injury_case(system)
    submitted = await capture.wait(
        lambda e: e["case_id"] == case_id and e["event_type"] == "case.submitted"
    )
    # A decision about a conference intake never recorded, as a faulty routing would send it.
    unknown_id = uuid4()
    foreign = ConferenceHeld(
        reference=reference,
        conference_id=unknown_id,
        held_at=datetime.now(UTC),
        attendance=[],
        summary_due_at=datetime.now(UTC) + timedelta(days=7),
    )
    envelope = await publish_as(amqp, foreign, "routing", case_id, submitted)
    foreign_id = str(envelope.event_id)

    async def held_behind_foreign() -> str | None:
        listed = await ops(system, "holds", "list", "--service", "intake")
        return listed if f"case {case_id}  #" in listed and foreign_id in listed else None

    listed = await eventually(held_behind_foreign, "intake to hold the case")
    assert "is not known to intake" in listed
    accepted = await post(system, AS_AGENT, f"/api/v1/cases/{case_id}/conferences", plan_body())
    conference_id = accepted.json()["conference_id"]
    planned = await capture.wait(
        lambda e: e["event_type"] == "conference.planned" and e["case_id"] == case_id
    )

    async def answer_held() -> str | None:
        letters = await ops(system, "dlq", "list", "intake", "--case", case_id)
        return letters if planned["event_id"] in letters else None

    letters = await eventually(answer_held, "routing's answer dead-lettered behind it")
    [line] = [x for x in letters.splitlines() if planned["event_id"] in x]
    assert f"CaseHeld behind {foreign_id}" in line
    assert f"held behind event {foreign_id} (conference.held)" in line
    found = await conference(system, case_id, conference_id)
    assert found["status"] != "planned"  # not applied past the foreign event

    # The operator: the foreign event is never to be applied; the rest goes in order.
    released = await ops(system, "holds", "release", "intake", case_id, "--event", foreign_id)
    assert "1 held event(s)" in released
    replayed = await ops(system, "dlq", "replay", "intake", "--case", case_id)
    assert "replayed: " in replayed and planned["event_id"] in replayed
    assert f"{foreign_id}  conference.held" not in replayed  # released: it stays in the DLQ
    found = await until(
        system, case_id, conference_id, lambda c: c["status"] == "planned", "routing's plan"
    )
    assert found["attendance"] is None
    left = await ops(system, "dlq", "list", "intake", "--case", case_id)
    assert f"{foreign_id}  conference.held" in left and planned["event_id"] not in left


@needs_chromium
async def test_an_injury_agent_plans_a_conference_in_the_portal(system, amqp, capture, tmp_path):
    from playwright.async_api import async_playwright

    case_id, reference = await raise_injury_case(system)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        context = await browser.new_context(
            base_url=system.url("intake"), java_script_enabled=False
        )
        page = await context.new_page()
        await page.goto("/portal/sign-in")
        await page.get_by_label(re.compile("Sofia Rossi")).check()
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(re.compile(r"/portal/work-queue$"))

        await page.goto(f"/portal/cases/{case_id}")
        section = page.locator("#conferences")
        assert "No case conferences yet." in await section.inner_text()
        await section.get_by_role("link", name="Plan a conference").click()
        await page.wait_for_url(f"**/portal/cases/{case_id}/conferences/new")

        # Pre-filled: the worker from the case's reporter, the case manager from its owner.
        assert await page.locator("#p0_role").input_value() == "worker"
        assert await page.locator("#p0_name").input_value() == "Sam Rivera"
        assert await page.locator("#p1_role").input_value() == "case_manager"
        assert await page.locator("#p1_email").input_value() != ""
        assert await page.locator("#time_zone").input_value() == "Australia/Sydney"
        assert await page.locator("#o0_topic").input_value() == "Future employment"

        day = (date.today() + timedelta(days=21)).isoformat()
        await page.get_by_label("Purpose").fill("Agree a return-to-work plan")
        await page.get_by_label("Date", exact=True).fill(day)
        await page.get_by_label("Start time").fill("10:30")
        await page.get_by_label("Agenda").fill("What happened\nSuitable duties\nTreatment")
        await page.locator("#location").fill("Warehouse 3 meeting room, 12 Dock Road")
        await page.locator("#p2_name").fill("Dana Wells")
        await page.locator("#p2_email").fill("dana.wells@example.com")
        await page.locator("#o0_worker").fill("Back on light duties from week 2")
        await page.locator("#o0_employer").fill("Light duties in dispatch")
        form_shot = tmp_path / "conference-planning-form.png"
        await page.screenshot(path=str(form_shot), full_page=True)

        # Without a place, and with a participant of no role: each error beside its field,
        # everything typed kept.
        await page.locator("#location").fill("")
        await page.locator("#p4_name").fill("Jo Union")
        await page.locator("#p4_email").fill("jo@union.example")
        await page.get_by_role("button", name="Plan the conference").click()
        error = await page.locator("#location-error").inner_text()
        assert "give the address of the location" in error
        assert "Input should be" in await page.locator("#p4_role-error").inner_text()
        assert await page.get_by_label("Purpose").input_value() == "Agree a return-to-work plan"
        assert await page.locator("#o0_worker").input_value() == "Back on light duties from week 2"
        await page.locator("#location").fill("Warehouse 3 meeting room, 12 Dock Road")
        await page.locator("#p4_role").select_option("union_representative")
        await page.get_by_role("button", name="Plan the conference").click()
        await page.wait_for_url(re.compile(r"/conferences/[0-9a-f-]{36}\?done=planned$"))
        conference_id = page.url.split("/conferences/")[1].split("?")[0]
        assert await page.locator("#conference-status").inner_text() == "Waiting for routing"

        request = await capture.wait(
            lambda e: (
                e["event_type"] == "conference.planning_requested"
                and e["payload"]["conference_id"] == conference_id
            )
        )
        assert request["actor"]["id"] == "A-4001"
        plan = request["payload"]["plan"]
        assert plan["time_zone"] == "Australia/Sydney" and plan["venue"] == "workplace"
        assert plan["agenda"] == ["What happened", "Suitable duties", "Treatment"]
        starts = datetime.fromisoformat(plan["scheduled_for"])
        assert starts.astimezone(SYDNEY).strftime("%Y-%m-%d %H:%M") == f"{day} 10:30"
        proposals = plan["desired_outcomes"][0]["proposals"]
        assert {p["by"] for p in proposals} == {"worker", "employer_representative"}
        roles = [p["role"] for p in request["payload"]["participants"]]
        assert roles == [
            "worker",
            "case_manager",
            "employer_representative",
            "union_representative",
        ]

        # Routing plans it under its rules (the form named everyone it requires).
        await capture.wait(
            lambda e: (
                e["event_type"] == "conference.planned"
                and e["payload"]["conference_id"] == conference_id
            )
        )

        async def planned() -> bool:
            await page.reload()
            return await page.locator("#conference-status").inner_text() == "Planned"

        await eventually(planned, "the page to show the conference planned")
        assert "10:30 (Australia/Sydney)" in await page.locator("#conference-when").inner_text()
        detail_shot = tmp_path / "conference-detail.png"
        await page.screenshot(path=str(detail_shot), full_page=True)

        await page.get_by_role("link", name=f"Back to {reference}").click()
        row = page.locator(f"#conference-{conference_id}")
        assert "Planned" in await row.inner_text()
        assert "10:30 (Australia/Sydney)" in await row.inner_text()
        await browser.close()
    for shot in (form_shot, detail_shot):
        data = shot.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
        # The README's screenshots are refreshed on request only, so a test run leaves the
        # checkout as it was: HRCASE_UPDATE_SCREENSHOTS=1 pytest tests/e2e/test_conferences_staff.py
        if os.environ.get("HRCASE_UPDATE_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            (SCREENSHOTS / shot.name).write_bytes(data)


@needs_chromium
async def test_staff_follow_a_conference_through_its_page(
    system, amqp, capture, admin_pool, tmp_path
):
    """Consent, attendance (with each party's turn on the telephone), summary and an
    action, each from the conference's page; routing answers each request itself."""
    from playwright.async_api import async_playwright

    case_id, _ = await raise_injury_case(system)
    as_sofia = auth_headers("A-4001", "hr_agent", employee_id="A-4001")
    body = plan_body(mode="telephone", location="Dial 1800 000 000, code 4411")
    accepted = await post(system, as_sofia, f"/api/v1/cases/{case_id}/conferences", body)
    assert accepted.status_code == 202, accepted.text
    conference_id = accepted.json()["conference_id"]
    request = await capture.wait(lambda e: e["event_id"] == accepted.json()["event_id"])
    await capture.wait(
        lambda e: (
            e["event_type"] == "conference.planned"
            and e["payload"]["conference_id"] == conference_id
        )
    )
    await until(system, case_id, conference_id, lambda c: c["status"] == "planned", "planned")
    worker_id = request["payload"]["participants"][0]["participant_id"]
    # The page records attendance to the minute, an hour ago; routing refuses a conference
    # held before it was planned or before its scheduled start, so the plan is dated two
    # hours back in routing's table and then its day is made to have come.
    await admin_pool.execute(
        "UPDATE routing.conferences SET planned_at = now() - interval '2 hours'"
        " WHERE conference_id = $1",
        UUID(conference_id),
    )
    await conference_day_has_come(admin_pool, conference_id)
    url = f"/portal/cases/{case_id}/conferences/{conference_id}"

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        context = await browser.new_context(
            base_url=system.url("intake"), java_script_enabled=False
        )
        page = await context.new_page()
        await page.goto(f"/portal/sign-in?next={url}")
        await page.get_by_label(re.compile("Sofia Rossi")).check()
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(f"**{url}")

        async def status_is(label: str) -> bool:
            await page.goto(url)
            return await page.locator("#conference-status").inner_text() == label

        # A cancellation needs its reason: said beside the field, nothing published.
        await page.get_by_role("button", name="Cancel the conference").click()
        assert await page.locator("#cancel_reason-error").count() == 1

        # Consent recorded by staff, with what it rests on.
        await page.get_by_text("Record a consent").click()
        await page.get_by_label("Consent", exact=True).select_option("practitioner_involvement")
        await page.get_by_label("What it rests on").fill("signed form, 3 Dec")
        await page.get_by_role("button", name="Record consent").click()
        assert await page.get_by_role("status").inner_text() == "Consent recorded."
        consent = await capture.wait(lambda e: e["event_type"] == "conference.consent_recorded")
        assert consent["payload"]["recorded_via"] == "staff"
        assert consent["payload"]["basis"] == "signed form, 3 Dec"
        assert "signed form, 3 Dec" in await page.locator("#consent-list").inner_text()

        # Attendance: the worker attended and had their turn (a telephone conference).
        held = datetime.now(SYDNEY).replace(second=0, microsecond=0) - timedelta(hours=1)
        await page.locator("#held_date").fill(held.date().isoformat())
        await page.locator("#held_time").fill(held.strftime("%H:%M"))
        await page.locator(f"input[name=att_{worker_id}]").check()
        await page.locator(f"input[name=view_{worker_id}]").check()
        await page.get_by_role("button", name="Record attendance").click()
        hold = await capture.wait(
            lambda e: (
                e["event_type"] == "conference.hold_recording_requested"
                and e["payload"]["conference_id"] == conference_id
            )
        )
        assert datetime.fromisoformat(hold["payload"]["held_at"]) == held
        worker_attended = hold["payload"]["attendance"][0]
        assert worker_attended == {
            "participant_id": worker_id,
            "attended": True,
            "view_stated": True,
        }
        assert [a["attended"] for a in hold["payload"]["attendance"][1:]] == [False] * 3
        await capture.wait(
            lambda e: (
                e["event_type"] == "conference.held"
                and e["payload"]["conference_id"] == conference_id
            )
        )
        await eventually(lambda: status_is("Held, summary to write"), "the page to show held")
        assert (
            "had their turn to state their view"
            in await page.locator("#attendance-list").inner_text()
        )

        # The summary: agreed points, one action owned by the case manager.
        due_on = date.today() + timedelta(days=10)
        await page.get_by_label("Agreed points").fill("Light duties for four weeks\nPhysio")
        await page.locator("#a0_description").fill("Send the suitable duties plan")
        await page.locator("#a0_owner").select_option("s:A-4001")
        await page.locator("#a0_due_on").fill(due_on.isoformat())
        await page.locator("#x0_text").fill("Four weeks is too short")
        await page.locator("#x0_by").select_option(worker_id)
        await page.get_by_role("button", name="Record the summary").click()
        written = await capture.wait(
            lambda e: (
                e["event_type"] == "conference.summary_recording_requested"
                and e["payload"]["conference_id"] == conference_id
            )
        )
        payload = written["payload"]
        assert payload["agreed_points"] == ["Light duties for four weeks", "Physio"]
        (action,) = payload["actions"]
        assert action["owner_staff_id"] == "A-4001" and action["due_on"] == due_on.isoformat()
        assert payload["objections"] == [
            {"participant_id": worker_id, "text": "Four weeks is too short"}
        ]
        await capture.wait(
            lambda e: (
                e["event_type"] == "conference.summary_recorded"
                and e["payload"]["conference_id"] == conference_id
            )
        )
        await eventually(
            lambda: status_is("Summarised, actions open"), "the page to show the summary"
        )
        assert "Four weeks is too short" in await page.locator("#summary-objections").inner_text()
        await page.screenshot(path=str(tmp_path / "conference-summarised.png"), full_page=True)

        await page.get_by_text("Mark done").click()
        await page.get_by_role("button", name="Mark action done").click()
        done = await capture.wait(
            lambda e: (
                e["event_type"] == "conference.action_completion_requested"
                and e["payload"]["action_id"] == action["action_id"]
            )
        )
        assert done["actor"]["id"] == "A-4001"
        await browser.close()
    shot = (tmp_path / "conference-summarised.png").read_bytes()
    assert shot.startswith(PNG_MAGIC)
