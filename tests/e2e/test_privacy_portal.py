"""The privacy officers' door in the portal, in a real headless Chromium (no JavaScript),
and the erased-case rule from every door (README "Data-subject rights").

Nadia Karimi (PO-1001) signs in and lands on /portal/privacy; she places an erasure
request for an employee who raised a case and is told she cannot decide it; Omar Haddad
(PO-1002) approves it; the agent's case page shows the skeleton with [erased] and no
message form (a sentence says why); the reporter's API message gets 409 and their email
reply 550, nothing recorded. An access request's JSON export holds the person's case; a
legal hold is placed and released; an employee and an agent get 403 and no link.
"""

from __future__ import annotations

import asyncio
import json
import re
import smtplib
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.auth import auth_headers
from tests.support.process_flow import eventually
from tests.support.system import RunningSystem, running_system

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium missing")
AGENT = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
ERASED = "[erased]"


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "privacy-portal") as running:
        yield running


@pytest.fixture(scope="module")
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


async def call(
    system: RunningSystem, method: str, path: str, headers: dict[str, str], **kwargs: Any
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=15) as client:
        return await client.request(method, path, headers=headers, **kwargs)


async def reporter_with_case(system: RunningSystem, description: str) -> dict[str, Any]:
    """A fresh employee raises a case at the API; their details, headers, case id and
    reference once routed."""
    employee_id = f"E-{uuid.uuid4().int % 10**7:07d}"
    who = {
        "employee_id": employee_id,
        "name": "Ruth Ortega",
        "email": f"ruth-{uuid.uuid4().hex[:8]}@example.com",
    }
    headers = auth_headers(f"u-{employee_id}", "employee", employee_id=employee_id)
    body = {
        "subject": "My overtime was not paid",
        "description": description,
        "reporter": who,
        "category": "payroll_query",
    }
    accepted = await call(system, "POST", "/api/v1/cases", headers, json=body)
    assert accepted.status_code == 202, accepted.text
    case_id = accepted.json()["case_id"]

    async def routed() -> dict[str, Any] | None:
        view = (await call(system, "GET", f"/api/v1/cases/{case_id}", headers)).json()
        return view if view["status"] != "new" else None

    view = await eventually(routed, "case routed")
    return {**who, "headers": headers, "case_id": case_id, "reference": view["reference"]}


async def sign_in(browser: Any, system: RunningSystem, who: str, lands: str) -> tuple[Any, Any]:
    context = await browser.new_context(base_url=system.url("intake"), java_script_enabled=False)
    page = await context.new_page()
    await page.goto("/portal/sign-in")
    await page.get_by_label(re.compile(who)).check()
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(lands))
    return context, page


@needs_chromium
async def test_officers_erase_with_four_eyes_and_the_erased_case_takes_no_new_data(system, browser):
    reporter = await reporter_with_case(system, "Ruth's overtime in March, 12 hours")
    nadia, page = await sign_in(browser, system, "Nadia Karimi", r"/portal/privacy$")
    assert await page.locator("#nav-privacy").inner_text() == "Privacy"
    await page.fill("#erasure_employee_id", reporter["employee_id"])
    await page.fill("#erasure_reason", "Ruth asked to be forgotten (ticket 4711)")
    await page.get_by_role("button", name="Place erasure request").click()
    await page.wait_for_url(re.compile(r"done=erasure"))
    row = page.locator("#erasure-table tbody tr", has_text=reporter["employee_id"])
    assert "pending" in await row.inner_text()
    assert "by PO-1001" in await row.inner_text()
    # The four-eyes rule, said on the page; no decision form for her.
    said = await row.locator(".cannot-decide").inner_text()
    assert "You cannot decide this request" in said and "second privacy officer" in said
    assert await row.get_by_role("button", name="Record decision").count() == 0
    await nadia.close()

    omar, page = await sign_in(browser, system, "Omar Haddad", r"/portal/privacy$")
    row = page.locator("#erasure-table tbody tr", has_text=reporter["employee_id"])
    await row.get_by_label("Approve (erase)").check()
    await row.get_by_label("Reason").fill("No hold, no legal claim pending")
    await row.get_by_role("button", name="Record decision").click()
    await page.wait_for_url(re.compile(r"done=decided"))
    row = page.locator("#erasure-table tbody tr", has_text=reporter["employee_id"])
    text = await row.inner_text()
    assert "erased" in text and "approve by PO-1002" in text
    await omar.close()

    # The agent's case page: the skeleton, [erased], and no form to add new personal data.
    priya, page = await sign_in(browser, system, "Priya Shah", r"/portal/work-queue$")
    await page.goto(f"/portal/cases/{reporter['case_id']}")
    assert await page.locator("h1").inner_text() == f"{reporter['reference']}: {ERASED}"
    content = await page.content()
    assert "Ruth&#39;s overtime" not in content and "Ruth's overtime" not in content
    assert await page.get_by_label("Add a message").count() == 0
    # Nor a note or a file (staff's new personal data would outlive the erasure too); the
    # status form stays, so the case can still be closed.
    assert await page.locator("#note_body").count() == 0
    assert await page.locator("#documents_files").count() == 0
    assert await page.locator(f'form[action="/portal/cases/{reporter["case_id"]}/status"]').count()
    why = await page.locator("#erased-case").inner_text()
    assert "takes no new messages" in why and "erased on request" in why
    await priya.close()

    # The API: 409 naming why, for the reporter and for staff; nothing recorded.
    for headers in (reporter["headers"], AGENT):
        refused = await call(
            system,
            "POST",
            f"/api/v1/cases/{reporter['case_id']}/messages",
            headers,
            json={"body": "My new phone number is 555-0100"},
        )
        assert refused.status_code == 409, refused.text
        assert "erased" in refused.json()["detail"]
    # The email channel: the reporter's reply to the case is refused at the door.
    reply = EmailMessage()
    reply["From"] = f"Ruth Ortega <{reporter['email']}>"
    reply["To"] = "hr@example.com"
    reply["Subject"] = f"Re: [{reporter['reference']}] Your case"
    reply["Message-ID"] = f"<reply-{uuid.uuid4()}@example.com>"
    reply.set_content("Here is my new address: 12 Elm Street")
    with smtplib.SMTP("127.0.0.1", system.smtp_port, timeout=20) as smtp:
        smtp.ehlo()
        smtp.mail(reporter["email"])
        smtp.rcpt("hr@example.com")
        code, said_back = smtp.data(reply.as_bytes())
    assert code == 550 and b"erased" in said_back, said_back
    view = await call(system, "GET", f"/api/v1/cases/{reporter['case_id']}", AGENT)
    assert "555-0100" not in view.text and "Elm Street" not in view.text


