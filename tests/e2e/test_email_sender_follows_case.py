"""The sender of a case opened by email follows it in the portal (issue: the link in the
acknowledgement answered "Case not found").

Mail goes in over SMTP to intake's running SMTP port; the acknowledgement comes out of the
mail sink; its link is followed in Chromium, through sign-in as the sender (Sam Rivera,
whose verified address is the sender's): the case page shows the case and "My cases" lists
it, and a message added there is the reporter's. Another employee following the same link
gets "Case not found".
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import uuid
from email.policy import SMTP

import pytest

from services.intake.entrypoints.send_sample_email import build_sample
from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.e2e.test_reporter_updates import LINK, body_of, mail_with
from tests.support.infra import free_port
from tests.support.system import running_system

SENDER = "sam.rivera@example.com"  # Sam Rivera of the portal's demo sign-in
ACK = "We have received your case"


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    port = free_port()
    # Earlier modules on this worker's database mail HR from the same address (the sample
    # mail's default sender): the hourly acknowledgement limit would suppress this one.
    with running_system(
        database_url,
        rabbitmq_url,
        logs_dir / "email-sender",
        INTAKE_SMTP_PORT=str(port),
        ACKNOWLEDGEMENTS_PER_ADDRESS_PER_HOUR="1000",
    ) as running:
        running.smtp_port = port  # type: ignore[attr-defined]
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


def send(port: int, subject: str) -> str:
    message = build_sample(
        sender=SENDER,
        to="hr@example.com",
        subject=subject,
        body="My October overtime (12 hours) is missing from my payslip.",
    )
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
        smtp.ehlo()
        smtp.mail(SENDER)
        smtp.rcpt("hr@example.com")
        code, text = smtp.data(message.as_bytes(policy=SMTP))
    assert code == 250, text
    return text.decode()


async def sign_in_via(page, link: str, who: str) -> None:
    """Follow `link` signed out: sign-in as the demo identity `who`, back to the link."""
    await page.goto(link)
    await page.wait_for_url(re.compile(r"/portal/sign-in"))
    await page.get_by_label(re.compile(who)).check()
    await page.get_by_role("button", name="Sign in").click()


@needs_chromium
async def test_the_sender_follows_the_link_in_the_acknowledgement(
    system, browser, admin_pool, tmp_path
):
    subject = f"Overtime missing {uuid.uuid4().hex[:8]}"
    answer = await asyncio.to_thread(send, system.smtp_port, subject)
    reference = re.search(r"HR-\d{4}-\d{6}", answer)
    assert reference, answer
    ack = await mail_with(system, SENDER, ACK)
    assert reference.group(0) in str(ack["Subject"])
    [link] = [u for u in LINK.findall(body_of(ack)) if "/portal/cases/" in u]
    assert link.startswith(system.url("intake") + "/portal/cases/")
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()

    sam = await browser.new_context()
    page = await sam.new_page()
    await sign_in_via(page, link, "Sam Rivera")
    await page.wait_for_url(link)
    heading = await page.get_by_role("heading", level=1).inner_text()
    assert reference.group(0) in heading and "Case not found" not in heading
    assert subject in await page.content()
    await page.screenshot(path=str(artifacts / "sender-case.png"), full_page=True)
    await page.goto(system.url("intake") + "/portal/cases")
    listed = await page.content()
    assert reference.group(0) in listed
    assert "You have not raised any cases yet" not in listed
    # As the reporter of a portal case does: open it from "My cases" and add a message.
    row = page.get_by_role("row").filter(has_text=reference.group(0))
    await row.get_by_role("link", name=reference.group(0)).click()
    await page.get_by_label("Add a message").fill("My timesheet shows the 12 hours.")
    await page.get_by_role("button", name="Send message").click()
    await page.wait_for_url("**?sent=1#messages")
    sent = page.get_by_role("list").filter(has_text="My timesheet shows the 12 hours.")
    assert await sent.count() == 1
    role = await admin_pool.fetchval(
        "SELECT m.sender_role FROM intake.case_messages m JOIN intake.cases c USING (case_id)"
        " WHERE c.reference = $1 AND m.body = $2",
        reference.group(0),
        "My timesheet shows the 12 hours.",
    )
    assert role == "reporter"
    await sam.close()

    # Maria Lopez (another employee, another address): the same link is not hers.
    maria = await browser.new_context()
    page = await maria.new_page()
    await sign_in_via(page, link, "Maria Lopez")
    await page.wait_for_url(link)
    assert await page.get_by_role("heading", level=1).inner_text() == "Case not found"
    assert subject not in await page.content()
    await page.goto(system.url("intake") + "/portal/cases")
    assert reference.group(0) not in await page.content()
    await maria.close()
