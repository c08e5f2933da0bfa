"""Legal holds from the door a privacy officer or HR manager uses: the JSON API, with the
events the bus carries (ids and the reason only) and the answers to bad input (4xx naming
the field, never a 500)."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.support.auth import auth_headers
from tests.support.bus import capture_events
from tests.support.system import running_system

HOLDS = "/api/v1/privacy/legal-holds"
REPORTER = {"employee_id": "E-8811", "name": "Ruth Adebayo", "email": "ruth.adebayo@example.com"}
AS_REPORTER = auth_headers("u-ruth", "employee", employee_id=REPORTER["employee_id"])
AS_OFFICER = auth_headers("PO-1", "privacy_officer")
AS_MANAGER = auth_headers("M-9001", "hr_manager", employee_id="M-9001")
AS_AGENT = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
REASON = "Tribunal claim ET/2026/0142 expected; keep everything"


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(
        database_url, rabbitmq_url, logs_dir / "legal-holds-api", only=("intake", "routing")
    ) as running:
        yield running


@pytest.fixture(scope="module")
def case_id(system) -> str:
    with system.client("intake", AS_REPORTER) as reporter:
        raised = reporter.post(
            "/api/v1/cases",
            json={
                "subject": "Payslip is missing my overtime",
                "description": "My October overtime is not on my payslip.",
                "reporter": REPORTER,
                "category": "payroll_query",
            },
        )
    assert raised.status_code == 202, raised.text
    return str(raised.json()["case_id"])


def api(system: Any, headers: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.url("intake"), timeout=10, headers=headers)


def named(response: httpx.Response, *loc: str | int) -> bool:
    """A 422 whose detail names the field."""
    if response.status_code != 422:
        return False
    return any(tuple(error["loc"]) == ("body", *loc) for error in response.json()["detail"])


async def test_a_privacy_officer_places_lists_and_releases_a_hold_on_a_case(system, case_id, amqp):
    async with capture_events(amqp) as bus, api(system, AS_OFFICER) as officer:
        placed = await officer.post(HOLDS, json={"case_id": case_id, "reason": REASON})
        assert placed.status_code == 201, placed.text
        hold_id = placed.json()["hold_id"]
        event = await bus.wait(lambda e: e["event_id"] == placed.json()["event_id"])
        listed = (await officer.get(HOLDS)).json()["holds"]
        mine = next(h for h in listed if h["hold_id"] == hold_id)
        assert mine["active"] and mine["kind"] == "case" and mine["case_id"] == case_id
        assert mine["reason"] == REASON and mine["placed_by"] == "PO-1"

        released = await officer.post(
            f"{HOLDS}/{hold_id}/release", json={"reason": "The claim was withdrawn"}
        )
        assert released.status_code == 202, released.text
        gone = await bus.wait(lambda e: e["event_id"] == released.json()["event_id"])
        again = await officer.post(f"{HOLDS}/{hold_id}/release", json={"reason": "twice"})
        listed = (await officer.get(HOLDS)).json()["holds"]
    assert event["event_type"] == "privacy.legal_hold_placed"
    assert event["producer"] == "intake" and event["case_id"] == case_id
    assert event["payload"]["hold_id"] == hold_id and event["payload"]["reason"] == REASON
    assert gone["event_type"] == "privacy.legal_hold_released"
    assert gone["payload"] == {
        "hold_id": hold_id,
        "reason": "The claim was withdrawn",
        "released_at": gone["payload"]["released_at"],
    }
    assert again.status_code == 409, again.text
    mine = next(h for h in listed if h["hold_id"] == hold_id)
    assert not mine["active"] and mine["released_by"] == "PO-1"
    assert mine["release_reason"] == "The claim was withdrawn"


async def test_a_hold_on_a_person_carries_their_subject_id_never_their_address(
    system, case_id, amqp
):
    address = "Casey.Morgan@Example.com"
    subject_id = "email:" + hashlib.sha256(address.lower().encode()).hexdigest()
    async with capture_events(amqp) as bus, api(system, AS_MANAGER) as manager:
        placed = await manager.post(
            HOLDS, json={"subject": {"email": address}, "reason": "Grievance appeal pending"}
        )
        assert placed.status_code == 201, placed.text
        event = await bus.wait(lambda e: e["event_id"] == placed.json()["event_id"])
        by_id = await manager.post(
            HOLDS, json={"subject": {"employee_id": "E-8811"}, "reason": "Her own claim"}
        )
        listed = await manager.get(HOLDS)
    assert event["payload"]["subject_id"] == subject_id
    assert event["case_id"] is None
    assert "casey" not in json.dumps(event).lower()
    assert by_id.status_code == 201, by_id.text
    holds = {h["hold_id"]: h for h in listed.json()["holds"]}
    assert holds[placed.json()["hold_id"]]["subject_id"] == subject_id
    assert holds[by_id.json()["hold_id"]]["subject_id"] == "employee:E-8811"
    assert "casey" not in listed.text.lower()


async def test_a_matter_groups_cases_and_names_an_unknown_one(system, case_id, amqp):
    unknown = str(uuid.uuid4())
    async with capture_events(amqp) as bus, api(system, AS_OFFICER) as officer:
        placed = await officer.post(
            HOLDS,
            json={"matter": {"name": "Adebayo v Acme", "case_ids": [case_id]}, "reason": REASON},
        )
        assert placed.status_code == 201, placed.text
        event = await bus.wait(lambda e: e["event_id"] == placed.json()["event_id"])
        refused = await officer.post(
            HOLDS,
            json={"matter": {"name": "M", "case_ids": [case_id, unknown]}, "reason": REASON},
        )
        missing = await officer.post(HOLDS, json={"case_id": unknown, "reason": REASON})
    # The matter's name stays in intake: the bus carries its case ids.
    assert event["payload"]["case_ids"] == [case_id]
    assert "Adebayo" not in json.dumps(event["payload"])
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("matter.case_ids[1]: no such case")
    assert missing.status_code == 422
    assert missing.json()["detail"].startswith("case_id: no such case")


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"case_id": "CASE", "reason": ""}, ("reason",)),
        ({"case_id": "CASE", "reason": "   "}, ("reason",)),
        ({"case_id": "CASE"}, ("reason",)),
        ({"case_id": "CASE", "reason": "x" * 2001}, ("reason",)),
        ({"case_id": "not-a-uuid", "reason": REASON}, ("case_id",)),
        ({"reason": REASON}, ("case_id", "subject", "matter")),
        (
            {"case_id": "CASE", "subject": {"employee_id": "E-1"}, "reason": REASON},
            ("case_id", "subject", "matter"),
        ),
        (
            {"subject": {"employee_id": "E-1", "email": "a@example.com"}, "reason": REASON},
            ("subject",),
        ),
        ({"subject": {"email": "not an address"}, "reason": REASON}, ("subject", "email")),
        ({"matter": {"name": "M", "case_ids": []}, "reason": REASON}, ("matter", "case_ids")),
        ({"matter": {"name": "", "case_ids": ["CASE"]}, "reason": REASON}, ("matter", "name")),
        ({"case_id": "CASE", "reason": REASON, "note": "x"}, ("note",)),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(system, case_id, body, loc):
    sent = json.loads(json.dumps(body).replace('"CASE"', json.dumps(case_id)))
    async with api(system, AS_OFFICER) as officer:
        answer = await officer.post(HOLDS, json=sent)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    locs = [tuple(e["loc"]) for e in detail]
    messages = " ".join(e["msg"] for e in detail)
    assert ("body", *loc) in locs or (
        ("body",) in locs and all(part in messages for part in loc)
    ), detail


async def test_release_answers_404_409_and_422_naming_the_reason(system, case_id):
    async with api(system, AS_OFFICER) as officer:
        placed = await officer.post(HOLDS, json={"case_id": case_id, "reason": REASON})
        hold_id = placed.json()["hold_id"]
        blank = await officer.post(f"{HOLDS}/{hold_id}/release", json={"reason": ""})
        no_reason = await officer.post(f"{HOLDS}/{hold_id}/release", json={})
        nobody = await officer.post(f"{HOLDS}/{uuid.uuid4()}/release", json={"reason": "x"})
        bad_id = await officer.post(f"{HOLDS}/not-a-hold/release", json={"reason": "x"})
        first = await officer.post(f"{HOLDS}/{hold_id}/release", json={"reason": "settled"})
        second = await officer.post(f"{HOLDS}/{hold_id}/release", json={"reason": "settled"})
    assert named(blank, "reason") and named(no_reason, "reason")
    assert nobody.status_code == 404
    assert bad_id.status_code == 422 and bad_id.json()["detail"][0]["loc"] == [
        "path",
        "hold_id",
    ]
    assert first.status_code == 202
    assert second.status_code == 409 and "already released" in second.json()["detail"]


async def test_only_privacy_officers_and_hr_managers_hold(system, case_id):
    for headers in (AS_AGENT, AS_REPORTER, auth_headers("AU-1", "auditor")):
        async with api(system, headers) as someone:
            placed = await someone.post(HOLDS, json={"case_id": case_id, "reason": REASON})
            listed = await someone.get(HOLDS)
            released = await someone.post(f"{HOLDS}/{uuid.uuid4()}/release", json={"reason": "x"})
        assert (placed.status_code, listed.status_code, released.status_code) == (403, 403, 403)
    async with api(system, {}) as anonymous:
        assert (await anonymous.get(HOLDS)).status_code == 401


async def test_the_hold_list_follows_the_case_apis_visibility_rule(system, case_id):
    """An HR manager is shown exactly the holds whose every case the case API lets them
    read (and every hold on a person); a privacy officer every hold. Today the case API
    lets an HR manager read restricted cases too (RESTRICTED_READERS), so a hold on a
    harassment case is listed to them, and the case opens; were that rule narrowed, the
    list would narrow with it (the same `case_access` decides both)."""
    manager = auth_headers("M-7001", "hr_manager", employee_id="M-7001")
    reporter = {"employee_id": "E-8812", "name": "Ines Duarte", "email": "ines@example.com"}
    as_reporter = auth_headers("u-ines", "employee", employee_id="E-8812")
    async with api(system, as_reporter) as them:
        raised = await them.post(
            "/api/v1/cases",
            json={
                "subject": "My team lead keeps commenting on my body",
                "description": "Remarks in every stand-up since March.",
                "reporter": reporter,
                "category": "harassment",
            },
        )
    assert raised.status_code == 202, raised.text
    restricted = str(raised.json()["case_id"])
    async with api(system, AS_OFFICER) as officer:
        placed = [
            await officer.post(HOLDS, json=body)
            for body in (
                {"case_id": restricted, "reason": REASON},
                {"matter": {"name": "Duarte", "case_ids": [case_id, restricted]}, "reason": REASON},
                {"case_id": case_id, "reason": REASON},
                {"subject": {"employee_id": "E-8812"}, "reason": REASON},
            )
        ]
        every = {h["hold_id"]: h for h in (await officer.get(HOLDS)).json()["holds"]}
    assert all(p.status_code == 201 for p in placed), [p.text for p in placed]
    ours = {p.json()["hold_id"] for p in placed}
    assert ours <= set(every)
    async with api(system, manager) as as_manager:
        listed = await as_manager.get(HOLDS)
        assert listed.status_code == 200, listed.text
        seen = {h["hold_id"] for h in listed.json()["holds"]}
        readable = {}
        for hold_id in ours:
            hold = every[hold_id]
            cases = ([hold["case_id"]] if hold["case_id"] else []) + hold["case_ids"]
            answers = [(await as_manager.get(f"/api/v1/cases/{c}")).status_code for c in cases]
            readable[hold_id] = all(code == 200 for code in answers)
    assert {h for h in ours if readable[h]} == seen & ours
    assert seen & ours == ours  # an HR manager may read restricted cases: all four shown
