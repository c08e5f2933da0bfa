"""Independent case management (mediation) at intake's doors, through the real system.

A grievance case (Employee Relations, confidential) raised by Sam Rivera (E-7001, the
employee party); Jordan Blake (E-7100, Sam's manager) is the employer's representative.
Routing's process logic is written elsewhere: this test publishes, as routing would, the
decisions intake projects (case.process_assigned, case.stage_entered,
case.process_role_assigned, agreement.in_force, agreement.obligation_*,
case.follow_up_due). The case manager is the case's owner (who may act on it); Victor
(M-9002, hr_manager) may act on it but is not the case manager.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from shared.envelope import Actor, Envelope
from shared.events import (
    AgreementInForce,
    AgreementObligation,
    AgreementObligationOverdue,
    CaseFollowUpDue,
    CaseProcessAssigned,
    CaseProcessRoleAssigned,
    CaseStageEntered,
    EventPayload,
    Person,
    ProcessStage,
    make_event,
)
from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, PNG_MAGIC, needs_chromium
from tests.support.auth import auth_headers
from tests.support.bus import capture_events, publish_envelope
from tests.support.processes import policy_without_processes
from tests.support.system import running_system

SAM = {"role": "employee", "employee_id": "E-7001", "name": "Sam Rivera",
       "email": "sam.rivera@example.com"}  # fmt: skip
JORDAN = {"role": "employer_representative", "employee_id": "E-7100", "name": "Jordan Blake",
          "email": "jordan.blake@example.com"}  # fmt: skip
AS_SAM = auth_headers("u-sam", "employee", employee_id="E-7001")
AS_JORDAN = auth_headers("u-jordan", "employee", employee_id="E-7100")
AS_ALEX = auth_headers("u-alex", "employee", employee_id="E-7002")
AS_VICTOR = auth_headers("M-9002", "hr_manager", "employee", employee_id="M-9002")
AS_AUDITOR = auth_headers("AU-1001", "auditor", employee_id="AU-1001")
DEADLINE = 30.0
STAGES = [
    ("assessment", "Initial assessment"),
    ("ground_rules", "Ground rules"),
    ("discussions", "Facilitated discussions"),
    ("agreement", "Written agreement"),
    ("follow_up", "Follow-up"),
    ("closed", "Closed"),
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PRIVILEGED = "Privately: Jordan seems ready to concede the rota point."


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir, tmp_path_factory):
    # Routing routes the cases but, with no processes in its policy, leaves the process
    # decisions to this module, which publishes them as routing would (the whole flow on
    # the shipped policy: tests/e2e/test_case_management_flow.py).
    policy = policy_without_processes(tmp_path_factory.mktemp("policy") / "policy.yaml")
    with running_system(
        database_url, rabbitmq_url, logs_dir / "mediation", ROUTING_POLICY_FILE=str(policy)
    ) as running:
        yield running


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


def staff(owner_id: str) -> dict[str, str]:
    return auth_headers(owner_id, "hr_agent", "employee", employee_id=owner_id)


async def raise_grievance(system) -> tuple[str, str, str]:
    """A grievance by Sam: (case id, reference, owner id) once routing assigned it."""
    body = {
        "subject": "My shift rota was changed unfairly",
        "description": "My manager changed my rota without notice; I want to raise a grievance.",
        "reporter": {k: SAM[k] for k in ("employee_id", "name", "email")},
        "category": "grievance",
    }
    async with client(system, AS_SAM) as c:
        accepted = await c.post("/api/v1/cases", json=body)
        assert accepted.status_code == 202, accepted.text
        case_id: str = accepted.json()["case_id"]

    async with client(system, AS_VICTOR) as c:

        async def assigned() -> dict[str, Any] | None:
            view = (await c.get(f"/api/v1/cases/{case_id}")).json()
            owner = (view.get("assignment") or {}).get("owner_id")
            return view if view.get("status") == "assigned" and owner else None

        view = await eventually(assigned, "the case assigned")
    return case_id, accepted.json()["reference"], view["assignment"]["owner_id"]


async def as_routing(amqp, case_id: str, payload: EventPayload) -> Envelope:
    envelope = make_event(
        payload, producer="routing", actor=Actor(type="service", id="routing"),
        case_id=UUID(case_id),
    )  # fmt: skip
    await publish_envelope(amqp, envelope)
    return envelope


async def in_case_management(
    amqp, system, case_id: str, reference: str, manager: dict[str, str], stage: str
) -> None:
    """Routing's decisions: the process, the case manager, and `stage`."""
    await as_routing(
        amqp,
        case_id,
        CaseProcessAssigned(
            reference=reference, process="case_management", label="Independent case management",
            stages=[ProcessStage(name=n, label=lbl) for n, lbl in STAGES],
            endings=["resolved_by_agreement", "withdrawn", "referred_on"], assigned_by="staff",
            reason="Both sides agree to try independent case management",
        ),
    )  # fmt: skip
    await as_routing(
        amqp,
        case_id,
        CaseProcessRoleAssigned(
            reference=reference, process="case_management", role="case_manager",
            person=Person(**manager),
        ),
    )  # fmt: skip
    await enter_stage(amqp, system, case_id, reference, stage)


