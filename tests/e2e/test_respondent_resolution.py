"""A person resolves a respondent routing could not match, through the real system.

Intake records the request; routing checks the id against its directory (the demo one,
hrcase/demo_directory.csv), announces the respondents' new state and, when the case's
owner is now the respondent or in their management chain, reassigns the case away from
them (the conflict-of-interest rule applied late). Harassment cases go to Investigations:
Helen Carter (A-3001) and Mei Tanaka (A-3003) hold the skill, both reporting to Victor
Almeida (M-9002), who reports to Morgan Ellis (E-0001).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.support.auth import auth_headers
from tests.support.bus import capture_events
from tests.support.directory import load_demo_directory
from tests.support.system import running_system

SAM = {"employee_id": "E-7001", "name": "Sam Rivera", "email": "sam.rivera@example.com"}
AS_SAM = auth_headers("u-sam", "employee", employee_id="E-7001")
AS_MANAGER = auth_headers("M-9001", "hr_manager", employee_id="M-9001")
AS_AGENT = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
INVESTIGATORS = {"A-3001", "A-3003"}


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    load_demo_directory(database_url, rabbitmq_url)
    with running_system(database_url, rabbitmq_url, logs_dir / "resolution") as running:
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


async def view(system: Any, case_id: str, headers: dict[str, str] = AS_MANAGER) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
        response = await client.get(f"/api/v1/cases/{case_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def post(system: Any, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
        return await client.post(path, json=body, headers=headers)


async def flagged_case(system: Any, category: str = "harassment") -> tuple[str, dict[str, Any]]:
    """A case naming one respondent nobody in the directory matches, routed and assigned."""
    accepted = await post(
        system,
        "/api/v1/cases",
        {
            "subject": "Comments at the depot",
            "description": "Comments about my appearance in front of the whole shift, twice.",
            "reporter": SAM,
            "category": category,
            "respondents": [{"name": "The New Shift Lead"}],
        },
        AS_SAM,
    )
    assert accepted.status_code == 202, accepted.text
    case_id: str = accepted.json()["case_id"]

    async def flagged() -> dict[str, Any] | None:
        seen = await view(system, case_id)
        ready = seen["respondents"] and seen["respondents"][0]["state"] == "unresolved"
        return seen if ready and seen["assignment"]["owner_id"] else None

    return case_id, await eventually(flagged, "the respondent flagged and the case assigned")


def resolution_path(case_id: str, position: int = 0) -> str:
    return f"/api/v1/cases/{case_id}/respondents/{position}/resolution"


async def test_resolving_the_respondent_to_the_owner_reassigns_the_case_away(system, captured):
    case_id, seen = await flagged_case(system)
    assert seen["respondents"][0]["position"] == 0
    owner = seen["assignment"]["owner_id"]
    assert owner in INVESTIGATORS
    other = (INVESTIGATORS - {owner}).pop()

    accepted = await post(
        system,
        resolution_path(case_id),
        {"employee_id": owner, "reason": "the shift lead is the investigator herself"},
        AS_MANAGER,
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["event_type"] == "case.respondent_resolution_requested"

    resolved = await captured.wait(
        lambda e: (
            e["event_type"] == "case.respondents_resolved"
            and e["case_id"] == case_id
            and e["payload"]["unresolved"] == 0
        )
    )
    assert resolved["payload"]["resolved_employee_ids"] == [owner]
    assert resolved["payload"]["respondents"] == [
        {"position": 0, "employee_id": owner, "matched_by": "person", "problem": None}
    ]
    assigned = await captured.wait(
        lambda e: (
            e["event_type"] == "case.assigned"
            and e["case_id"] == case_id
            and e["payload"]["previous_owner_id"] is not None
        )
    )
    # Away from the respondent and everyone above her: the other investigator takes it.
    assert assigned["payload"]["previous_owner_id"] == owner
    assert assigned["payload"]["owner"]["id"] == other

    async def settled() -> dict[str, Any] | None:
        now = await view(system, case_id)
        return now if now["assignment"]["owner_id"] == other else None

    now = await eventually(settled, "intake shows the new owner")
    assert now["respondents"][0]["state"] == "resolved"
    assert now["respondents"][0]["resolved_employee_id"] == owner
    assert now["respondents"][0]["matched_by"] == "person"
    assert now["respondents_unresolved"] == 0
    # The former owner can no longer be given the case by hand.
    again = await post(
        system,
        f"/api/v1/cases/{case_id}/assignment",
        {"owner_id": owner, "reason": "back to her"},
        AS_MANAGER,
    )
    assert again.status_code == 202
    refused = await captured.wait(
        lambda e: e["event_type"] == "case.request_refused" and e["case_id"] == case_id
    )
    assert "conflict of interest" in refused["payload"]["reason"]
    # A second resolution of the same respondent is refused at the door (not flagged).
    twice = await post(system, resolution_path(case_id), {"employee_id": "E-7100"}, AS_MANAGER)
    assert twice.status_code == 409, twice.text


async def test_resolving_to_someone_outside_the_owners_chain_keeps_the_owner(system, captured):
    case_id, seen = await flagged_case(system)
    owner = seen["assignment"]["owner_id"]
    # The owner (an investigator) may resolve it: the restricted case is theirs to read.
    as_owner = auth_headers(owner, "investigator", employee_id=owner)
    accepted = await post(system, resolution_path(case_id), {"employee_id": "E-7100"}, as_owner)
    assert accepted.status_code == 202, accepted.text
    resolved = await captured.wait(
        lambda e: (
            e["event_type"] == "case.respondents_resolved"
            and e["case_id"] == case_id
            and e["payload"]["unresolved"] == 0
        )
    )
    assert resolved["payload"]["resolved_employee_ids"] == ["E-7100"]
    with contextlib.suppress(AssertionError):  # pull in what was published meanwhile
        await captured.wait(lambda e: False, timeout=1.5)
    assert not [
        e
        for e in captured.events
        if e["event_type"] == "case.assigned"
        and e["case_id"] == case_id
        and e["payload"]["previous_owner_id"] is not None
    ]
    assert (await view(system, case_id))["assignment"]["owner_id"] == owner


async def test_an_unknown_employee_id_is_refused_with_the_reason(system, captured):
    case_id, _ = await flagged_case(system)
    accepted = await post(system, resolution_path(case_id), {"employee_id": "E-9999"}, AS_MANAGER)
    assert accepted.status_code == 202, accepted.text
    refused = await captured.wait(
        lambda e: e["event_type"] == "case.request_refused" and e["case_id"] == case_id
    )
    assert refused["payload"]["request_type"] == "case.respondent_resolution_requested"
    assert "no employee 'E-9999' in the directory" in refused["payload"]["reason"]
    seen = await view(system, case_id)
    assert seen["respondents"][0]["state"] == "unresolved"
    assert seen["respondents_unresolved"] == 1


async def test_bad_input_is_refused_naming_the_field_and_hidden_cases_are_404(system):
    case_id, _ = await flagged_case(system, category="payroll_query")
    cases = [
        ({}, "employee_id"),
        ({"employee_id": "has spaces"}, "employee_id"),
        ({"employee_id": ""}, "employee_id"),
        ({"employee_id": "E-7100", "reason": "x" * 2001}, "reason"),
        ({"employee_id": "E-7100", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        refused = await post(system, resolution_path(case_id), body, AS_AGENT)
        assert refused.status_code == 422, (body, refused.text)
        assert any(e["loc"][-1] == field for e in refused.json()["detail"]), (field, refused.text)
    bad_position = await post(
        system, resolution_path(case_id, -1), {"employee_id": "E-7100"}, AS_AGENT
    )
    assert bad_position.status_code == 422
    assert any(e["loc"][-1] == "position" for e in bad_position.json()["detail"])
    # Nobody named at that position: 404.
    nobody = await post(system, resolution_path(case_id, 3), {"employee_id": "E-7100"}, AS_AGENT)
    assert nobody.status_code == 404, nobody.text
    # Not staff: 403; a restricted case an agent may not read: 404 like a missing case.
    assert (
        await post(system, resolution_path(case_id), {"employee_id": "E-7100"}, AS_SAM)
    ).status_code == 403
    restricted_id, _ = await flagged_case(system)
    hidden = await post(system, resolution_path(restricted_id), {"employee_id": "E-7100"}, AS_AGENT)
    missing = await post(
        system,
        resolution_path("00000000-0000-0000-0000-000000000000"),
        {"employee_id": "E-7100"},
        AS_AGENT,
    )
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()


@needs_chromium
async def test_a_manager_resolves_a_flagged_respondent_in_the_browser(system, tmp_path):
    from playwright.async_api import async_playwright

    case_id, _ = await flagged_case(system, category="payroll_query")
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        context = await browser.new_context(
            base_url=system.url("intake"), java_script_enabled=False
        )
        page = await context.new_page()
        await page.goto("/portal/sign-in")
        await page.get_by_label(re.compile("Victor Almeida")).check()
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url("**/portal/work-queue")

        await page.goto(f"/portal/cases/{case_id}")
        respondents = page.locator("#respondents-list")
        assert await respondents.get_by_text("respondent not matched — needs a person").count() == 1
        field = page.get_by_label("Employee id of this respondent")
        # A malformed id is refused on the page, naming the field.
        await field.fill("not an id")
        await page.get_by_role("button", name="Resolve respondent").click()
        assert await page.locator("#respondent0_employee_id-error").count() == 1
        await page.get_by_label("Employee id of this respondent").fill("E-7100")
        await page.get_by_label("Why (optional)").fill("the shift lead is Jordan Blake")
        await page.get_by_role("button", name="Resolve respondent").click()
        await page.wait_for_url("**?done=respondent0*")

        async def shows_resolved() -> bool:
            await page.reload()
            text = await page.locator("#respondents-list").inner_text()
            return "resolved to E-7100 by a person" in text

        await eventually(shows_resolved, "the respondent shown as resolved")
        assert await page.get_by_role("button", name="Resolve respondent").count() == 0
        await page.screenshot(path=str(artifacts / "respondent-resolved.png"), full_page=True)
        await context.close()
        await browser.close()
    assert (artifacts / "respondent-resolved.png").read_bytes().startswith(b"\x89PNG")
