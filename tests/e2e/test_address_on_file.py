"""The reporter's address is the one on file, not one typed into a form (issue 10).

Against the running system and its mail sink: notifications keeps each employee's current
address from the HR directory feed (`directory.employee_updated`, published here as the
`directory` producer would) and mails the reporter there; an address typed at submission
is only the fallback for an employee the directory does not know. An employee raising a
case for themselves through the API cannot name another address (422 naming
`reporter.email`); the portal form shows the address on the HR record read-only.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from shared.envelope import Actor
from shared.events import DirectoryEmployeeUpdated, make_event
from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.e2e.test_reporter_updates import act, eventually, mail_with, until
from tests.support.auth import auth_headers
from tests.support.bus import publish_envelope
from tests.support.system import RunningSystem, running_system

AS_AGENT = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
ACK = "We have received your case"


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "address-on-file") as running:
        yield running


def fresh_employee() -> str:
    return f"E-{uuid.uuid4().int % 10**6:06d}"


def address(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


async def directory_says(amqp, admin_pool: asyncpg.Pool, employee_id: str, email: str) -> None:
    """Publish the HR system's record of the employee and wait until notifications has it."""
    update = DirectoryEmployeeUpdated(employee_id=employee_id, name="Rae Porter", email=email)
    envelope = make_event(
        update, producer="directory", actor=Actor(type="system", id="hr-feed"), case_id=None
    )
    await publish_envelope(amqp, envelope)

    async def kept() -> bool:
        value = await admin_pool.fetchval(
            "SELECT email FROM notifications.employee_addresses WHERE employee_id = $1",
            employee_id,
        )
        return bool(value == email)

    await eventually(kept, what=f"notifications to keep {email} for {employee_id}")


async def submit(system: RunningSystem, headers: dict[str, str], reporter: dict[str, str]):
    body = {
        "subject": "Payslip is missing my overtime",
        "description": "My overtime from October is not on my November payslip.",
        "reporter": reporter,
        "category": "payroll_query",
    }
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as c:
        return await c.post("/api/v1/cases", json=body, headers=headers)


async def test_a_directory_address_change_moves_the_next_mail(system, amqp, admin_pool):
    employee_id = fresh_employee()
    typed, old, new = address("typed"), address("old"), address("new")
    await directory_says(amqp, admin_pool, employee_id, old)
    # A token without an email claim (a scripted client): the typed address is accepted and
    # kept as given, but mail goes to the directory's.
    headers = auth_headers(f"u-{employee_id}", "employee", employee_id=employee_id)
    accepted = await submit(
        system, headers, {"employee_id": employee_id, "name": "Rae Porter", "email": typed}
    )
    assert accepted.status_code == 202, accepted.text
    case = {"case_id": accepted.json()["case_id"], "reference": accepted.json()["reference"]}
    ack = await mail_with(system, old, ACK)
    assert case["reference"] in str(ack["Subject"])
    await until(system, case["case_id"], headers, lambda v: v["status"] == "assigned")

    await directory_says(amqp, admin_pool, employee_id, new)
    shared = await act(
        system, AS_AGENT, case["case_id"], "notes", {"body": "Fixed.", "internal": False}
    )
    assert shared.status_code == 202, shared.text
    update = await mail_with(system, new, "HR has shared an update")
    assert case["reference"] in str(update["Subject"])
    assert [str(m["Subject"]) for m in system.mail.messages_to(old)] == [str(ack["Subject"])]
    assert system.mail.messages_to(typed) == []


async def test_a_phone_call_with_a_mistyped_address_mails_the_directory_address(
    system, amqp, admin_pool
):
    employee_id = fresh_employee()
    on_file, wrong = address("onfile"), address("mistyped")
    await directory_says(amqp, admin_pool, employee_id, on_file)
    call = {
        "caller": {"employee_id": employee_id, "name": "Rae Porter", "email": wrong},
        "called_at": (datetime.now(UTC) - timedelta(minutes=20)).isoformat(),
        "duration_seconds": 300,
        "summary": "Caller says the overtime for October is missing from the payslip.",
        "category": "payroll_query",
    }
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as c:
        accepted = await c.post("/api/v1/phone-calls", json=call, headers=AS_AGENT)
    assert accepted.status_code == 202, accepted.text
    case_id, reference = accepted.json()["case_id"], accepted.json()["reference"]
    ack = await mail_with(system, on_file, ACK)
    assert reference in str(ack["Subject"])
    await until(system, case_id, AS_AGENT, lambda v: v["status"] == "assigned")
    message = await act(system, AS_AGENT, case_id, "messages", {"body": "Call me back?"})
    assert message.status_code == 201, message.text
    await mail_with(system, on_file, "HR has written to you")
    assert system.mail.messages_to(wrong) == []
    # What the agent typed is kept as given on the case (staff see it).
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as c:
        view = (await c.get(f"/api/v1/cases/{case_id}", headers=AS_AGENT)).json()
    assert view["reporter"]["email"] == wrong


