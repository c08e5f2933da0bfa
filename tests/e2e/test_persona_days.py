"""A day in the workspace for each persona, in Debian's Chromium against the whole system.

Every test starts at the portal's sign-in page and only clicks and types, as a person would
(JavaScript off, like the other portal tests). Asynchronous effects (routing assigns,
applies a status change, audit records a read) are waited for by reloading the page until
it shows them. The tests run in order and share one system and a `day` dict:

1. the employee (Sam Rivera) raises a grievance naming his team lead, with a file;
2. the HR manager (Victor Almeida) finds it under "All I may see" and hands it to Priya;
3. the HR agent (Priya Shah) finds it in her queue by a word, works it and waits on Sam;
4. the employee reads HR's shared note and the status update, and replies;
5. the investigator (Helen Carter) sees only the harassment case routed to her, adds
   evidence, and cannot open the one routed to a colleague;
6. the auditor (Ines Duarte) reviews that harassment case in the audit console.

Routing's directory is the demo one (hrcase/demo_directory.csv), so respondents named on
the form resolve: naming one harassment investigator leaves the case to the other.
Screenshots go to each test's tmp_path/artifacts.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_portal import PNG_MAGIC, needs_chromium, sign_in
from tests.e2e.test_portal import browser as browser
from tests.support.directory import load_demo_directory
from tests.support.infra import own_database
from tests.support.system import running_system

# Seconds for an effect to travel intake -> routing -> intake (or -> audit) on a loaded
# two-core machine shared with other test runs.
DEADLINE = 90.0
CASE_URL = re.compile(r"/portal/cases/([0-9a-f-]{36})")
# One word no other case has, so a search finds exactly this run's grievance.
WORD = f"rota{uuid.uuid4().hex[:8]}"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
SHARED_NOTE = "We have asked the rota planner for the last three months of allocations."
INTERNAL_NOTE = "Jordan Blake's allocations look skewed; check with Workforce Planning."
WAIT_REASON = "Please send us the dates of the night shifts you were given."
REPLY = "The night shifts were on 3, 10, 17 and 24 October."
TASK = "Pull the October rota from Workforce Planning"


@pytest.fixture(scope="module")
def database_url(database_url):
    """A database of this module's own: who routing picks depends on every open case's load."""
    with own_database("persona_days") as url:
        yield url


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    load_demo_directory(database_url, rabbitmq_url)
    with running_system(database_url, rabbitmq_url, logs_dir / "persona-days") as running:
        yield running


@pytest.fixture(scope="module")
def day() -> dict[str, Any]:
    """What one persona leaves for the next: references, case pages, instants."""
    return {}


async def shoot(page: Any, tmp_path: Path, name: str) -> None:
    """A full-page screenshot into the test's artifacts, checked to be a real PNG."""
    folder = tmp_path / "artifacts"
    folder.mkdir(exist_ok=True)
    shot = folder / f"{name}.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(PNG_MAGIC) and shot.stat().st_size > 1000


