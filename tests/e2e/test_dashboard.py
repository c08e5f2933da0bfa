"""The HR director's dashboard on the real system, in Chromium from the sign-in page.

Cases are raised through the doors (the JSON API for employees, phone calls logged by an
agent) and routed by the real routing service; the dashboard's figures are then read in
the browser and compared with what the test raised: counts, small-cell suppression
("fewer than 5"), a restricted case counted but never named, the CSV download, the
drill-down into the work queue, and who may open the page at all.

The screenshot goes to tmp_path; the README's (docs/screenshots/dashboard.png, realistic
volumes) is taken by tests/e2e/test_dashboard_history.py.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from services.intake.domain.case import CATEGORIES
from tests.e2e.test_agent_actions import AS_AGENT, AS_MANAGER, client, until
from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, PNG_MAGIC, needs_chromium
from tests.support.auth import auth_headers
from tests.support.infra import own_database
from tests.support.system import running_system

THRESHOLD = 5  # ANALYTICS_MIN_CELL's default
RUN = uuid.uuid4().hex[:6]
# (category, door, how many): payroll and leave shown, grievance and harassment (the
# restricted one) fewer than 5; two hidden rows, so no secondary suppression applies.
PLAN: tuple[tuple[str, str, int], ...] = (
    ("payroll_query", "api", 7),
    ("leave_query", "phone", 5),
    ("grievance", "api", 2),
    ("harassment", "api", 1),
)
SUBJECTS = {
    "payroll_query": "Overtime missing from my payslip",
    "leave_query": "How many days of leave do I have left?",
    "grievance": "Unfair shift allocation",
    "harassment": "Comments from a colleague",
}


def reporter(number: int) -> dict[str, str]:
    return {
        "employee_id": f"E-84{number:02d}",
        "name": f"Reporter {number}",
        "email": f"reporter{number}.{RUN}@example.com",
    }


@pytest.fixture(scope="module")
def database_url(database_url):
    """The dashboard counts every case in its database: this module's own."""
    with own_database("dashboard") as url:
        yield url


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "dashboard") as running:
        yield running


async def raise_one(system, category: str, door: str, number: int) -> str:
    person = reporter(number)
    if door == "phone":
        call = {
            "caller": person,
            "called_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
            "duration_seconds": 300,
            "summary": f"{SUBJECTS[category]} (call {number})",
            "category": category,
        }
        async with client(system, AS_AGENT) as agent:
            accepted = await agent.post("/api/v1/phone-calls", json=call)
    else:
        body = {
            "subject": SUBJECTS[category],
            "description": f"{SUBJECTS[category]}: details of case {number}.",
            "reporter": person,
            "category": category,
        }
        headers = auth_headers(f"u-{number}", "employee", employee_id=person["employee_id"])
        async with client(system, headers) as employee:
            accepted = await employee.post("/api/v1/cases", json=body)
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["case_id"])


@pytest.fixture(scope="module")
async def raised(system) -> list[dict[str, Any]]:
    """Every case of PLAN, routed and assigned (the manager's view of each)."""
    ids = []
    number = 0
    for category, door, how_many in PLAN:
        for _ in range(how_many):
            number += 1
            ids.append(await raise_one(system, category, door, number))
    views = [
        await until(system, case_id, lambda v: v["status"] == "assigned", headers=AS_MANAGER)
        for case_id in ids
    ]
    # The figures come from intake's analytics projection: wait until it holds them all.
    async with client(system, AS_MANAGER) as manager:
        for _ in range(150):
            answer = await manager.get("/api/v1/analytics/cases", params={"group_by": "category"})
            assert answer.status_code == 200, answer.text
            if answer.json()["total"]["count"] == len(ids):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"the projection never counted {len(ids)}: {answer.text}")
    return views


def shown(count: int) -> str:
    """A count as the page shows it (primary suppression only: see PLAN)."""
    return f"fewer than {THRESHOLD}" if 0 < count < THRESHOLD else f"{count:,}"


async def table_rows(section) -> dict[str, str]:
    """{row heading: cases} of the data table in a figure's section."""
    rows = {}
    for row in await section.locator("table tbody tr").all():
        cells = await row.locator("th, td").all_inner_texts()
        if len(cells) == 2:
            rows[cells[0].strip()] = cells[1].strip()
    return rows


