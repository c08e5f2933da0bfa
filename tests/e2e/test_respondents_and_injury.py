"""Respondents and injury facts at every door, through all four processes (API doors).

Routing's directory is the demo one (hrcase/demo_directory.csv, as `hrcase run` loads
it): Helen Carter (A-3001) and Mei Tanaka (A-3003) are the Investigations members with
the harassment skill, both reporting to Victor Almeida (M-9002, the team's lead); two
different employees are called Alex Chen.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hrcase.demo import seed_demo_directory
from services.routing.domain.policy import load_policy
from shared.settings import Settings
from tests.support.auth import auth_headers
from tests.support.bus import EventCapture, capture_events
from tests.support.directory import load_demo_directory
from tests.support.system import running_system

SAM = {"employee_id": "E-7001", "name": "Sam Rivera", "email": "sam.rivera@example.com"}
AS_SAM = auth_headers("u-sam", "employee", employee_id="E-7001")
AS_MANAGER = auth_headers("M-9001", "hr_manager", employee_id="M-9001")
AS_AGENT = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
AS_INVESTIGATOR = auth_headers("A-3002", "investigator", employee_id="A-3002")
# Who must never own or be escalated a case naming Helen and Mei: them, their manager
# Victor, and his manager (the top of the chain).
CHAIN = {"A-3001", "A-3003", "M-9002", "E-0001"}


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    load_demo_directory(database_url, rabbitmq_url)
    with running_system(database_url, rabbitmq_url, logs_dir / "respondents") as running:
        yield running


@pytest.fixture
async def captured(system, amqp):
    async with capture_events(amqp) as capture:
        yield capture


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def case_body(**fields: Any) -> dict[str, Any]:
    return {
        "subject": "Inappropriate comments at the depot",
        "description": "Comments about my appearance in front of the whole shift, twice.",
        "reporter": SAM,
        **fields,
    }


async def view(system: Any, case_id: str, headers: dict[str, str]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
        response = await client.get(f"/api/v1/cases/{case_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def resolved_view(system: Any, case_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        seen = await view(system, case_id, AS_MANAGER)
        done = seen["respondents"] and all(r["state"] != "pending" for r in seen["respondents"])
        return seen if done and seen["assignment"]["owner_id"] else None

    return dict(await eventually(check, "respondents resolved and the case assigned"))


async def post(system: Any, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
        return await client.post(path, json=body, headers=headers)


async def drain(capture: EventCapture, seconds: float = 0.5) -> None:
    """Pull everything published so far into `capture.events`."""
    with contextlib.suppress(AssertionError):
        await capture.wait(lambda e: False, timeout=seconds)


def conferences(capture: EventCapture, case_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in capture.events
        if e["event_type"] == "conference.required" and e["case_id"] == case_id
    ]


async def test_respondents_resolve_by_id_email_and_name_and_the_rest_wait_for_a_person(
    system, captured
):
    respondents = [
        {"employee_id": "A-3001"},  # Helen, by id
        {"email": "MEI.Tanaka@Example.com"},  # Mei, by email whatever its case
        {"name": "  jordan   BLAKE "},  # Sam's own manager, by name
        {"name": "Nobody We Know"},
        {"name": "Alex Chen"},  # two employees have this name
    ]
    accepted = await post(
        system,
        "/api/v1/cases",
        case_body(category="harassment", respondents=respondents),
        AS_SAM,
    )
    assert accepted.status_code == 202, accepted.text
    case_id = accepted.json()["case_id"]

    submitted = await captured.wait(
        lambda e: e["event_type"] == "case.submitted" and e["case_id"] == case_id
    )
    # The older field still carries the ids named; the new one carries everyone as named.
    assert submitted["payload"]["respondent_employee_ids"] == ["A-3001"]
    assert len(submitted["payload"]["respondents"]) == 5

    seen = await resolved_view(system, case_id)
    states = [
        (r["state"], r["resolved_employee_id"], r["matched_by"], r["problem"])
        for r in seen["respondents"]
    ]
    assert states == [
        ("resolved", "A-3001", "employee_id", None),
        ("resolved", "A-3003", "email", None),
        ("resolved", "E-7100", "name", None),
        ("unresolved", None, None, "not_found"),
        ("unresolved", None, None, "ambiguous"),
    ]
    assert seen["respondents_unresolved"] == 2
    # Both harassment investigators are respondents: the conflict fallback team takes it,
    # never anyone in the respondents' chains.
    assert seen["assignment"]["team"] == "employee_relations"
    assert seen["assignment"]["owner_id"] not in CHAIN | {"E-7100", "E-0002"}

    resolved = await captured.wait(
        lambda e: e["event_type"] == "case.respondents_resolved" and e["case_id"] == case_id
    )
    assert resolved["payload"]["resolved_employee_ids"] == ["A-3001", "A-3003", "E-7100"]
    assert resolved["payload"]["unresolved"] == 2
    assert "Alex" not in str(resolved["payload"])  # ids only, never names

    # The reporter reads their case without the respondents (staff only).
    own = await view(system, case_id, AS_SAM)
    assert own["respondents"] is None and own["related_by_respondent"] is None

    # The staff page says a person must resolve them.
    async with httpx.AsyncClient(timeout=10) as browser:
        page = await browser.get(
            f"{system.url('intake')}/portal/cases/{case_id}", headers=AS_MANAGER
        )
    assert page.status_code == 200
    assert page.text.count("respondent not matched — needs a person") == 2
    assert "more than one employee matches" in page.text


async def test_related_cases_by_respondent_show_only_what_the_viewer_may_read(system):
    restricted = await post(
        system,
        "/api/v1/cases",
        case_body(category="harassment", respondents=[{"employee_id": "A-2001"}]),
        AS_SAM,
    )
    grievance = await post(
        system,
        "/api/v1/cases",
        case_body(
            subject="My workload was doubled unfairly",
            category="grievance",
            respondents=[{"email": "grace.okafor@example.com"}],
        ),
        AS_SAM,
    )
    assert restricted.status_code == grievance.status_code == 202
    restricted_id, grievance_id = restricted.json()["case_id"], grievance.json()["case_id"]
    await resolved_view(system, restricted_id)
    seen = await resolved_view(system, grievance_id)
    # A manager reads the restricted harassment case: it is listed.
    assert [c["case_id"] for c in seen["related_by_respondent"]] == [restricted_id]
    # An HR agent reads the (confidential) grievance but not the restricted case.
    as_agent = await view(system, grievance_id, AS_AGENT)
    assert as_agent["related_by_respondent"] == []
    async with httpx.AsyncClient(timeout=10) as browser:
        page = await browser.get(
            f"{system.url('intake')}/portal/cases/{grievance_id}", headers=AS_AGENT
        )
    assert page.status_code == 200 and restricted.json()["reference"] not in page.text


async def test_injury_facts_from_the_api_phone_and_anonymous_doors(system, captured):
    today = datetime.now(UTC).date().isoformat()
    by_api = await post(
        system,
        "/api/v1/cases",
        case_body(
            subject="I slipped at the depot",
            description="Wet floor by the loading bay; my wrist is broken.",
            category="workplace_injury",
            injury={"date_of_injury": today, "serious": True},
        ),
        AS_SAM,
    )
    by_phone = await post(
        system,
        "/api/v1/phone-calls",
        {
            "caller": SAM,
            "called_at": datetime.now(UTC).isoformat(),
            "duration_seconds": 300,
            "summary": "Sam hurt his back lifting crates; no light duties at the depot.",
            "category": "workplace_injury",
            "injury": {"serious": False, "suitable_employment_available": False},
            "respondents": [{"name": "Jordan Blake"}],
        },
        AS_AGENT,
    )
    anonymous = await post(
        system,
        "/api/v1/anonymous-reports",
        {
            "subject": "Injury nobody reported",
            "description": "A colleague burned a hand on the press; it was not reported.",
            "category": "workplace_injury",
            "injury": {"date_of_injury": today, "suitable_employment_available": None},
            "respondents": [{"employee_id": "E-7100"}],
        },
        {},
    )
    assert by_api.status_code == 202, by_api.text
    assert by_phone.status_code == 202, by_phone.text
    assert anonymous.status_code == 201, anonymous.text
    api_id, phone_id = by_api.json()["case_id"], by_phone.json()["case_id"]

    for case_id, reasons in (
        (api_id, ["serious injury"]),
        (phone_id, ["no suitable employment with the pre-injury employer"]),
    ):
        event = await captured.wait(
            lambda e, c=case_id: e["event_type"] == "conference.required" and e["case_id"] == c
        )
        assert event["payload"]["reasons"] == reasons
    phone_view = await resolved_view(system, phone_id)
    assert phone_view["injury"] == {
        "date_of_injury": None,
        "serious": False,
        "suitable_employment_available": False,
    }
    assert phone_view["respondents"][0]["resolved_employee_id"] == "E-7100"
    # The reporter sees their own injury facts and that a conference is required.
    own = await view(system, api_id, AS_SAM)
    assert own["injury"] == {
        "date_of_injury": today,
        "serious": True,
        "suitable_employment_available": None,
    }

    submitted = await captured.wait(
        lambda e: e["event_type"] == "case.submitted" and e["payload"]["reporter"] is None
    )
    assert submitted["payload"]["injury"]["suitable_employment_available"] is None
    anonymous_id = submitted["case_id"]
    await resolved_view(system, anonymous_id)
    await drain(captured)
    assert conferences(captured, anonymous_id) == []

    # Staff record the later decision: no suitable employment -> conference required once.
    recorded = await post(
        system,
        f"/api/v1/cases/{anonymous_id}/injury",
        {"suitable_employment_available": False},
        AS_MANAGER,
    )
    assert recorded.status_code == 202, recorded.text
    assert recorded.json()["event_type"] == "case.injury_facts_recorded"
    first = await captured.wait(
        lambda e: e["event_type"] == "conference.required" and e["case_id"] == anonymous_id
    )
    assert first["causation_id"] == recorded.json()["event_id"]
    # A second decision that also calls for one does not require a second conference.
    again = await post(
        system, f"/api/v1/cases/{anonymous_id}/injury", {"serious": True}, AS_MANAGER
    )
    assert again.status_code == 202
    await captured.wait(
        lambda e: (
            e["event_type"] == "case.injury_facts_recorded"
            and e["event_id"] == again.json()["event_id"]
        )
    )

    async def facts_merged() -> dict[str, Any] | None:
        seen = await view(system, anonymous_id, AS_MANAGER)
        return seen if seen["injury"]["serious"] else None

    seen = await eventually(facts_merged, "the second decision on the case")
    assert seen["injury"] == {
        "date_of_injury": today,
        "serious": True,
        "suitable_employment_available": False,
    }
    assert seen["conference"]["reasons"] == ["no suitable employment with the pre-injury employer"]
    await asyncio.sleep(2)  # routing has had time to (wrongly) require another
    await drain(captured)
    assert len(conferences(captured, anonymous_id)) == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"respondents": [{}]}, ["body", "respondents", 0]),
        ({"respondents": [{"email": "not-an-address"}]}, ["body", "respondents", 0, "email"]),
        ({"respondents": [{"name": ""}]}, ["body", "respondents", 0, "name"]),
        ({"respondents": [{"name": "A. Person"}] * 11}, ["body", "respondents"]),
        ({"respondents": [{"nickname": "Bob"}]}, ["body", "respondents", 0, "nickname"]),
        ({"injury": {"date_of_injury": "2999-01-01"}}, ["body", "injury", "date_of_injury"]),
        ({"injury": {"serious": "maybe"}}, ["body", "injury", "serious"]),
        (
            {"injury": {"suitable_employment_available": "perhaps"}},
            ["body", "injury", "suitable_employment_available"],
        ),
    ],
)
async def test_bad_respondents_and_injury_are_422_naming_the_field(system, fields, field):
    response = await post(system, "/api/v1/cases", case_body(**fields), AS_SAM)
    assert response.status_code == 422, response.text
    assert field in [e["loc"] for e in response.json()["detail"]], response.json()


async def test_recording_injury_facts_is_for_staff_who_may_read_the_case(system):
    accepted = await post(
        system,
        "/api/v1/cases",
        case_body(category="harassment", injury={"serious": False}),
        AS_SAM,
    )
    case_id = accepted.json()["case_id"]
    path = f"/api/v1/cases/{case_id}/injury"
    await eventually(lambda: view(system, case_id, AS_MANAGER), "the case in intake's read model")
    assert (await post(system, path, {"serious": True}, AS_SAM)).status_code == 403
    # An investigator the restricted case is not assigned to cannot see it: 404.
    assert (await post(system, path, {"serious": True}, AS_INVESTIGATOR)).status_code == 404
    for body, loc in (
        ({}, ["body"]),
        ({"serious": None}, ["body"]),
        ({"serious": "maybe"}, ["body", "serious"]),
        ({"date_of_injury": "yesterday"}, ["body", "date_of_injury"]),
        ({"mood": "low"}, ["body", "mood"]),
    ):
        refused = await post(system, path, body, AS_MANAGER)
        assert refused.status_code == 422, (body, refused.text)
        assert loc in [e["loc"] for e in refused.json()["detail"]], (body, refused.json())
    future = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    refused = await post(system, path, {"date_of_injury": future}, AS_MANAGER)
    assert refused.status_code == 422 and "date_of_injury" in refused.text


async def test_the_demo_directory_make_run_loads_has_staff_with_managers(database_url, admin_pool):
    """`hrcase run` seeds routing's directory with this (hrcase.demo.seed_demo_directory);
    loading it again changes nothing."""
    settings = Settings(database_url=database_url)
    loaded = await seed_demo_directory(settings)
    assert loaded == await seed_demo_directory(settings)
    chains = dict(
        await admin_pool.fetch(
            "SELECT employee_id, manager_id FROM routing.employees"
            " WHERE employee_id = ANY($1::text[])",
            [m.id for t in load_policy().teams.values() for m in t.members],
        )
    )
    # Every HR team member is in the directory, with a manager: the chain rule has a chain.
    assert len(chains) == sum(len(t.members) for t in load_policy().teams.values())
    assert all(chains.values())


async def test_the_anonymous_portal_form_names_respondents_and_refuses_bad_ones(system, captured):
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
        page = await client.get("/portal/anonymous")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        form = {
            "csrf_token": token.group(1),
            "anonymous": "yes",
            "subject": "A burn at the press went unreported",
            "description": "The shift lead burned his hand and told us not to report it.",
            "category": "workplace_injury",
            "respondent_1_name": "Jordan Blake",
            "respondent_2_email": "not-an-address",
            "injury_serious": "yes",
        }
        refused = await client.post("/portal/cases", data=form)
        assert refused.status_code == 422
        assert 'id="respondent_2_email-error"' in refused.text
        assert 'value="Jordan Blake"' in refused.text  # what was typed is kept
        form["respondent_2_email"] = ""
        accepted = await client.post("/portal/cases", data=form)
        assert accepted.status_code == 201, accepted.text
    submitted = await captured.wait(
        lambda e: (
            e["event_type"] == "case.submitted"
            and e["payload"]["subject"] == "A burn at the press went unreported"
        )
    )
    assert submitted["payload"]["reporter"] is None
    assert submitted["payload"]["respondents"] == [
        {"employee_id": None, "name": "Jordan Blake", "email": None}
    ]
    assert submitted["payload"]["injury"]["serious"] is True
    required = await captured.wait(
        lambda e: e["event_type"] == "conference.required" and e["case_id"] == submitted["case_id"]
    )
    assert required["payload"]["reasons"] == ["serious injury"]
