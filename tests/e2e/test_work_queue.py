"""The staff work queue on the real system: API (scopes, filters, search, pages, counts,
confidentiality) and an agent's day in Chromium from the sign-in page."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.test_agent_actions import AS_MANAGER, SAM, act, client, until
from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, PNG_MAGIC, needs_chromium
from tests.support.auth import auth_headers
from tests.support.infra import own_database
from tests.support.system import running_system

AS_SAM = auth_headers("u-sam", "employee", employee_id=SAM["employee_id"])
AS_PRIYA = auth_headers("A-1001", "hr_agent", "employee", employee_id="A-1001")
# One word no other case has, so searches find exactly this run's case.
WORD = f"quokka{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def database_url(database_url):
    """This module's own database (own_database): counts, filters and pages are asserted
    exactly, so no other module's cases may be in the queue."""
    with own_database("work_queue") as url:
        yield url


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "work-queue") as running:
        yield running


async def queue(system, headers, **params: Any) -> httpx.Response:
    async with client(system, headers) as c:
        return await c.get("/api/v1/work-queue", params=params)


async def page_of(system, headers, **params: Any) -> dict[str, Any]:
    answer = await queue(system, headers, **params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def refs(body: dict[str, Any]) -> set[str]:
    return {item["reference"] for item in body["items"]}


async def raise_case(system, *, subject: str, description: str, category: str) -> dict[str, Any]:
    body = {"subject": subject, "description": description, "reporter": SAM, "category": category}
    async with client(system, AS_SAM) as c:
        accepted = await c.post("/api/v1/cases", json=body)
    assert accepted.status_code == 202, accepted.text
    case_id = accepted.json()["case_id"]
    return await until(system, case_id, lambda v: v["status"] == "assigned", headers=AS_MANAGER)


@pytest.fixture(scope="module")
async def cases(system) -> dict[str, dict[str, Any]]:
    """A payroll case assigned to Priya (by hand), a restricted harassment case, a
    confidential grievance carrying WORD in its description."""
    payroll = await raise_case(
        system,
        subject="Overtime missing from my payslip",
        description="Twelve hours of overtime from October are not on my November payslip.",
        category="payroll_query",
    )
    if payroll["assignment"]["owner_id"] != "A-1001":
        moved = await act(
            system, AS_MANAGER, payroll["case_id"], "assignment",
            {"owner_id": "A-1001", "reason": "Priya runs payroll this week"},
        )  # fmt: skip
        assert moved.status_code == 202, moved.text
        payroll = await until(
            system, payroll["case_id"],
            lambda v: v["assignment"]["owner_id"] == "A-1001", headers=AS_MANAGER,
        )  # fmt: skip
    harassment = await raise_case(
        system,
        subject="Harassment by a colleague",
        description=f"A colleague keeps making inappropriate comments about me. {WORD}",
        category="harassment",
    )
    grievance = await raise_case(
        system,
        subject="Unfair treatment on shift allocation",
        description=f"I was given the worst shifts for months without reason. {WORD}",
        category="grievance",
    )
    return {"payroll": payroll, "harassment": harassment, "grievance": grievance}


async def test_scopes_and_counts(system, cases) -> None:
    payroll = cases["payroll"]["reference"]
    mine = await page_of(system, AS_PRIYA)  # the default scope is "mine"
    assert mine["scope"] == "mine" and payroll in refs(mine)
    assert all(item["owner_id"] == "A-1001" for item in mine["items"])
    # Priya is in HR Operations (routing's roster): the payroll case is her team's.
    team = await page_of(system, AS_PRIYA, scope="team")
    assert payroll in refs(team)
    assert {item["team"] for item in team["items"]} == {"hr_operations"}
    assert cases["grievance"]["reference"] not in refs(team)
    unassigned = await page_of(system, AS_PRIYA, scope="unassigned")
    assert all(item["owner_id"] is None for item in unassigned["items"])
    everything = await page_of(system, AS_PRIYA, scope="all", limit=100)
    assert {payroll, cases["grievance"]["reference"]} <= refs(everything)
    counts = everything["counts"]
    assert counts == mine["counts"] == team["counts"]
    assert counts["mine"] == len(mine["items"]) and counts["team"] == len(team["items"])
    assert counts["unassigned"] == len(unassigned["items"])
    assert counts["all"] == len(everything["items"])
    assert everything["counts_over_limit"] == [] and everything["count_limit"] == 1000
    # Rows carry both clocks with the working time left (seconds of working time).
    row = next(item for item in mine["items"] if item["reference"] == payroll)
    clocks = {clock["name"]: clock for clock in row["clocks"]}
    assert clocks["first_response"]["state"] == "running"
    assert clocks["resolution"]["working_seconds_left"] > 0
    assert clocks["first_response"]["due"] is not None


async def test_restricted_cases_are_invisible_to_an_agent_who_does_not_own_them(
    system, cases
) -> None:
    harassment = cases["harassment"]
    reference = harassment["reference"]
    owner = harassment["assignment"]["owner_id"]
    assert owner not in (None, "A-1001")
    for params in ({"scope": "all"}, {"scope": "all", "q": WORD}, {"scope": "all", "q": reference}):
        body = await page_of(system, AS_PRIYA, limit=100, **params)
        assert reference not in refs(body), params
    searched = await page_of(system, AS_PRIYA, scope="all", q=WORD)
    # Count and search alike: only the grievance matches for her.
    assert refs(searched) == {cases["grievance"]["reference"]}
    assert searched["counts"]["all"] == 1
    for headers in (AS_MANAGER, auth_headers(owner, "investigator", employee_id=owner)):
        seen = await page_of(system, headers, scope="all", q=WORD)
        assert reference in refs(seen)
        assert seen["counts"]["all"] == 2
    owners_own = await page_of(system, auth_headers(owner, "investigator", employee_id=owner))
    assert reference in refs(owners_own)


async def test_search_by_word_and_by_reference(system, cases) -> None:
    grievance = cases["grievance"]["reference"]
    by_word = await page_of(system, AS_MANAGER, scope="all", q=WORD)
    assert refs(by_word) == {grievance, cases["harassment"]["reference"]}
    stemmed = await page_of(system, AS_MANAGER, scope="all", q="shifts allocated")
    assert grievance in refs(stemmed)  # English stemming: allocation ~ allocated
    exact = await page_of(system, AS_MANAGER, scope="all", q=grievance)
    assert refs(exact) == {grievance}
    prefix = await page_of(system, AS_MANAGER, scope="all", q=grievance[:-1].lower())
    assert grievance in refs(prefix)
    assert all(r.startswith(grievance[:-1]) for r in refs(prefix))


async def test_each_filter(system, cases) -> None:
    payroll, grievance = cases["payroll"]["reference"], cases["grievance"]["reference"]

    async def all_with(**params: Any) -> set[str]:
        return refs(await page_of(system, AS_MANAGER, scope="all", limit=100, **params))

    assert payroll in await all_with(priority="P4")
    assert payroll not in await all_with(priority="P3")
    assert await all_with(category="grievance") == {grievance}
    assert payroll in await all_with(category=["payroll_query", "grievance"])
    assert payroll in await all_with(channel="api")
    assert not await all_with(channel="email")
    assert payroll in await all_with(owner="A-1001")
    assert grievance not in await all_with(owner="A-1001")
    assert payroll in await all_with(status="assigned")
    assert payroll not in await all_with(status="closed")
    today = datetime.now(UTC).date()
    assert payroll in await all_with(submitted_from=today.isoformat())
    assert not await all_with(submitted_to=(today - timedelta(days=1)).isoformat())
    for state in ("breached", "due_soon"):
        body = await page_of(system, AS_MANAGER, scope="all", sla=state, limit=100)
        assert all(item["sla_state"] == state for item in body["items"]), state
    # Deadline order: the nearest running deadline first.
    body = await page_of(system, AS_MANAGER, scope="all", limit=100)
    dues = [
        min(c["due"] for c in item["clocks"] if c["state"] == "running") for item in body["items"]
    ]
    assert dues == sorted(dues)


async def test_pages_have_no_duplicates_or_gaps(system, cases) -> None:
    whole = await page_of(system, AS_MANAGER, scope="all", limit=100)
    seen: list[str] = []
    cursor = None
    for _ in range(500):
        params: dict[str, Any] = {"scope": "all", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        body = await page_of(system, AS_MANAGER, **params)
        seen += [item["reference"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [item["reference"] for item in whole["items"]]
    assert len(seen) == len(set(seen)) == whole["counts"]["all"] >= 3


async def test_who_may_use_it_and_bad_parameters(system, cases) -> None:
    assert (await queue(system, AS_SAM)).status_code == 403
    assert (await queue(system, None)).status_code == 401
    for params, name in (
        ({"status": "bogus"}, "status"),
        ({"scope": "everyone"}, "scope"),
        ({"sla": "late"}, "sla"),
        ({"priority": "P7"}, "priority"),
        ({"submitted_from": "yesterday"}, "submitted_from"),
        ({"submitted_from": "2026-12-02", "submitted_to": "2026-12-01"}, "submitted_to"),
        ({"cursor": "garbage"}, "cursor"),
        ({"limit": "1000"}, "limit"),
        ({"colour": "red"}, "colour"),
    ):
        answer = await queue(system, AS_MANAGER, **params)
        assert answer.status_code == 422, (params, answer.text)
        assert any(name in error["loc"] for error in answer.json()["detail"]), answer.text


async def test_the_staff_case_page_shows_both_clocks(system, cases) -> None:
    async with client(system, AS_PRIYA) as c:
        page = (await c.get(f"/portal/cases/{cases['payroll']['case_id']}")).text
    assert 'id="clock-first_response"' in page and 'id="clock-resolution"' in page
    assert "working time left" in page
    async with client(system, AS_SAM) as c:  # the reporter sees no clocks
        assert (
            "clock-first_response"
            not in (await c.get(f"/portal/cases/{cases['payroll']['case_id']}")).text
        )


@needs_chromium
async def test_an_agent_works_from_the_queue(system, cases, tmp_path) -> None:
    from playwright.async_api import async_playwright

    payroll = cases["payroll"]["reference"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        context = await browser.new_context(
            base_url=system.url("intake"), java_script_enabled=False
        )
        page = await context.new_page()
        await page.goto("/portal/sign-in")
        await page.get_by_label(re.compile("Priya Shah")).check()
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url("**/portal/work-queue")
        assert await page.get_by_role("heading", level=1).inner_text() == "Work queue"
        assert await page.get_by_role("row").filter(has_text=payroll).count() == 1

        await page.get_by_role("link", name=re.compile(r"^All I may see")).click()
        await page.get_by_label("Search").fill("overtime")
        await page.get_by_role("button", name="Apply").click()
        await page.wait_for_url(re.compile(r"q=overtime"))
        assert await page.get_by_role("row").filter(has_text=payroll).count() == 1
        assert (
            await page.get_by_role("row").filter(has_text=cases["grievance"]["reference"]).count()
            == 0
        )

        await page.get_by_label("Priority").select_option("P4")
        await page.get_by_role("button", name="Apply").click()
        await page.wait_for_url(re.compile(r"priority=P4"))
        row = page.get_by_role("row").filter(has_text=payroll)
        assert await row.count() == 1
        assert "left" in await row.inner_text()
        await page.screenshot(path=str(tmp_path / "work-queue.png"), full_page=True)

        await page.get_by_label("Priority").select_option("P1")
        await page.get_by_role("button", name="Apply").click()
        await page.wait_for_url(re.compile(r"priority=P1"))
        assert await page.get_by_role("row").filter(has_text=payroll).count() == 0

        await page.get_by_label("Priority").select_option("")
        await page.get_by_role("button", name="Apply").click()
        await page.get_by_role("link", name=payroll).click()
        await page.wait_for_url(re.compile(r"/portal/cases/[0-9a-f-]{36}"))
        assert (await page.get_by_role("heading", level=1).inner_text()).startswith(payroll)
        clocks = page.get_by_role("region", name="SLA clocks")
        assert "working time left" in await clocks.inner_text()
        shot = tmp_path / "case-with-clocks.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes().startswith(PNG_MAGIC)
        assert (tmp_path / "work-queue.png").read_bytes().startswith(PNG_MAGIC)
        await context.close()
        await browser.close()