async def signed_in(browser, system, who: str):
    context = await browser.new_context(
        base_url=system.url("intake"), java_script_enabled=False, accept_downloads=True
    )
    page = await context.new_page()
    await page.goto("/portal/sign-in")
    await page.get_by_label(re.compile(who)).check()
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/portal/(cases|work-queue)$"))
    return context, page


@pytest.fixture(scope="module")
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


@needs_chromium
async def test_an_hr_manager_reads_the_dashboard(system, raised, browser, tmp_path) -> None:
    by_category = Counter(view["category"] for view in raised)
    by_channel = Counter(view["channel"] for view in raised)
    restricted = [v for v in raised if v["category"] == "harassment"]
    assert len(restricted) == 1 and restricted[0]["sensitivity"] == "restricted"

    context, page = await signed_in(browser, system, "Victor Almeida")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    await page.wait_for_url("**/portal/dashboard")
    assert await page.get_by_role("heading", level=1).inner_text() == "Dashboard"

    # Headline: every case raised, the restricted one included; all of them still open.
    headlines = page.get_by_role("definition")
    texts = await headlines.all_inner_texts()
    assert texts[0] == str(len(raised)) and texts[1].startswith(str(len(raised)))

    categories = await table_rows(page.locator("section#volume_by_category"))
    for key, label in CATEGORIES.items():
        assert categories[label] == shown(by_category[key]), label
    assert categories["Harassment complaint"] == "fewer than 5"
    assert categories["Grievance"] == "fewer than 5"
    assert categories["Payroll query"] == "7"
    channels = await table_rows(page.locator("section#volume_by_channel"))
    assert channels["API"] == shown(by_channel["api"]) == "10"
    assert channels["Phone"] == shown(by_channel["phone"]) == "5"
    assert channels["Email"] == channels["Portal"] == "0"
    # The charts are the same figures: a suppressed bar says so and never its count.
    chart = page.locator("section#volume_by_category svg[role=img]")
    assert await chart.count() == 1
    description = await chart.locator("desc").text_content() or ""
    assert "Harassment complaint: fewer than 5" in description
    assert "Payroll query: 7" in description
    assert (
        "Suppression" not in description
        and "fewer than 5" in await page.locator("#suppression-note").inner_text()
    )

    # No case is named anywhere: not the restricted one, not any other.
    html = await page.content()
    for view in raised:
        assert view["reference"] not in html and view["case_id"] not in html
    assert restricted[0]["subject"] not in html

    # The CSV of a table carries the same numbers as the table.
    section = page.locator("section#volume_by_category")
    async with page.expect_download() as waiting:
        await section.get_by_role("link", name=re.compile("Download CSV")).click()
    download = await waiting.value
    assert download.suggested_filename.startswith("volume-by-category-")
    saved = tmp_path / "volume-by-category.csv"
    await download.save_as(str(saved))
    rows = list(csv.reader(io.StringIO(saved.read_text("utf-8"))))
    assert rows[0] == ["category", "label", "cases"]
    from_csv = {label: cases for _key, label, cases in rows[1:-1]}
    assert from_csv == categories
    assert rows[-1] == ["total", "Total", str(len(raised))]

    shot = tmp_path / "dashboard.png"
    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(PNG_MAGIC)

    # Drill-down: the grievance row opens the work queue with its filters, and the queue
    # lists what its own rules give this person for those filters, nothing else.
    await section.get_by_role("link", name="Grievance").click()
    await page.wait_for_url(re.compile(r"/portal/work-queue\?"))
    params = parse_qsl(urlsplit(page.url).query)
    assert ("category", "grievance") in params and ("scope", "all") in params
    listed = {
        (await row.locator("td").first.inner_text()).strip()
        for row in await page.locator("table tbody tr").all()
    }
    async with client(system, AS_MANAGER) as manager:
        queue = await manager.get("/api/v1/work-queue", params=[*params, ("limit", "100")])
    assert queue.status_code == 200, queue.text
    assert listed == {item["reference"] for item in queue.json()["items"]}
    assert listed == {v["reference"] for v in raised if v["category"] == "grievance"}
    await context.close()