@needs_chromium
async def test_access_export_download_and_a_legal_hold_placed_and_released(system, browser):
    person = await reporter_with_case(system, "Ruth's pay slip for April is missing")
    nadia, page = await sign_in(browser, system, "Nadia Karimi", r"/portal/privacy$")
    await page.fill("#access_email", person["email"])
    await page.get_by_role("button", name="Place access request").click()
    await page.wait_for_url(re.compile(r"done=access"))
    row = page.locator("#access-table tbody tr", has_text=person["email"])
    async with page.expect_download() as downloading:
        await row.get_by_role("link", name="JSON export").click()
    download = await downloading.value
    saved = await download.path()
    export = json.loads(await asyncio.to_thread(Path(saved).read_text, encoding="utf-8"))
    assert person["reference"] in json.dumps(export)
    assert "pay slip for April" in json.dumps(export)
    assert await row.get_by_role("link", name="Readable export (HTML)").count() == 1

    # A legal hold on the case, by its reference; then released.
    await page.get_by_role("radio", name="A case", exact=True).check()
    await page.fill("#hold_case_reference", person["reference"])
    await page.fill("#hold_reason", "Litigation expected: tribunal claim 22-118")
    await page.get_by_role("button", name="Place legal hold").click()
    await page.wait_for_url(re.compile(r"done=hold"))
    hold = page.locator("#hold-table tbody tr", has_text="tribunal claim 22-118")
    assert f"Case {person['reference']}" in await hold.inner_text()
    assert "Active" in await hold.inner_text()
    await hold.get_by_label("Reason for release").fill("The claim was withdrawn")
    await hold.get_by_role("button", name="Release hold").click()
    await page.wait_for_url(re.compile(r"done=released"))
    hold = page.locator("#hold-table tbody tr", has_text="tribunal claim 22-118")
    assert "Released" in await hold.inner_text()
    assert "The claim was withdrawn" in await hold.inner_text()
    # A reference that is not a case: said next to the field.
    await page.get_by_role("radio", name="A case", exact=True).check()
    await page.fill("#hold_case_reference", "HR-1999-000000")
    await page.fill("#hold_reason", "A typo")
    await page.get_by_role("button", name="Place legal hold").click()
    assert "no case with the reference HR-1999-000000" in await page.locator("main").inner_text()
    await nadia.close()


@needs_chromium
async def test_an_employee_and_an_agent_get_403_and_no_link(system, browser):
    for who, lands in (("Sam Rivera", r"/portal/cases$"), ("Priya Shah", r"/portal/work-queue$")):
        context, page = await sign_in(browser, system, who, lands)
        assert await page.locator("#nav-privacy").count() == 0
        assert await page.get_by_role("link", name="Privacy").count() == 0
        answer = await page.goto("/portal/privacy")
        assert answer is not None and answer.status == 403
        assert "privacy officers" in await page.locator("main").inner_text()
        await context.close()


@needs_chromium
async def test_an_hr_manager_gets_the_legal_holds_part_only(system, browser):
    context, page = await sign_in(browser, system, "Victor Almeida", r"/portal/work-queue$")
    link = page.locator("#nav-privacy")
    assert await link.inner_text() == "Legal holds"
    await link.click()
    await page.wait_for_url(re.compile(r"/portal/privacy"))
    assert await page.get_by_role("button", name="Place legal hold").count() == 1
    assert await page.locator("#erasure-table").count() == 0
    assert await page.get_by_role("button", name="Place erasure request").count() == 0
    assert await page.get_by_role("button", name="Place access request").count() == 0
    await context.close()
