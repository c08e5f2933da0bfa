"""Statutory clocks through the real system: a serious workplace injury raised at intake's
API starts the NSW pack's clocks and the conference planning clock in routing; intake shows
them (API and the staff case page); the insurer notification clock warns and breaches
(mails to the owner and the escalation target, nothing of the case in them); staff record
clocks as done through both doors.

The policy is the default one except that the Sydney office works round the clock and the
insurer notification runs 0.003 calendar hours (10.8 seconds) instead of 48 hours.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.routing.domain.policy import DEFAULT_POLICY_FILE
from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.support.auth import auth_headers
from tests.support.system import running_system

ALL_WEEK = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
REPORTER = {"employee_id": "E-6620", "name": "Lee Park", "email": "lee.park@example.com"}
AS_REPORTER = auth_headers("u-lee", "employee", employee_id=REPORTER["employee_id"])
AS_AGENT = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
AS_MANAGER = auth_headers("M-9002", "hr_manager", employee_id="M-9002")
DESCRIPTION = "DESC-MARKER-p2Qs I slipped on the loading dock and broke my wrist."
DEADLINE = 40.0


def clock_policy(path: Path) -> Path:
    raw = copy.deepcopy(yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8")))
    raw["calendars"]["sydney_office"]["hours"] = ALL_WEEK
    raw["calendars"]["sydney_office"]["holidays"] = []
    for clock in raw["jurisdictions"]["nsw"]["clocks"]:
        if clock["name"] == "insurer_notification":
            clock["within"] = {"calendar_hours": 0.003}
            clock["due_soon_share"] = 0.5
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir, tmp_path_factory):
    policy = clock_policy(tmp_path_factory.mktemp("clock-policy") / "clocks.yaml")
    with running_system(
        database_url,
        rabbitmq_url,
        logs_dir / "statutory-clocks",
        ROUTING_POLICY_FILE=str(policy),
        ROUTING_TIMER_INTERVAL="0.2",
    ) as running:
        yield running


def client(system, headers=None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.url("intake"), timeout=10, headers=headers)


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout=DEADLINE) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def raise_case(system, category: str, injury: dict[str, Any] | None = None) -> dict:
    body: dict[str, Any] = {
        "subject": "Injured at work" if injury else "Question for HR",
        "description": DESCRIPTION,
        "reporter": REPORTER,
        "category": category,
    }
    if injury is not None:
        body["injury"] = injury
    async with client(system, AS_REPORTER) as c:
        accepted = await c.post("/api/v1/cases", json=body)
        assert accepted.status_code == 202, accepted.text
        case_id = accepted.json()["case_id"]

        async def assigned() -> bool:
            view = (await c.get(f"/api/v1/cases/{case_id}")).json()
            return view.get("status") == "assigned"

        await eventually(assigned, "the case assigned")
    return accepted.json()


async def clocks_of(system, case_id: str, headers=AS_MANAGER) -> dict[str, dict[str, Any]]:
    async with client(system, headers) as c:
        listed = await c.get(f"/api/v1/cases/{case_id}/statutory-clocks")
    assert listed.status_code == 200, listed.text
    return {f"{k['pack']}/{k['clock']}": k for k in listed.json()["clocks"]}


async def clock_state(system, case_id: str, name: str, state: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        clock = (await clocks_of(system, case_id)).get(name)
        return clock if clock and clock["state"] == state else None

    found: dict[str, Any] = await eventually(reached, f"{name} {state}")
    return found


async def complete(system, case_id: str, pack: str, clock: str, body: Any, headers=AS_MANAGER):
    async with client(system, headers) as c:
        return await c.post(
            f"/api/v1/cases/{case_id}/statutory-clocks/{pack}/{clock}/completion", json=body
        )


async def serious_injury(system) -> dict:
    return await raise_case(
        system, "workplace_injury", {"serious": True, "suitable_employment_available": True}
    )


async def test_the_doors_refuse_bad_input_and_cases_the_caller_may_not_read(system):
    case = await serious_injury(system)
    case_id = case["case_id"]
    await eventually(lambda: _has(system, case_id, "nsw/provisional_payments"), "clocks projected")
    for body, field in [
        ({"note": "x" * 2001}, "note"),
        ({"colour": "red"}, "colour"),
        ({"note": 5}, "note"),
    ]:
        refused = await complete(system, case_id, "nsw", "provisional_payments", body)
        assert refused.status_code == 422, (body, refused.text)
        assert any(e["loc"][-1] == field for e in refused.json()["detail"]), refused.text
    bad_path = await complete(system, case_id, "NSW!", "provisional_payments", {})
    assert bad_path.status_code == 422
    assert any(e["loc"][-1] == "pack" for e in bad_path.json()["detail"])
    # No such clock on the case, a case the caller may not read, a missing case: 404.
    assert (await complete(system, case_id, "vic", "provisional_payments", {})).status_code == 404
    restricted = await raise_case(system, "harassment")
    hidden = await complete(system, restricted["case_id"], "nsw", "x", {}, headers=AS_AGENT)
    missing = await complete(
        system, "00000000-0000-0000-0000-000000000000", "nsw", "x", {}, headers=AS_AGENT
    )
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    async with client(system, AS_AGENT) as c:
        listed = await c.get(f"/api/v1/cases/{restricted['case_id']}/statutory-clocks")
        assert listed.status_code == 404
    async with client(system, AS_REPORTER) as c:
        assert (await c.get(f"/api/v1/cases/{case_id}/statutory-clocks")).status_code == 403
    assert (
        await complete(system, case_id, "nsw", "provisional_payments", {}, headers=AS_REPORTER)
    ).status_code == 403
    # A good request: 202 with the request event; no body at all is fine too.
    accepted = await complete(system, case_id, "nsw", "provisional_payments", {"note": "paid"})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["event_type"] == "statutory_clock.completion_requested"
    met = await clock_state(system, case_id, "nsw/provisional_payments", "met")
    assert met["met_by"] == "staff" and met["met_on_time"] is True
    again = await complete(system, case_id, "nsw", "provisional_payments", None)
    assert again.status_code == 409, again.text


async def _has(system, case_id: str, name: str) -> bool:
    return name in await clocks_of(system, case_id)


def mails(system, reference: str) -> list[tuple[str, str, str]]:
    return [
        (str(m["To"]), str(m["Subject"]), m.get_body().get_content())  # type: ignore[union-attr]
        for m in system.mail.received()
        if str(m["Subject"]).startswith(f"[{reference}]")
    ]


async def test_a_serious_injury_runs_the_nsw_clocks_warns_breaches_and_escalates(system):
    case = await serious_injury(system)
    case_id, reference = case["case_id"], case["reference"]

    async def all_started() -> dict[str, dict[str, Any]] | None:
        found = await clocks_of(system, case_id)
        return found if len(found) == 4 else None

    clocks = await eventually(all_started, "four clocks on the case")
    assert set(clocks) == {
        "nsw/insurer_notification",
        "nsw/insurer_contact",
        "nsw/provisional_payments",
        "conference_rules/conference_planning",
    }
    contact = clocks["nsw/insurer_contact"]
    assert contact["citation"].startswith("SIRA Standards of practice")
    assert contact["basis"] == "working" and contact["time_zone"] == "Australia/Sydney"
    assert re.search(r"\d{2}:\d{2} AE[DS]T$", contact["due_local"]), contact["due_local"]

    breached = await clock_state(system, case_id, "nsw/insurer_notification", "breached")
    assert breached["escalated_to_name"]

    def clock_mails() -> list[tuple[str, str, str]]:
        return [m for m in mails(system, reference) if "Statutory deadline" in m[1]]

    async def three_mails() -> list[tuple[str, str, str]] | None:
        found = clock_mails()
        return found if len(found) >= 3 else None

    sent = await eventually(three_mails, "due soon, breach and escalation mails")
    subjects = sorted(subject for _, subject, _ in sent)
    assert subjects == [
        f"[{reference}] Statutory deadline due soon",
        f"[{reference}] Statutory deadline missed",
        f"[{reference}] Statutory deadline missed: escalated to you",
    ]
    for _, _, body in sent:
        assert "Notify the insurer of the workplace injury" in body
        assert "DESC-MARKER" not in body and "wrist" not in body
        assert f"/portal/cases/{case_id}" in body
    escalated_to = next(to for to, subject, _ in sent if subject.endswith("escalated to you"))
    owner_to = next(to for to, subject, _ in sent if subject.endswith("due soon"))
    assert escalated_to != owner_to


@needs_chromium
async def test_staff_record_a_clock_as_done_on_the_case_page(system, tmp_path):
    from playwright.async_api import async_playwright

    case = await serious_injury(system)
    case_id = case["case_id"]
    await eventually(lambda: _has(system, case_id, "nsw/insurer_contact"), "clocks projected")
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
        await page.wait_for_url(re.compile(r"/portal/(cases|work-queue)$"))

        await page.goto(f"/portal/cases/{case_id}")
        block = page.locator("#statutory-clocks")
        assert await block.get_by_role("heading", name="Statutory clocks").count() == 1
        row = block.locator("#statutory-clock-nsw-insurer_contact")
        assert (
            "SIRA Standards of practice"
            in await row.locator(".statutory-clock-citation").inner_text()
        )
        assert await row.locator(".statutory-clock-state").inner_text() in {"Running", "Due soon"}
        actions = block.locator("#statutory-clock-actions-nsw-insurer_contact")
        await actions.locator("summary").click()
        await page.locator("#clock-nsw-insurer_contact_note").fill("Phoned the worker")
        label = "Record as done: Insurer contacts the worker, the employer and the treating doctor"
        await page.get_by_role("button", name=label).click()
        await page.wait_for_url("**?done=statutory_clock#statutory-clocks")

        async def shows_met() -> bool:
            await page.reload()
            return (await row.locator(".statutory-clock-state").inner_text()).startswith("Met")

        await eventually(shows_met, "the clock met on the page")
        assert "recorded by staff" in await row.locator(".statutory-clock-state").inner_text()
        assert await page.get_by_role("button", name=label).count() == 0
        await block.screenshot(path=str(tmp_path / "statutory-clocks.png"))
        await browser.close()
