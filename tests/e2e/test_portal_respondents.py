"""Respondents and injury facts from the portal, in Debian's Chromium (no JavaScript).

The routing directory is the demo one `hrcase run` loads (hrcase/demo_directory.csv):
Helen Carter (A-3001) and Mei Tanaka (A-3003), the Investigations members with the
harassment skill, report to Victor Almeida (M-9002), who leads Investigations and is on
its escalation ladder. Investigations assigns the least loaded; SLA clocks run in seconds
here (the harness's fast policy) so escalations happen while the test watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.routing.domain.policy import load_policy
from services.routing.tests.harness import fast_policy
from tests.support.auth import auth_headers
from tests.support.bus import EventCapture, capture_events
from tests.support.directory import load_demo_directory
from tests.support.infra import own_database
from tests.support.system import running_system

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)
PEOPLE = {m.id: m.name for t in load_policy().teams.values() for m in t.members}
HARASSMENT_INVESTIGATORS = ("A-3001", "A-3003")
MANAGER = "M-9002"  # their manager, the team lead
CASE_URL = re.compile(r"/portal/cases/([0-9a-f-]{36})")


@pytest.fixture(scope="module")
def database_url(database_url):
    """A database of this module's own: it compares the investigators' loads."""
    with own_database("portal_respondents") as url:
        yield url


@pytest.fixture(scope="module")
async def admin_pool(database_url):
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir, tmp_path_factory):
    load_demo_directory(database_url, rabbitmq_url)
    policy = fast_policy(tmp_path_factory.mktemp("policy") / "fast.yaml")
    with running_system(
        database_url,
        rabbitmq_url,
        logs_dir / "portal-respondents",
        ROUTING_POLICY_FILE=str(policy),
        ROUTING_TIMER_INTERVAL="0.2",
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


@pytest.fixture
async def captured(system, amqp):
    async with capture_events(amqp) as capture:
        yield capture


async def sign_in(browser: Any, system: Any, who: str) -> tuple[Any, Any]:
    context = await browser.new_context(base_url=system.url("intake"), java_script_enabled=False)
    page = await context.new_page()
    await page.goto("/portal/sign-in")
    await page.get_by_label(re.compile(who)).check()
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/portal/(cases|work-queue)$"))
    return context, page


def of(capture: EventCapture, case_id: str, event_type: str) -> list[dict[str, Any]]:
    return [e for e in capture.events if e["case_id"] == case_id and e["event_type"] == event_type]


async def event_of(capture: EventCapture, case_id: str, event_type: str, **kw: Any) -> Any:
    return await capture.wait(
        lambda e: e["case_id"] == case_id and e["event_type"] == event_type, **kw
    )


async def drain(capture: EventCapture, seconds: float = 1.0) -> None:
    with contextlib.suppress(AssertionError):
        await capture.wait(lambda e: False, timeout=seconds)


async def owner_of_a_fresh_harassment_case(system: Any, captured: EventCapture) -> str:
    as_alex = auth_headers("u-alex", "employee", employee_id="E-7002")
    body = {
        "subject": "Comments in the finance office",
        "description": "Repeated inappropriate comments about my accent in team meetings.",
        "reporter": {
            "employee_id": "E-7002",
            "name": "Alex Chen",
            "email": "alex.chen@example.com",
        },
        "category": "harassment",
    }
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
        accepted = await client.post("/api/v1/cases", json=body, headers=as_alex)
    assert accepted.status_code == 202, accepted.text
    assigned = await event_of(captured, accepted.json()["case_id"], "case.assigned", timeout=30)
    return str(assigned["payload"]["owner"]["id"])


@needs_chromium
async def test_a_member_of_the_owning_team_named_as_respondent_never_owns_or_gets_escalations(
    system, browser, captured, admin_pool, tmp_path
):
    # One harassment case first: its owner now has more open cases, so least-loaded
    # Investigations would give the next case to the other investigator — whom the
    # employee names as the respondent.
    busy = await owner_of_a_fresh_harassment_case(system, captured)
    (respondent,) = [i for i in HARASSMENT_INVESTIGATORS if i != busy]
    load = dict(
        await admin_pool.fetch(
            "SELECT owner_id, count(*) FROM routing.cases WHERE owner_id = ANY($1::text[])"
            " AND status IN ('assigned', 'in_progress', 'waiting_on_employee') GROUP BY 1",
            list(HARASSMENT_INVESTIGATORS),
        )
    )
    assert load.get(respondent, 0) < load[busy]  # without the rule, the respondent gets it

    context, page = await sign_in(browser, system, "Sam Rivera")
    await page.get_by_role("link", name="Raise a case").first.click()
    await page.get_by_label("Subject").fill("Unwanted comments during the investigation")
    await page.get_by_label("Category").select_option("harassment")
    await page.get_by_label("What happened?").fill(
        "During interviews about another matter, the investigator made comments about me."
    )
    await page.get_by_label("Person 1: Name", exact=True).fill(PEOPLE[respondent])
    await page.screenshot(path=str(tmp_path / "raise-with-respondent.png"), full_page=True)
    await page.get_by_role("button", name="Submit").click()
    await page.wait_for_url(CASE_URL)
    match = CASE_URL.search(page.url)
    assert match is not None
    case_id = match.group(1)
    await context.close()

    resolved = await event_of(captured, case_id, "case.respondents_resolved", timeout=30)
    assert resolved["payload"]["resolved_employee_ids"] == [respondent]
    assert resolved["payload"]["respondents"][0]["matched_by"] == "name"
    assigned = await event_of(captured, case_id, "case.assigned")
    assert assigned["payload"]["owner"]["id"] == busy
    # The first response is due in seconds: the ladder's team lead (the respondent's
    # manager) is passed over for the next level up.
    escalated = await event_of(captured, case_id, "case.escalated", timeout=60)
    assert escalated["payload"]["escalated_to"]["id"] == "M-9003"
    assert escalated["payload"]["level"] == 3
    await drain(captured, 3)
    for event in of(captured, case_id, "case.escalated"):
        assert event["payload"]["escalated_to"]["id"] not in (respondent, MANAGER)
    for event in of(captured, case_id, "case.assigned"):
        assert event["payload"]["owner"]["id"] not in (respondent, MANAGER)

    # Staff see who handles it and whom the case is about.
    context, page = await sign_in(browser, system, "Victor Almeida")
    await page.goto(f"/portal/cases/{case_id}")
    handler = page.locator("dt:has-text('Case handler') + dd")
    assert await handler.inner_text() == PEOPLE[busy]
    respondents = page.locator("#respondents-list")
    assert f"matched to {respondent} (by name)" in await respondents.inner_text()
    await page.screenshot(path=str(tmp_path / "case-with-respondent.png"), full_page=True)
    await context.close()


@needs_chromium
async def test_a_serious_workplace_injury_raised_in_the_portal_requires_a_conference(
    system, browser, captured, tmp_path
):
    context, page = await sign_in(browser, system, "Sam Rivera")
    await page.goto("/portal/cases/new")
    await page.get_by_label("Subject").fill("Fell from a ladder in the warehouse")
    await page.get_by_label("Category").select_option("workplace_injury")
    await page.get_by_label("What happened?").fill(
        "The ladder slipped and I fell two metres; my ankle is fractured."
    )
    today = datetime.now(UTC).date().isoformat()
    await page.get_by_label("Date of injury").fill(today)
    await page.get_by_label("Serious injury?").select_option("yes")
    await page.get_by_role("button", name="Submit").click()
    await page.wait_for_url(CASE_URL)
    match = CASE_URL.search(page.url)
    assert match is not None
    case_id = match.group(1)

    submitted = await event_of(captured, case_id, "case.submitted")
    assert submitted["payload"]["injury"] == {
        "date_of_injury": today,
        "serious": True,
        "suitable_employment_available": None,
        "jurisdiction": None,
    }
    conference = await event_of(captured, case_id, "conference.required", timeout=30)
    assert conference["payload"]["reasons"] == ["serious injury"]
    # The reporter sees their own injury facts.
    await page.reload()
    assert await page.locator("#injury-serious").inner_text() == "Yes"
    assert await page.locator("#injury-suitable").inner_text() == "Not yet known"
    await page.screenshot(path=str(tmp_path / "injury-reporter.png"), full_page=True)
    await context.close()

    context, page = await sign_in(browser, system, "Victor Almeida")

    async def conference_shown() -> bool:
        await page.goto(f"/portal/cases/{case_id}")
        return await page.locator("#conference-required").count() == 1

    for _ in range(50):
        if await conference_shown():
            break
        await asyncio.sleep(0.2)
    assert "serious injury" in await page.locator("#conference-required").inner_text()
    await page.screenshot(path=str(tmp_path / "injury-staff.png"), full_page=True)
    await context.close()


@needs_chromium
async def test_a_phone_call_with_injury_facts_and_a_later_decision_from_the_case_page(
    system, browser, captured, tmp_path
):
    context, page = await sign_in(browser, system, "Priya Shah")
    await page.goto("/portal/phone-calls/new")
    await page.get_by_label("Employee id", exact=True).fill("E-7001")
    await page.get_by_label("Name", exact=True).fill("Sam Rivera")
    await page.get_by_label("Email", exact=True).fill("sam.rivera@example.com")
    await page.get_by_label("Duration in minutes").fill("6")
    await page.get_by_label("Category, if known").select_option("workplace_injury")
    await page.get_by_label("Summary of the call").fill(
        "Sam strained his back lifting; his supervisor says there are no light duties."
    )
    await page.get_by_label("Person 1: Email", exact=True).fill("Jordan.Blake@example.com")
    await page.get_by_label("Serious injury?").select_option("no")
    await page.get_by_label("Does the pre-injury employer have suitable employment?").select_option(
        "unknown"
    )
    await page.get_by_role("button", name="Log the call").click()
    await page.wait_for_url(CASE_URL)
    match = CASE_URL.search(page.url)
    assert match is not None
    case_id = match.group(1)
    await context.close()

    submitted = await event_of(captured, case_id, "case.submitted")
    assert submitted["payload"]["channel"] == "phone"
    assert submitted["payload"]["respondents"] == [
        {"employee_id": None, "name": None, "email": "Jordan.Blake@example.com"}
    ]
    resolved = await event_of(captured, case_id, "case.respondents_resolved", timeout=30)
    assert resolved["payload"]["resolved_employee_ids"] == ["E-7100"]
    await drain(captured)
    assert of(captured, case_id, "conference.required") == []

    # Later, the employer confirms there is no suitable work: a manager records it.
    context, page = await sign_in(browser, system, "Victor Almeida")
    await page.goto(f"/portal/cases/{case_id}")
    decision = page.locator("#injury-decision")
    await decision.get_by_label("Suitable employment with the pre-injury employer").select_option(
        "no"
    )
    await decision.get_by_role("button", name="Record injury decision").click()
    await page.wait_for_url("**?done=injury#case-actions")
    conference = await event_of(captured, case_id, "conference.required", timeout=30)
    assert conference["payload"]["reasons"] == [
        "no suitable employment with the pre-injury employer"
    ]
    # A second decision calling for one too does not require a second conference.
    await page.goto(f"/portal/cases/{case_id}")
    await page.locator("#injury-decision").get_by_label("Serious injury").select_option("yes")
    await page.get_by_role("button", name="Record injury decision").click()
    await page.wait_for_url("**?done=injury#case-actions")
    await drain(captured, 3)
    assert len(of(captured, case_id, "case.injury_facts_recorded")) == 2
    assert len(of(captured, case_id, "conference.required")) == 1
    await page.goto(f"/portal/cases/{case_id}")
    assert await page.locator("#injury-serious").inner_text() == "Yes"
    assert await page.locator("#injury-suitable").inner_text() == "No"
    assert "E-7100" in await page.locator("#respondents-list").inner_text()
    await page.screenshot(path=str(tmp_path / "injury-decision.png"), full_page=True)
    await context.close()