@needs_chromium
async def test_a_drill_down_lists_only_what_the_queue_shows_its_reader(
    system, raised, browser
) -> None:
    """The harassment row's link: the manager's queue lists the restricted case, the same
    link opened by an agent lists nothing (the case is not hers)."""
    context, page = await signed_in(browser, system, "Victor Almeida")
    await page.goto("/portal/dashboard")
    link = page.locator("section#volume_by_category").get_by_role(
        "link", name="Harassment complaint"
    )
    href = await link.get_attribute("href")
    assert href and href.startswith("/portal/work-queue?")
    restricted = next(v for v in raised if v["category"] == "harassment")
    await link.click()  # the manager reads restricted cases: the queue lists it for him
    await page.wait_for_url(re.compile(r"/portal/work-queue\?"))
    assert await page.get_by_role("row").filter(has_text=restricted["reference"]).count() == 1
    await context.close()
    context, page = await signed_in(browser, system, "Priya Shah")
    await page.goto(href)
    assert restricted["reference"] not in await page.content()
    assert await page.locator("#queue-empty").count() == 1
    await context.close()


@needs_chromium
@pytest.mark.parametrize("who", ["Sam Rivera", "Priya Shah"])
async def test_employees_and_agents_get_403_and_no_link(system, raised, browser, who) -> None:
    context, page = await signed_in(browser, system, who)
    nav = page.get_by_role("navigation", name="Main")
    assert await nav.get_by_role("link", name="Dashboard").count() == 0
    answer = await page.goto("/portal/dashboard")
    assert answer is not None and answer.status == 403
    assert "for HR managers and administrators" in await page.get_by_role("alert").inner_text()
    csv_answer = await page.goto("/portal/dashboard/volume_by_category.csv")
    assert csv_answer is not None and csv_answer.status == 403
    await context.close()


async def test_signed_out_is_sent_to_sign_in(system) -> None:
    async with client(system) as anonymous:
        answer = await anonymous.get("/portal/dashboard?from=2026-01-01", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/portal/sign-in?next=")


@needs_chromium
async def test_a_bad_field_is_named_on_the_form(system, raised, browser) -> None:
    context, page = await signed_in(browser, system, "Victor Almeida")
    for query, field, words in (
        ("from=yesterday", "from", "as YYYY-MM-DD"),
        ("from=2026-03-02&to=2026-03-01", "to", "must not be before from"),
        ("from=2000-01-01", "from", "at most"),
        ("category=astrology", "category", "unknown category"),
        ("team=nobody", "team", "not a team"),
        ("colour=red", "colour", "not a field"),
    ):
        answer = await page.goto(f"/portal/dashboard?{query}")
        assert answer is not None and answer.status == 422, query
        alert = await page.get_by_role("alert").inner_text()
        assert field in alert and words in alert, (query, alert)
    csv_answer = await page.request.get("/portal/dashboard/volume_by_channel.csv?to=someday")
    assert csv_answer.status == 422 and "to: " in await csv_answer.text()
    too_long = await page.request.get("/portal/dashboard/volume_by_channel.csv?from=2000-01-01")
    assert too_long.status == 422 and "from: " in await too_long.text()
    unknown = await page.request.get("/portal/dashboard/salaries.csv")
    assert unknown.status == 404
    await context.close()


async def test_an_administrator_reads_the_figures_without_links_to_a_queue_they_may_not_open(
    system, raised
) -> None:
    """admin may read the dashboard but not the work queue: the page gives them the figures
    and no drill-down link (a manager's page of the same period has them)."""
    async with client(system) as http:
        as_admin = auth_headers("ops-admin", "admin")
        admin_page = await http.get("/portal/dashboard", headers=as_admin)
        manager_page = await http.get("/portal/dashboard", headers=AS_MANAGER)
        queue = await http.get("/portal/work-queue", headers=as_admin)
    assert admin_page.status_code == 200, admin_page.text
    assert "Cases raised by category" in admin_page.text
    assert 'href="/portal/work-queue?' not in admin_page.text
    assert manager_page.status_code == 200
    assert 'href="/portal/work-queue?' in manager_page.text
    assert queue.status_code == 403