async def reload_until(page: Any, check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Reload the page until `check()` holds, as a person would press F5."""
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the page never showed {what}: {page.url}")
        await asyncio.sleep(0.5)
        await page.reload()


async def text_of(page: Any, selector: str) -> str:
    """The text of the first element matching `selector`, or "" when there is none."""
    found = page.locator(selector)
    return str(await found.first.inner_text()) if await found.count() else ""


async def raise_in_portal(
    page: Any, *, subject: str, category: str, description: str, respondent: str
) -> tuple[str, str]:
    """Fill and send "Raise a case" as the signed-in employee; (reference, case page URL)."""
    await page.get_by_role("link", name="Raise a case").first.click()
    await page.get_by_label("Subject").fill(subject)
    await page.get_by_label("Category").select_option(category)
    await page.get_by_label("What happened?").fill(description)
    await page.get_by_label("Person 1: Name").fill(respondent)
    return await submitted(page)


async def submitted(page: Any) -> tuple[str, str]:
    await page.get_by_role("button", name="Submit").click()
    await page.wait_for_url(CASE_URL)
    heading = await page.get_by_role("heading", level=1).inner_text()
    reference = heading.split(":")[0]
    assert re.fullmatch(r"HR-\d{4}-\d{6,}", reference), heading
    assert await page.get_by_text("Your case was received. HR will be in touch.").count() == 1
    return reference, page.url.split("?")[0]


@needs_chromium
async def test_1_an_employee_raises_a_grievance_naming_a_respondent(system, browser, day, tmp_path):
    context, page = await sign_in(browser, system, "Sam Rivera")
    assert page.url.endswith("/portal/cases")
    await page.get_by_role("link", name="Raise a case").first.click()
    await page.get_by_label("Subject").fill("Unfair shift allocation by my team lead")
    await page.get_by_label("Category").select_option("grievance")
    await page.get_by_label("What happened?").fill(
        f"For three months I have been given every night shift while others get none ({WORD})."
    )
    await page.get_by_label("Person 1: Name").fill("Jordan Blake")
    rota = tmp_path / "my-shifts.txt"
    rota.write_text("Oct 3 night, Oct 10 night, Oct 17 night, Oct 24 night\n")
    await page.get_by_label("Attachments (optional)").set_input_files(str(rota))
    await shoot(page, tmp_path, "employee-1-raise-form")
    reference, case_url = await submitted(page)
    assert await page.get_by_role("link", name="my-shifts.txt").count() == 1
    await shoot(page, tmp_path, "employee-2-reference")

    # The case is listed under "My cases" with its reference.
    await page.get_by_role("link", name="My cases").click()
    row = page.get_by_role("row").filter(has_text=reference)
    assert "Unfair shift allocation" in await row.inner_text()
    day.update(grievance=reference, grievance_url=case_url)
    await context.close()


@needs_chromium
async def test_2_an_hr_manager_hands_the_case_to_an_agent(system, browser, day, tmp_path):
    reference = day["grievance"]
    context, page = await sign_in(browser, system, "Victor Almeida")
    assert await page.get_by_role("heading", level=1).inner_text() == "Work queue"
    await page.get_by_role("link", name=re.compile(r"^Unassigned")).click()
    await page.get_by_role("link", name=re.compile(r"^All I may see")).click()
    await page.get_by_label("Search").fill(reference)
    await page.get_by_role("button", name="Apply").click()
    await page.wait_for_url(re.compile(r"scope=all"))
    await reload_until(
        page,
        lambda: _has_row(page, reference),
        f"{reference} in the work queue",
    )
    await shoot(page, tmp_path, "manager-1-queue-all")
    await page.get_by_role("link", name=reference).click()
    await page.wait_for_url(CASE_URL)

    # Routing gave the grievance to Employee Relations; the manager hands it to Priya.
    async def has_handler() -> bool:
        return (await text_of(page, "#case-handler")) in ("Grace Okafor", "Lukas Meyer")

    await reload_until(page, has_handler, "the case handler Employee Relations chose")
    await page.get_by_label("Reassign to").fill("A-1001")
    await page.get_by_label("Reason for the reassignment").fill(
        "Priya covers Employee Relations this week"
    )
    await page.get_by_role("button", name="Request reassignment").click()
    await page.wait_for_url(re.compile(r"done=assignment"))

    async def handed_over() -> bool:
        history = await text_of(page, "#case-history")
        return (
            await text_of(page, "#case-handler")
        ) == "Priya Shah" and "Assigned to Priya Shah" in history

    await reload_until(page, handed_over, "Priya Shah as the case handler, in the history")
    history = await page.locator("#case-history").inner_text()
    assert "Victor Almeida" in history  # who asked for it, by name
    assert "A-1001" not in history  # people by name, not by id
    await shoot(page, tmp_path, "manager-2-reassigned")
    await context.close()


async def _has_row(page: Any, reference: str) -> bool:
    return bool(await page.get_by_role("row").filter(has_text=reference).count() == 1)


@needs_chromium
async def test_3_an_hr_agent_works_the_case_from_the_queue(system, browser, day, tmp_path):
    reference = day["grievance"]
    context, page = await sign_in(browser, system, "Priya Shah")
    assert page.url.endswith("/portal/work-queue")
    # "Mine" is the default scope: the case the manager handed over is there.
    await reload_until(page, lambda: _has_row(page, reference), f"{reference} under Mine")
    await shoot(page, tmp_path, "agent-1-my-queue")
    await page.get_by_label("Search").fill(WORD)
    await page.get_by_role("button", name="Apply").click()
    await page.wait_for_url(re.compile(f"q={WORD}"))
    assert await page.get_by_role("row").count() == 2  # the header and the one case
    await page.get_by_role("link", name=reference).click()
    await page.wait_for_url(CASE_URL)

    # Who raised it, whom it is about, and the history with people by name.
    assert await page.locator("#reporter-name").inner_text() == "Sam Rivera"
    assert await page.locator("#reporter-employee-id").inner_text() == "E-7001"
    assert "Jordan Blake" in await page.locator("#respondents-list").inner_text()
    history = await page.locator("#case-history").inner_text()
    assert "Sam Rivera" in history and "Assigned to Priya Shah" in history

    await page.get_by_label("Add a note").fill(SHARED_NOTE)
    await page.get_by_label(re.compile("Show this note to the employee")).check()
    await page.get_by_role("button", name="Add note").click()
    await page.wait_for_url(re.compile(r"done=note"))
    await page.get_by_label("Add a note").fill(INTERNAL_NOTE)
    await page.get_by_role("button", name="Add note").click()
    await page.wait_for_url(re.compile(r"done=note"))
    notes = await page.locator("ol.notes").inner_text()
    assert SHARED_NOTE in notes and INTERNAL_NOTE in notes
    shared = page.locator("ol.notes li").filter(has_text=SHARED_NOTE)
    assert "Shared with the employee" in await shared.inner_text()
    internal = page.locator("ol.notes li").filter(has_text=INTERNAL_NOTE)
    assert "Internal note" in await internal.inner_text()

    # A task for herself, done once she has it.
    await page.get_by_label("Task", exact=True).fill(TASK)
    await page.get_by_label(re.compile("^Assignee")).fill("A-1001")
    await page.get_by_label("Due in working hours").fill("4")
    await page.get_by_role("button", name="Add task").click()
    await page.wait_for_url(re.compile(r"done=task"))
    mark_done = page.get_by_role("button", name=f"Mark done: {TASK}")

    async def task_open() -> bool:
        return bool(await mark_done.count() == 1)

    await reload_until(page, task_open, "the task open, with its Mark done button")
    row = page.locator("tr.task").filter(has_text=TASK)
    assert "Priya Shah" in await row.inner_text()
    await shoot(page, tmp_path, "agent-2-notes-and-task")
    await mark_done.click()

    async def task_done() -> bool:
        return "Done" in await text_of(page, f"tr.task:has-text('{TASK}') .task-status")

    await reload_until(page, task_done, "the task done")

    # Waiting on the employee, with what HR needs from them.
    await page.get_by_label("Change status").select_option("waiting_on_employee")
    await page.locator("#status_reason").fill(WAIT_REASON)
    await page.get_by_role("button", name="Request status change").click()
    await page.wait_for_url(re.compile(r"done=status"))

    async def waiting() -> bool:
        return (await text_of(page, "#case-status")).startswith("Waiting on the employee")

    await reload_until(page, waiting, "the case waiting on the employee")
    assert WAIT_REASON in await page.locator("ol.status-updates").inner_text()
    await shoot(page, tmp_path, "agent-3-waiting-on-employee")
    await context.close()


@needs_chromium
async def test_4_the_employee_reads_hrs_note_and_replies(system, browser, day, tmp_path):
    reference = day["grievance"]
    context, page = await sign_in(browser, system, "Sam Rivera")
    await (
        page.get_by_role("row")
        .filter(has_text=reference)
        .get_by_role("link", name=reference)
        .click()
    )
    await page.wait_for_url(CASE_URL)
    assert await page.locator("#case-status").inner_text() == "Waiting for your reply"
    notes = await page.locator("ol.notes").inner_text()
    assert SHARED_NOTE in notes
    content = await page.content()
    assert INTERNAL_NOTE not in content and TASK not in content
    updates = await page.locator("ol.status-updates").inner_text()
    assert "We need something from you" in updates and f"What we need: {WAIT_REASON}" in updates
    await shoot(page, tmp_path, "employee-3-hr-update")

    await page.get_by_label("Add a message").fill(REPLY)
    await page.get_by_role("button", name="Send message").click()
    await page.wait_for_url("**?sent=1#messages")
    assert await page.get_by_text("Your message was added to the case.").count() == 1
    assert await page.locator("ol.messages li").filter(has_text=REPLY).count() == 1

    # The reply is the answer HR waited for: routing takes the case back in progress.
    async def back_in_progress() -> bool:
        return (await text_of(page, "#case-status")) == "In progress"

    await reload_until(page, back_in_progress, "the case back in progress after the reply")
    await shoot(page, tmp_path, "employee-4-replied")
    await context.close()


@needs_chromium
async def test_5_an_investigator_sees_only_her_restricted_cases(system, browser, day, tmp_path):
    # Maria names Mei Tanaka, so the case goes to the other harassment investigator, Helen;
    # Alex names Helen, so his goes to Mei.
    context, page = await sign_in(browser, system, "Maria Lopez")
    mine, mine_url = await raise_in_portal(
        page,
        subject="Comments about my appearance",
        category="harassment",
        description="A colleague keeps making inappropriate comments about how I look.",
        respondent="Mei Tanaka",
    )
    await context.close()
    context, page = await sign_in(browser, system, "Alex Chen")
    theirs, theirs_url = await raise_in_portal(
        page,
        subject="Unwanted messages after hours",
        category="harassment",
        description="Someone in the investigations team keeps messaging me late at night.",
        respondent="Helen Carter",
    )

    async def with_mei() -> bool:
        return (await text_of(page, "#case-handler")) == "Mei Tanaka"

    await reload_until(page, with_mei, "Mei Tanaka handling Alex's case")
    await context.close()

    context, page = await sign_in(browser, system, "Helen Carter")
    assert page.url.endswith("/portal/work-queue")
    await reload_until(page, lambda: _has_row(page, mine), f"{mine} in Helen's queue")
    await page.get_by_role("link", name=re.compile(r"^All I may see")).click()
    await page.wait_for_url(re.compile(r"scope=all"))
    assert await _has_row(page, mine)
    assert await page.get_by_role("row").filter(has_text=theirs).count() == 0
    assert await page.get_by_role("row").filter(has_text=day["grievance"]).count() == 1
    await shoot(page, tmp_path, "investigator-1-queue")

    await page.get_by_role("link", name=mine).click()
    await page.wait_for_url(mine_url)
    assert await page.locator("#case-handler").inner_text() == "Helen Carter"
    # The instant before her evidence, for the auditor (the console takes whole seconds).
    await asyncio.sleep(1.1)
    day["before_evidence"] = datetime.now(UTC)
    await asyncio.sleep(1.1)
    statement = tmp_path / "witness-statement.pdf"
    statement.write_bytes(PDF)
    await page.get_by_label(re.compile("^Add documents")).set_input_files(str(statement))
    await page.get_by_label("Description").fill("Statement of a witness to the comments")
    await page.get_by_label(re.compile(r"^\s*Evidence")).check()
    await page.get_by_role("button", name="Upload documents").click()
    await page.wait_for_url(mine_url + "**")
    row = page.locator("#documents-table tr").filter(has_text="witness-statement.pdf")
    await reload_until(page, lambda: _count_is(row, 1), "the evidence in the documents")
    kept = await row.inner_text()
    assert "Evidence" in kept and "application/pdf" in kept
    await shoot(page, tmp_path, "investigator-2-evidence")

    # A restricted case routed to a colleague does not exist for her.
    response = await page.goto(theirs_url)
    assert response is not None and response.status == 404
    assert await page.get_by_role("heading", level=1).inner_text() == "Case not found"
    assert "Unwanted messages" not in await page.content()
    await shoot(page, tmp_path, "investigator-3-other-case-404")
    day.update(restricted=mine, restricted_url=mine_url)
    await context.close()


async def _count_is(locator: Any, count: int) -> bool:
    return bool(await locator.count() == count)


@needs_chromium
async def test_6_an_auditor_reviews_the_restricted_case(system, browser, day, tmp_path):
    reference, case_id = day["restricted"], CASE_URL.search(day["restricted_url"]).group(1)
    console = f"{system.url('audit')}/audit/console/"
    context, page = await sign_in(browser, system, "Ines Duarte")
    await page.get_by_role("link", name="Audit console").click()
    await page.wait_for_url(console)
    await page.get_by_label("Case reference or case id").fill(reference)
    await page.get_by_role("button", name="Find case").click()
    await page.wait_for_url(f"{console}cases/{case_id}")
    assert reference in await page.get_by_role("heading", level=1).inner_text()

    timeline = page.get_by_role("table", name="Every event of the case, in chain order")
    access = page.get_by_role("table", name=re.compile("Who read or exported"))

    async def caught_up() -> bool:
        events, reads = await timeline.inner_text(), await access.inner_text()
        return "case.document_added" in events and "A-3001" in reads

    await reload_until(page, caught_up, "Helen's evidence and her read in the audit log")
    events = await timeline.inner_text()
    for event_type in ("case.submitted", "case.routed", "case.assigned"):
        assert event_type in events
    helen = access.get_by_role("row").filter(has_text="A-3001")
    assert "investigator" in await helen.first.inner_text()
    assert (await page.get_by_role("status").inner_text()).startswith("Verified")
    await shoot(page, tmp_path, "auditor-1-timeline-and-access-log")

    # The state just before the evidence came in: no documents yet.
    await page.get_by_label("State at an instant (UTC)").fill(
        day["before_evidence"].strftime("%Y-%m-%dT%H:%M:%S")
    )
    await page.get_by_role("button", name="Show state at this instant").click()
    then = await page.get_by_role("table", name=re.compile("^At ")).inner_text()
    assert re.search(r"Messages / notes / documents\s+0 / 0 / 0", then), then
    now = await page.get_by_role("table", name=re.compile("^Now")).inner_text()
    assert re.search(r"Messages / notes / documents\s+0 / 0 / 1", now), now
    await shoot(page, tmp_path, "auditor-2-state-at-an-instant")

    async with page.expect_download() as downloading:
        await page.get_by_role("button", name="Download case file (HTML)").click()
    download = await downloading.value
    assert download.suggested_filename == f"case-file-{reference}.html"
    saved = tmp_path / "artifacts" / download.suggested_filename
    await download.save_as(str(saved))
    case_file = saved.read_text(encoding="utf-8")
    assert "inappropriate comments about how I look" in case_file
    assert "witness-statement.pdf" in case_file
    await context.close()