async def enter_stage(
    amqp, system, case_id: str, reference: str, stage: str, ending: str | None = None
) -> None:
    label = dict(STAGES)[stage]
    await as_routing(
        amqp,
        case_id,
        CaseStageEntered(
            reference=reference, process="case_management", stage=stage, label=label,
            direction="final" if ending else "forward", ending=ending,
            reason="Resolved" if ending else None,
        ),
    )  # fmt: skip

    async def entered() -> bool:
        async with client(system, AS_VICTOR) as c:
            found = await c.get(f"/api/v1/cases/{case_id}/mediation")
        return found.status_code == 200 and found.json()["stage"] == stage

    await eventually(entered, f"stage {stage}")


async def post(system, headers, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    async with client(system, headers) as c:
        return await c.post(path, json=body if body is not None else {})


async def get(system, headers, path: str) -> httpx.Response:
    async with client(system, headers) as c:
        return await c.get(path)


def assessment(party: dict[str, str], account: str, outcomes: list[str]) -> dict[str, Any]:
    return {"party": party, "account": account, "desired_outcomes": outcomes}


def in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat()


def field_named(response: httpx.Response, field: str) -> bool:
    return any(e["loc"][-1] == field for e in response.json()["detail"])


@pytest.fixture
async def case(amqp, system):
    """A grievance in case management (assessment stage), its owner the case manager."""
    case_id, reference, owner_id = await raise_grievance(system)
    manager = {
        "id": owner_id,
        "name": owner_id,
        "email": f"{owner_id.lower()}@example.com",
    }
    await in_case_management(amqp, system, case_id, reference, manager, "assessment")
    return {"id": case_id, "reference": reference, "owner": owner_id, "manager": staff(owner_id)}


async def assess_both(system, case) -> None:
    base = f"/api/v1/cases/{case['id']}/mediation"
    for party, account in (
        (SAM, "SAM-ACCOUNT: the rota changed three times in May without notice."),
        (JORDAN, "JORDAN-ACCOUNT: the rota changed because two colleagues left."),
    ):
        done = await post(
            system, case["manager"], f"{base}/assessments",
            assessment(party, account, ["A predictable rota"]),
        )  # fmt: skip
        assert done.status_code == 202, done.text


async def test_the_case_managers_doors_refuse_bad_input_naming_the_field(amqp, system, case):
    base = f"/api/v1/cases/{case['id']}/mediation"
    manager = case["manager"]
    bad_assessments = [
        (assessment({**SAM, "role": "boss"}, "x", ["y"]), "role"),
        (assessment({**SAM, "email": "nope"}, "x", ["y"]), "email"),
        (assessment(SAM, "", ["y"]), "account"),
        (assessment(SAM, "x", []), "desired_outcomes"),
        (assessment(SAM, "x", ["  "]), "desired_outcomes"),
        ({**assessment(SAM, "x", ["y"]), "documents": [str(uuid4())]}, "documents"),
        ({**assessment(SAM, "x", ["y"]), "colour": "red"}, "colour"),
    ]
    for body, field in bad_assessments:
        refused = await post(system, manager, f"{base}/assessments", body)
        assert refused.status_code == 422, (body, refused.text)
        if (
            field == "documents"
            and refused.json()["detail"]
            and isinstance(refused.json()["detail"], str)
        ):
            assert "documents" in refused.json()["detail"]
        else:
            assert field_named(refused, field), (field, refused.text)

    # Ground rules and meetings wait for both parties' assessments (409 with the reason).
    early = await post(system, manager, f"{base}/ground-rules", {"rules": ["Listen"]})
    assert early.status_code == 409 and "assessed" in early.json()["detail"], early.text
    await assess_both(system, case)
    for body, field in [({"rules": []}, "rules"), ({"rules": [" "]}, "rules")]:
        refused = await post(system, manager, f"{base}/ground-rules", body)
        assert refused.status_code == 422 and field_named(refused, field), refused.text

    meeting = {"scheduled_for": in_days(7), "duration_minutes": 60, "location": "Room 2"}
    bad_meetings = [
        ({**meeting, "scheduled_for": "2001-01-01T10:00:00Z"}, "scheduled_for"),
        ({**meeting, "scheduled_for": "2030-01-01T10:00:00"}, "scheduled_for"),
        ({**meeting, "duration_minutes": 5}, "duration_minutes"),
        ({**meeting, "time_zone": "Mars/Olympus"}, "time_zone"),
        ({**meeting, "location": None}, "location"),
        ({**meeting, "video_link": "http://meet.example/x"}, "video_link"),
    ]
    for body, field in bad_meetings:
        refused = await post(system, manager, f"{base}/meetings", body)
        assert refused.status_code == 422 and field_named(refused, field), (field, refused.text)
    unknown = await post(
        system, manager, f"{base}/meetings/{uuid4()}/record",
        {"held_at": in_days(-1), "discussed": "x"},
    )  # fmt: skip
    assert unknown.status_code == 404, unknown.text

    # The agreement: its stage only; then owner_role and due_on go together, never past.
    term = {"text": "Rota published two weeks ahead", "owner_role": "employer_representative",
            "due_on": (date.today() + timedelta(days=30)).isoformat()}  # fmt: skip
    wrong_stage = await post(system, manager, f"{base}/agreement", {"terms": [term]})
    assert wrong_stage.status_code == 409 and "agreement stage" in wrong_stage.json()["detail"]
    await enter_stage(amqp, system, case["id"], case["reference"], "agreement")
    bad_terms = [
        ({**term, "due_on": None}, "due_on"),
        ({"text": "x", "due_on": term["due_on"]}, "due_on"),
        ({**term, "due_on": "2001-01-01"}, "due_on"),
        ({**term, "owner_role": "boss"}, "owner_role"),
        ({**term, "text": ""}, "text"),
    ]
    for body, field in bad_terms:
        refused = await post(system, manager, f"{base}/agreement", {"terms": [body]})
        assert refused.status_code == 422 and field_named(refused, field), (field, refused.text)
    met = await post(
        system, manager, f"{base}/agreement/obligations/{uuid4()}/met",
        {"met_on": date.today().isoformat()},
    )  # fmt: skip
    assert met.status_code == 404, met.text


async def test_who_may_use_the_doors(amqp, system, case):
    base = f"/api/v1/cases/{case['id']}/mediation"
    body = assessment(SAM, "An account", ["An outcome"])
    # An employee: 403 (no staff role); no such case: 404.
    assert (await post(system, AS_SAM, f"{base}/assessments", body)).status_code == 403
    assert (await get(system, AS_SAM, base)).status_code == 403
    missing = await post(
        system, case["manager"], f"/api/v1/cases/{uuid4()}/mediation/assessments", body
    )
    assert missing.status_code == 404
    assert (
        await get(system, case["manager"], f"/api/v1/cases/{uuid4()}/mediation")
    ).status_code == 404
    # Staff who may read the (confidential) case but hold no case manager role: they read
    # it, they record nothing (403).
    for other_id in ("A-1001", "A-2002" if case["owner"] == "A-2001" else "A-2001"):
        refused = await post(system, staff(other_id), f"{base}/assessments", body)
        assert refused.status_code == 403, refused.text
        assert "case manager role" in refused.json()["detail"]
        assert (await get(system, staff(other_id), base)).status_code == 200
    # Victor (hr_manager, not the case manager) may record.
    assert (await post(system, AS_VICTOR, f"{base}/assessments", body)).status_code == 202
    # A party's page: 404 for anyone who is not a party.
    assert (await get(system, AS_SAM, f"{base}/mine")).status_code == 200
    assert (await get(system, AS_JORDAN, f"{base}/mine")).status_code == 404
    assert (await get(system, AS_ALEX, f"{base}/mine")).status_code == 404

    # A case not in case management: 409 with the reason.
    plain_id, _, plain_owner = await raise_grievance(system)
    refused = await post(
        system, staff(plain_owner), f"/api/v1/cases/{plain_id}/mediation/assessments", body
    )
    assert refused.status_code == 403  # no case manager role on it, not an hr_manager
    refused = await post(system, AS_VICTOR, f"/api/v1/cases/{plain_id}/mediation/assessments", body)
    assert refused.status_code == 409
    assert "not in independent case management" in refused.json()["detail"]

    # Once ended, nothing more is recorded.
    await enter_stage(amqp, system, case["id"], case["reference"], "closed", ending="withdrawn")
    ended = await post(system, AS_VICTOR, f"{base}/assessments", body)
    assert ended.status_code == 409 and "ended" in ended.json()["detail"], ended.text


async def test_the_whole_process_and_who_sees_what(amqp, system, case):
    case_id, reference = case["id"], case["reference"]
    base = f"/api/v1/cases/{case_id}/mediation"
    manager = case["manager"]
    async with capture_events(amqp) as captured:
        await assess_both(system, case)
        recorded = await captured.wait(
            lambda e: e["event_type"] == "mediation.assessment_recorded" and e["case_id"] == case_id
        )
        assert recorded["payload"]["party"]["role"] == "employee"

        # Ground rules, accepted per party.
        proposed = await post(
            system,
            manager,
            f"{base}/ground-rules",
            {"rules": ["Listen without interrupting", "Keep it confidential"]},
        )
        assert proposed.status_code == 202, proposed.text
        rules_id = proposed.json()["ground_rules_id"]
        event = await captured.wait(lambda e: e["event_type"] == "mediation.ground_rules_proposed")
        assert {p["role"] for p in event["payload"]["parties"]} == {
            "employee", "employer_representative"}  # fmt: skip
        sam_accepts = await post(system, AS_SAM, f"{base}/ground-rules/{rules_id}/accept")
        assert sam_accepts.status_code == 202, sam_accepts.text
        again = await post(system, AS_SAM, f"{base}/ground-rules/{rules_id}/accept")
        assert again.status_code == 409
        assert (
            await post(system, AS_ALEX, f"{base}/ground-rules/{rules_id}/accept")
        ).status_code == 404
        accepted = await captured.wait(
            lambda e: e["event_type"] == "mediation.ground_rules_accepted"
        )
        assert accepted["payload"]["party_role"] == "employee"
        assert accepted["payload"]["employee_id"] == "E-7001"
        mine = (await get(system, AS_JORDAN, f"{base}/mine")).json()
        assert mine["ground_rules"]["accepted_by"] == ["employee"]
        assert not mine["ground_rules"]["you_accepted"]
        assert (
            await post(system, AS_JORDAN, f"{base}/ground-rules/{rules_id}/accept")
        ).status_code == 202

        # A meeting, scheduled and held with privileged notes.
        meeting = {"scheduled_for": in_days(3), "duration_minutes": 90,
                   "video_link": "https://meet.example/mediation-1",
                   "time_zone": "Europe/London"}  # fmt: skip
        scheduled = await post(system, manager, f"{base}/meetings", meeting)
        assert scheduled.status_code == 202, scheduled.text
        meeting_id = scheduled.json()["meeting_id"]
        event = await captured.wait(lambda e: e["event_type"] == "mediation.meeting_scheduled")
        assert event["payload"]["case_manager"]["id"] == case["owner"]
        record = {"held_at": in_days(0),
                  "discussed": "SHARED-SUMMARY: the rota and notice periods.",
                  "proposals": ["Publish the rota two weeks ahead"],
                  "privileged_notes": PRIVILEGED}  # fmt: skip
        held = await post(system, manager, f"{base}/meetings/{meeting_id}/record", record)
        assert held.status_code == 202, held.text
        twice = await post(
            system,
            manager,
            f"{base}/meetings/{meeting_id}/record",
            {"held_at": in_days(0), "discussed": "again"},
        )
        assert twice.status_code == 409

    # Privileged notes: the case manager only.
    own = (await get(system, manager, base)).json()
    assert own["viewer_is_case_manager"] and own["meetings"][0]["privileged_notes"] == PRIVILEGED
    victor = await get(system, AS_VICTOR, base)
    assert victor.status_code == 200 and PRIVILEGED not in victor.text
    assert victor.json()["privileged_notes_hidden"]
    assert "SHARED-SUMMARY" in victor.text and "JORDAN-ACCOUNT" in victor.text
    for party in (AS_SAM, AS_JORDAN):
        seen = await get(system, party, f"{base}/mine")
        assert seen.status_code == 200
        assert PRIVILEGED not in seen.text and "SHARED-SUMMARY" in seen.text
    # Each party reads their own account, never the other's.
    sam_view = (await get(system, AS_SAM, f"{base}/mine")).text
    jordan_view = (await get(system, AS_JORDAN, f"{base}/mine")).text
    assert "SAM-ACCOUNT" in sam_view and "JORDAN-ACCOUNT" not in sam_view
    assert "JORDAN-ACCOUNT" in jordan_view and "SAM-ACCOUNT" not in jordan_view

    # The written agreement: version 1, accepted by Sam, then re-drafted (acceptances go).
    await enter_stage(amqp, system, case_id, reference, "agreement")
    due = date.today() + timedelta(days=20)
    terms = [
        {"text": "The rota is published two weeks ahead", "owner_role": "employer_representative",
         "due_on": due.isoformat()},
        {"text": "Sam raises rota concerns with Jordan first", "owner_role": "employee",
         "due_on": (due + timedelta(days=10)).isoformat()},
        {"text": "Both treat the discussions as confidential"},
    ]  # fmt: skip
    first = await post(system, manager, f"{base}/agreement", {"terms": terms[:2]})
    assert first.status_code == 202, first.text
    agreement_id, version = first.json()["agreement_id"], first.json()["version"]
    assert version == 1
    assert (await post(system, AS_SAM, f"{base}/agreement/{agreement_id}/accept",
                       {"version": 1})).status_code == 202  # fmt: skip
    assert (await get(system, AS_VICTOR, base)).json()["agreement"]["state"] == "accepted_by_one"
    second = await post(system, manager, f"{base}/agreement", {"terms": terms})
    assert second.status_code == 202 and second.json()["version"] == 2
    assert second.json()["agreement_id"] == agreement_id
    term_ids = second.json()["term_ids"]
    after = (await get(system, AS_VICTOR, base)).json()["agreement"]
    assert after["state"] == "draft" and after["accepted_by"] == {}
    stale = await post(system, AS_JORDAN, f"{base}/agreement/{agreement_id}/accept", {"version": 1})
    assert stale.status_code == 409 and "superseded" in stale.json()["detail"]
    # Once both accepted, routing (running here) may put the agreement in force at once.
    for party, states in (
        (AS_SAM, {"accepted_by_one"}),
        (AS_JORDAN, {"accepted_by_both", "in_force"}),
    ):
        done = await post(system, party, f"{base}/agreement/{agreement_id}/accept", {"version": 2})
        assert done.status_code == 202, done.text
        assert (await get(system, AS_VICTOR, base)).json()["agreement"]["state"] in states
    assert (await post(system, AS_SAM, f"{base}/agreement/{agreement_id}/accept",
                       {"version": 2})).status_code == 409  # fmt: skip
    # Before routing puts it in force, an obligation cannot be met.
    if (await get(system, AS_VICTOR, base)).json()["agreement"]["state"] == "accepted_by_both":
        early = await post(system, manager, f"{base}/agreement/obligations/{term_ids[0]}/met",
                           {"met_on": date.today().isoformat()})  # fmt: skip
        assert early.status_code == 409, early.text

    # Routing: in force, obligations' clocks, follow-ups; one obligation overdue.
    now = datetime.now(UTC)
    await as_routing(amqp, case_id, AgreementInForce(
        reference=reference, agreement_id=UUID(agreement_id), version=2,
        obligations=[
            AgreementObligation(term_id=UUID(term_ids[0]), owner_role="employer_representative",
                                due_at=now + timedelta(days=20),
                                due_soon_at=now + timedelta(days=15)),
            AgreementObligation(term_id=UUID(term_ids[1]), owner_role="employee",
                                due_at=now + timedelta(days=30)),
        ],
        follow_ups_at=[now + timedelta(days=14), now + timedelta(days=42)],
    ))  # fmt: skip
    await as_routing(amqp, case_id, AgreementObligationOverdue(
        reference=reference, agreement_id=UUID(agreement_id), term_id=UUID(term_ids[1]),
        owner_role="employee", due_at=now + timedelta(days=30),
        escalated_to=Person(id="M-9002", name="Victor Almeida", email="victor.almeida@example.com"),
    ))  # fmt: skip
    await as_routing(amqp, case_id, CaseFollowUpDue(
        reference=reference, agreement_id=UUID(agreement_id), check_in=1,
        due_at=now + timedelta(days=14),
    ))  # fmt: skip

    async def projected() -> dict[str, Any] | None:
        view = (await get(system, manager, base)).json()
        states = {o["term_id"]: o["state"] for o in view["obligations"]}
        fell_due = [f for f in view["follow_ups"] if f["fell_due_at"]]
        ready = view["agreement"]["state"] == "in_force" and states.get(term_ids[1]) == "overdue"
        return view if ready and fell_due else None

    view = await eventually(projected, "routing's agreement clocks projected")
    assert len(view["follow_ups"]) == 2
    by_term = {o["term_id"]: o for o in view["obligations"]}
    assert by_term[term_ids[0]]["state"] == "open" and by_term[term_ids[0]]["due_soon_at"]
    assert by_term[term_ids[1]]["escalated_to"] == "Victor Almeida"
    assert term_ids[2] not in by_term  # a term without owner and due day is not tracked

    met = await post(
        system,
        manager,
        f"{base}/agreement/obligations/{term_ids[0]}/met",
        {"met_on": date.today().isoformat(), "note": "Rota for June published"},
    )
    assert met.status_code == 202, met.text
    assert (await post(system, manager, f"{base}/agreement/obligations/{term_ids[0]}/met",
                       {"met_on": date.today().isoformat()})).status_code == 409  # fmt: skip
    # Each party sees only their own obligations, with their state.
    jordan = (await get(system, AS_JORDAN, f"{base}/mine")).json()
    assert [o["state"] for o in jordan["obligations"]] == ["met"]
    assert jordan["agreement"]["state"] == "in_force"
    sam = (await get(system, AS_SAM, f"{base}/mine")).json()
    assert [o["state"] for o in sam["obligations"]] == ["overdue"]


# --- the portal ------------------------------------------------------------------------------


async def walk_to_agreement(amqp, system, case) -> dict[str, Any]:
    """Assessments, ground rules accepted by both, a meeting held with privileged notes,
    the agreement stage and a draft: returns the ids."""
    base = f"/api/v1/cases/{case['id']}/mediation"
    manager = case["manager"]
    await assess_both(system, case)
    rules = await post(system, manager, f"{base}/ground-rules", {"rules": ["Listen first"]})
    rules_id = rules.json()["ground_rules_id"]
    for party in (AS_SAM, AS_JORDAN):
        assert (
            await post(system, party, f"{base}/ground-rules/{rules_id}/accept")
        ).status_code == 202
    meeting = await post(
        system, manager, f"{base}/meetings",
        {"scheduled_for": in_days(2), "duration_minutes": 60, "location": "Room 4, Dock Road"},
    )  # fmt: skip
    meeting_id = meeting.json()["meeting_id"]
    held = await post(
        system, manager, f"{base}/meetings/{meeting_id}/record",
        {"held_at": in_days(0), "discussed": "SHARED-SUMMARY: notice for rota changes.",
         "proposals": ["Two weeks' notice"], "privileged_notes": PRIVILEGED},
    )  # fmt: skip
    assert held.status_code == 202, held.text
    await enter_stage(amqp, system, case["id"], case["reference"], "agreement")
    return {"ground_rules_id": rules_id, "meeting_id": meeting_id}


async def test_the_pages_keep_privileged_notes_and_each_account_to_their_readers(
    amqp, system, case
):
    """The portal pages, read with API tokens: the case manager's page shows the notes;
    Victor's (hr_manager, not case manager) and both parties' pages never do; each party's
    page shows their own account only; anyone else gets 404."""
    await walk_to_agreement(amqp, system, case)
    staff_page = f"/portal/cases/{case['id']}/mediation"
    own = await get(system, case["manager"], staff_page)
    assert own.status_code == 200 and PRIVILEGED in own.text
    assert "JORDAN-ACCOUNT" in own.text and "SAM-ACCOUNT" in own.text
    victor = await get(system, AS_VICTOR, staff_page)
    assert victor.status_code == 200 and PRIVILEGED not in victor.text
    assert "SHARED-SUMMARY" in victor.text
    for party, own_account, other_account in (
        (AS_SAM, "SAM-ACCOUNT", "JORDAN-ACCOUNT"),
        (AS_JORDAN, "JORDAN-ACCOUNT", "SAM-ACCOUNT"),
    ):
        page = await get(system, party, f"{staff_page}/mine")
        assert page.status_code == 200, page.text
        assert own_account in page.text and other_account not in page.text
        assert PRIVILEGED not in page.text and "SHARED-SUMMARY" in page.text
        assert (await get(system, party, staff_page)).status_code == 403
        home = await get(system, party, "/portal/cases")
        assert "Case management you are part of" in home.text
        assert f"/portal/cases/{case['id']}/mediation/mine" in home.text
    assert (await get(system, AS_ALEX, f"{staff_page}/mine")).status_code == 404
    # The reporter's case page links to their part; the staff case page to the whole.
    reporter_page = await get(system, AS_SAM, f"/portal/cases/{case['id']}")
    assert f"/portal/cases/{case['id']}/mediation/mine" in reporter_page.text
    staff_case_page = await get(system, AS_VICTOR, f"/portal/cases/{case['id']}")
    assert f'href="/portal/cases/{case["id"]}/mediation"' in staff_case_page.text


@needs_chromium
async def test_the_case_manager_and_a_party_in_chromium(amqp, system, tmp_path):
    """Grace (A-2001, the case manager) drafts the agreement on her page; Jordan (the
    employer's representative) accepts it on his. Both sign in first."""
    from playwright.async_api import async_playwright

    case_id, reference, _ = await raise_grievance(system)
    grace = {"id": "A-2001", "name": "Grace Okafor", "email": "grace.okafor@example.com"}
    await in_case_management(amqp, system, case_id, reference, grace, "assessment")
    case = {"id": case_id, "reference": reference, "owner": "A-2001",
            "manager": staff("A-2001")}  # fmt: skip
    await walk_to_agreement(amqp, system, case)
    due = (date.today() + timedelta(days=21)).isoformat()
    shots = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        context = await browser.new_context(
            base_url=system.url("intake"), java_script_enabled=False,
            viewport={"width": 1100, "height": 900},
        )  # fmt: skip
        page = await context.new_page()
        await page.goto("/portal/sign-in")
        await page.get_by_label(re.compile("Grace Okafor")).check()
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(re.compile(r"/portal/work-queue$"))
        await page.goto(f"/portal/cases/{case_id}")
        await page.locator("#mediation-link a").click()
        await page.wait_for_url(re.compile(r"/mediation$"))
        assert "(you)" in await page.locator("#case-manager").inner_text()
        assert PRIVILEGED in await page.content()
        # A term with an owner but no due day: refused, naming the field.
        await page.get_by_text("Draft the agreement").first.click()
        await page.locator("#term_0_text").fill("The rota is published two weeks ahead")
        await page.locator("#term_0_owner_role").select_option("employer_representative")
        await page.get_by_role("button", name="Draft the agreement").click()
        assert "due_on" in await page.locator("#agreement-errors").inner_text()
        await page.locator("#term_0_due_on").fill(due)
        await page.locator("#term_1_text").fill("Both keep the discussions confidential")
        await page.get_by_role("button", name="Draft the agreement").click()
        await page.wait_for_url(re.compile(r"done=agreement"))
        assert "Version 1" in await page.locator("#agreement-state").inner_text()
        manager_shot = tmp_path / "mediation-case-manager.png"
        await page.screenshot(path=str(manager_shot), full_page=True)
        shots.append(manager_shot)
        await context.close()

        # Jordan from "Case management you are part of" on My cases; Sam (the reporter)
        # from his case page's link. Each accepts version 1 for their own role.
        parties = (
            (
                "Jordan Blake",
                "JORDAN-ACCOUNT",
                "SAM-ACCOUNT",
                "mediation-employer-representative.png",
            ),
            ("Sam Rivera", "SAM-ACCOUNT", "JORDAN-ACCOUNT", "mediation-employee.png"),
        )
        for who, own_account, other_account, shot_name in parties:
            context = await browser.new_context(
                base_url=system.url("intake"), java_script_enabled=False,
                viewport={"width": 1000, "height": 900},
            )  # fmt: skip
            page = await context.new_page()
            await page.goto("/portal/sign-in")
            await page.get_by_label(re.compile(who)).check()
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url(re.compile(r"/portal/cases$"))
            listed = page.locator("#case-management + ul")
            assert reference in await listed.inner_text()
            if who == "Jordan Blake":
                await listed.get_by_role("link", name=reference).click()
            else:
                await page.goto(f"/portal/cases/{case_id}")
                await page.locator("#mediation-link a").click()
            await page.wait_for_url(re.compile(r"/mediation/mine$"))
            content = await page.content()
            assert own_account in content and other_account not in content
            assert PRIVILEGED not in content and "SHARED-SUMMARY" in content
            await page.get_by_role("button", name="Accept version 1").click()
            await page.wait_for_url(re.compile(r"done=agreement"))
            assert await page.locator("#agreement-you-accepted").count() == 1
            shot = tmp_path / shot_name
            await page.screenshot(path=str(shot), full_page=True)
            shots.append(shot)
            await context.close()
        # Both accepted: the case manager's page says so (or routing already put it in force).
        view = (await get(system, case["manager"], f"/api/v1/cases/{case_id}/mediation")).json()
        assert view["agreement"]["state"] in ("accepted_by_both", "in_force")
        await browser.close()
    for shot in shots:
        data = shot.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
        # Refreshed on request only: HRCASE_UPDATE_SCREENSHOTS=1 pytest tests/e2e/test_mediation.py
        if os.environ.get("HRCASE_UPDATE_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            (SCREENSHOTS / shot.name).write_bytes(data)


async def test_an_assessment_names_files_on_the_case_or_uploads_them(system, case):
    """Documents: ids of files already on the case (JSON), or files uploaded with the
    assessment (multipart), stored on the case as staff's documents with their SHA-256."""
    base = f"/api/v1/cases/{case['id']}/mediation"
    manager = case["manager"]
    async with client(system, manager) as c:
        added = await c.post(
            f"/api/v1/cases/{case['id']}/documents",
            files={"files": ("rota-may.txt", b"Rota for May: three changes\n", "text/plain")},
        )
        assert added.status_code == 201, added.text
        on_case = added.json()["documents"][0]["attachment_id"]
        named = await c.post(
            f"{base}/assessments",
            json={**assessment(SAM, "SAM-ACCOUNT", ["A rota"]), "documents": [on_case]},
        )
        assert named.status_code == 202, named.text
        form = {
            "party_role": "employer_representative",
            "employee_id": "E-7100",
            "name": "Jordan Blake",
            "email": "jordan.blake@example.com",
            "account": "JORDAN-ACCOUNT",
            "desired_outcomes": ["Fewer changes", "Notice"],
        }
        uploaded = await c.post(
            f"{base}/assessments/upload", data=form,
            files={"files": ("staffing.txt", b"Two leavers in April\n", "text/plain")},
        )  # fmt: skip
        assert uploaded.status_code == 202, uploaded.text
        bad = await c.post(f"{base}/assessments/upload", data={**form, "email": "nope"})
        assert bad.status_code == 422 and field_named(bad, "email"), bad.text
        view = (await c.get(base)).json()
    by_role = {a["party_role"]: a for a in view["assessments"]}
    assert [d["attachment_id"] for d in by_role["employee"]["documents"]] == [on_case]
    jordan_files = by_role["employer_representative"]["documents"]
    assert [d["filename"] for d in jordan_files] == ["staffing.txt"]
    assert by_role["employer_representative"]["desired_outcomes"] == ["Fewer changes", "Notice"]
    async with client(system, manager) as c:
        listed = (await c.get(f"/api/v1/cases/{case['id']}/documents")).json()
    assert jordan_files[0]["attachment_id"] in str(listed)
    # A party sees the names of their own documents only.
    sam = (await get(system, AS_SAM, f"{base}/mine")).json()
    assert sam["assessment"]["documents"] == ["rota-may.txt"]


async def test_erasing_the_reporting_party_takes_their_mediation_records(
    amqp, system, case, admin_pool
):
    """Erasure of Sam (reporter and the employee party; README "Data-subject rights"):
    his assessment (account, outcomes, name, address), his entry among the parties, and
    the texts sealed as the reporter's on his case (what was discussed and proposed, the
    case manager's notes, the agreement's terms) go; Jordan's own account and the ground
    rules (not sealed: the case manager's standard rules) stay. Last in this module: the
    erasure covers every case of Sam's the module raised."""
    case_id, reference = case["id"], case["reference"]
    base = f"/api/v1/cases/{case_id}/mediation"
    manager = case["manager"]
    await assess_both(system, case)
    proposed = await post(system, manager, f"{base}/ground-rules", {"rules": ["Listen first"]})
    assert proposed.status_code == 202, proposed.text
    meeting = {"scheduled_for": in_days(3), "duration_minutes": 60, "location": "Room 2",
               "time_zone": "Europe/London"}  # fmt: skip
    scheduled = await post(system, manager, f"{base}/meetings", meeting)
    assert scheduled.status_code == 202, scheduled.text
    record = {"held_at": in_days(0), "discussed": "SHARED-SUMMARY: Sam's rota.",
              "proposals": ["Sam gets two weeks' notice"],
              "privileged_notes": PRIVILEGED}  # fmt: skip
    held = await post(
        system, manager, f"{base}/meetings/{scheduled.json()['meeting_id']}/record", record
    )
    assert held.status_code == 202, held.text
    await enter_stage(amqp, system, case_id, reference, "agreement")
    drafted = await post(
        system, manager, f"{base}/agreement", {"terms": [{"text": "Sam's rota is fixed"}]}
    )
    assert drafted.status_code == 202, drafted.text

    async def all_recorded() -> bool:
        view = (await get(system, AS_VICTOR, base)).json()
        return bool(view.get("agreement")) and bool(view["meetings"][0].get("discussed"))

    await eventually(all_recorded, "the mediation recorded")
    officer = auth_headers("PO-1001", "privacy_officer", employee_id="PO-1001")
    second = auth_headers("PO-1002", "privacy_officer", employee_id="PO-1002")
    async with client(system, officer) as c:
        placed = await c.post(
            "/api/v1/privacy/erasure-requests",
            json={"employee_id": SAM["employee_id"], "reason": "Sam asked (ticket 88)"},
        )
    assert placed.status_code == 201, placed.text
    async with client(system, second) as c:
        decided = await c.post(
            f"/api/v1/privacy/erasure-requests/{placed.json()['request_id']}/decision",
            json={"decision": "approve", "reason": "no hold"},
        )
    assert decided.status_code == 200, decided.text
    assert case_id in decided.json()["erased_case_ids"]

    erased = "[erased]"
    rows = {
        r["party_role"]: dict(r)
        for r in await admin_pool.fetch(
            "SELECT party_role, name, email, account, desired_outcomes::text AS outcomes"
            " FROM intake.mediation_assessments WHERE case_id = $1",
            UUID(case_id),
        )
    }
    sam, jordan = rows["employee"], rows["employer_representative"]
    assert (sam["name"], sam["email"], sam["account"], sam["outcomes"]) == (
        erased, erased, erased, "[]"
    )  # fmt: skip
    assert jordan["name"] == "Jordan Blake" and jordan["account"].startswith("JORDAN-ACCOUNT")
    rules = await admin_pool.fetchrow(
        "SELECT rules::text AS rules, parties::text AS parties"
        " FROM intake.mediation_ground_rules WHERE case_id = $1",
        UUID(case_id),
    )
    assert "Listen first" in rules["rules"] and "Jordan Blake" in rules["parties"]
    assert "Sam Rivera" not in rules["parties"] and SAM["email"] not in rules["parties"]
    met = await admin_pool.fetchrow(
        "SELECT discussed, privileged_notes, proposals::text AS proposals"
        " FROM intake.mediation_meetings WHERE case_id = $1",
        UUID(case_id),
    )
    assert (met["discussed"], met["privileged_notes"]) == (erased, erased)
    assert "Sam" not in met["proposals"]
    terms = await admin_pool.fetchval(
        "SELECT terms::text FROM intake.mediation_agreements WHERE case_id = $1", UUID(case_id)
    )
    assert "Sam's rota" not in terms and erased in terms
    # The case manager's door still answers, without Sam.
    view = await get(system, manager, base)
    assert view.status_code == 200, view.text
    for gone in ("SAM-ACCOUNT", "Sam Rivera", SAM["email"], "SHARED-SUMMARY", PRIVILEGED):
        assert gone not in view.text, gone
    assert "JORDAN-ACCOUNT" in view.text