async def test_an_employee_cannot_name_another_address_through_the_api(system):
    employee_id = fresh_employee()
    mine = address("mine")
    headers = auth_headers(f"u-{employee_id}", "employee", employee_id=employee_id, email=mine)
    person = {"employee_id": employee_id, "name": "Rae Porter", "email": address("someone")}
    refused = await submit(system, headers, person)
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "reporter", "email"]
    assert error["msg"] == "must be the address on your record"
    # The same mailbox (in other capitals) is the address on file: accepted and mailed.
    accepted = await submit(system, headers, {**person, "email": mine.upper()})
    assert accepted.status_code == 202, accepted.text
    await mail_with(system, mine, ACK)


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
async def test_the_raise_form_shows_the_address_on_file_and_the_mail_goes_there(
    system, browser, tmp_path
):
    on_file = "alex.chen@example.com"  # Alex Chen of the portal's demo sign-in
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(system.url("intake") + "/portal/sign-in")
    await page.get_by_label(re.compile("Alex Chen")).check()
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/portal/cases$"))
    await page.goto(system.url("intake") + "/portal/cases/new")
    shown = await page.locator("#reporter-email").inner_text()
    assert shown == f"Updates go to {on_file}, the address on your HR record."
    assert "Alex Chen (E-7002)" in await page.locator("#reporter-name").inner_text()
    # Nothing to type: no field for the reporter's own name or address (the only address
    # fields left are the respondents', for the person the case is about).
    assert await page.locator("input[name=email], input[name=name]").count() == 0
    fields = page.locator("input[type=email]")
    names = [await fields.nth(i).get_attribute("name") for i in range(await fields.count())]
    assert all(str(n).startswith("respondent") for n in names), names
    await page.get_by_label("Subject").fill("My payslip is missing overtime")
    await page.get_by_label("What happened?").fill(
        "Overtime I worked in October is not on my November payslip."
    )
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    await page.screenshot(path=str(artifacts / "raise-form-on-file.png"), full_page=True)
    await page.get_by_role("button", name="Submit").click()
    await page.wait_for_url(re.compile(r"/portal/cases/[0-9a-f-]+\?raised=1"))
    heading = await page.get_by_role("heading", level=1).inner_text()
    reference = heading.split()[0].rstrip(":")
    ack = await mail_with(system, on_file, ACK)
    assert reference in str(ack["Subject"])
    await page.screenshot(path=str(artifacts / "raised.png"), full_page=True)
    await context.close()


async def test_the_demo_directory_feed_gives_notifications_the_addresses(system, amqp, admin_pool):
    """`hrcase run` publishes hrcase/demo_directory.csv as the `directory` producer."""
    from hrcase.demo import publish_demo_directory
    from shared.settings import Settings
    from tests.support.bus import vhost_url

    published = await publish_demo_directory(Settings(rabbitmq_url=vhost_url(amqp)))
    assert published > 0

    async def known() -> bool:
        value = await admin_pool.fetchval(
            "SELECT email FROM notifications.employee_addresses WHERE employee_id = 'E-1001'"
        )
        return bool(value == "maria.lopez@example.com")

    await eventually(known, what="the demo directory in notifications")


async def test_a_posted_name_or_address_is_ignored_by_the_portal_form(system):
    elsewhere = address("elsewhere")
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as portal:
        page = await portal.get("/portal/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        await portal.post("/portal/sign-in", data={"csrf_token": token.group(1), "identity": "sam"})
        form = (await portal.get("/portal/cases/new")).text
        assert 'name="email"' not in form and "Updates go to" in form
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None
        raised = await portal.post(
            "/portal/cases",
            data={
                "csrf_token": token.group(1),
                "subject": "Leave balance wrong",
                "description": "My leave balance is 3 days short after parental leave.",
                "name": "Somebody Else",
                "email": elsewhere,
            },
        )
        assert raised.status_code == 303, raised.text
        case_id = raised.headers["location"].split("/")[3].split("?")[0]
    view = await until(system, case_id, AS_AGENT, lambda v: v.get("status") == "assigned")
    assert view["reporter"]["email"] == "sam.rivera@example.com"
    assert view["reporter"]["name"] == "Sam Rivera"
