"""The employee hears what happens, against the running system and its mail sink.

After the acknowledgement the reporter gets a mail (reference, what kind of thing happened,
a working link; never the message or note text) when HR writes to them, shares a note,
moves the case (in progress, waiting on them, resolved, closed, with the reason staff gave
for a normal case) or reopens it; an internal note, routing's automatic moves and the
reporter's own messages mail nobody. The address is the one on file from the submission.
Anonymous reporters get no mail; their follow-up page shows the same updates.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from email.message import EmailMessage
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.support.auth import auth_headers
from tests.support.system import RunningSystem, running_system

AS_AGENT = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
AS_MANAGER = auth_headers("M-9002", "hr_manager", employee_id="M-9002")
DEADLINE = 30.0
LINK = re.compile(r"https?://[^\s<>\"')]+")
SECRET = "SECRET-NOTE-7QxP the respondent admitted it"


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "reporter-updates") as running:
        yield running


def client(system: RunningSystem, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.url("intake"), timeout=10, headers=headers)


def reporter(employee_id: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """A fresh reporter (its own address, so its mails are its own) and their headers."""
    employee_id = employee_id or f"E-{uuid.uuid4().int % 10**6:06d}"
    person = {
        "employee_id": employee_id,
        "name": "Rae Porter",
        "email": f"rae-{uuid.uuid4().hex[:10]}@example.com",
    }
    return person, auth_headers(f"u-{employee_id}", "employee", employee_id=employee_id)


async def eventually(probe, *, what: str, timeout: float = DEADLINE) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        await asyncio.sleep(0.1)


async def raise_case(
    system: RunningSystem,
    person: dict[str, str],
    headers: dict[str, str],
    *,
    category: str = "payroll_query",
    subject: str = "Payslip is missing my overtime",
    description: str = "My overtime from October is not on my November payslip.",
) -> dict[str, Any]:
    body = {
        "subject": subject,
        "description": description,
        "reporter": person,
        "category": category,
    }
    async with client(system, headers) as c:
        accepted = await c.post("/api/v1/cases", json=body)
    assert accepted.status_code == 202, accepted.text
    case_id = accepted.json()["case_id"]
    await until(system, case_id, headers, lambda v: v["status"] == "assigned")
    return {"case_id": case_id, "reference": accepted.json()["reference"]}


async def until(system, case_id: str, headers, predicate) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        async with client(system, headers) as c:
            view: dict[str, Any] = (await c.get(f"/api/v1/cases/{case_id}")).json()
        return view if predicate(view) else None

    result: dict[str, Any] = await eventually(probe, what=f"case {case_id} state")
    return result


async def act(system, headers, case_id: str, action: str, body: dict[str, Any]) -> httpx.Response:
    async with client(system, headers) as c:
        response = await c.post(f"/api/v1/cases/{case_id}/{action}", json=body)
    return response


def body_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def mails_to(system: RunningSystem, address: str, count: int) -> list[EmailMessage]:
    """The mails to `address` once there are at least `count` of them, in arrival order."""

    async def probe() -> list[EmailMessage] | None:
        mails = system.mail.messages_to(address)
        return mails if len(mails) >= count else None

    result: list[EmailMessage] = await eventually(probe, what=f"{count} mails to {address}")
    return result


async def mail_with(system: RunningSystem, address: str, subject_part: str) -> EmailMessage:
    async def probe() -> EmailMessage | None:
        found = [m for m in system.mail.messages_to(address) if subject_part in str(m["Subject"])]
        return found[0] if found else None

    result: EmailMessage = await eventually(probe, what=f"mail {subject_part!r} to {address}")
    return result


def assert_private_mail(mail: EmailMessage, case: dict[str, Any], system: RunningSystem) -> str:
    """Reference in the subject, a link to the case page, nothing the staff wrote."""
    text = str(mail["Subject"]) + "\n" + body_of(mail)
    assert case["reference"] in str(mail["Subject"])
    assert f"{system.url('intake')}/portal/cases/{case['case_id']}" in LINK.findall(text)
    for secret in (SECRET, "SECRET-NOTE", "respondent", "overtime from October"):
        assert secret not in text
    return text


async def test_a_shared_note_mails_the_reporter_and_an_internal_note_does_not(system):
    person, headers = reporter()
    case = await raise_case(system, person, headers)
    await mail_with(system, person["email"], "We have received your case")
    internal = await act(system, AS_AGENT, case["case_id"], "notes", {"body": SECRET})
    assert internal.status_code == 202, internal.text
    shared = await act(
        system, AS_AGENT, case["case_id"], "notes", {"body": SECRET, "internal": False}
    )
    assert shared.status_code == 202, shared.text

    mail = await mail_with(system, person["email"], "HR has shared an update")
    assert_private_mail(mail, case, system)
    assert mail["Auto-Submitted"] == "auto-generated"
    # The link works for its recipient: the case page, with the note on it.
    [link] = [u for u in LINK.findall(body_of(mail)) if "/portal/cases/" in u]
    async with client(system, headers) as c:
        page = await c.get(urlsplit(link).path)
    assert page.status_code == 200 and SECRET in unescape(page.text)
    # The internal note (published first, consumed first) mailed nobody: the acknowledgement
    # and the shared note's mail are all this address ever got.
    await asyncio.sleep(1.0)
    subjects = [str(m["Subject"]) for m in system.mail.messages_to(person["email"])]
    assert len(subjects) == 2, subjects


async def test_the_reporter_hears_each_step_and_only_once(system, admin_pool: asyncpg.Pool):
    person, headers = reporter()
    case = await raise_case(system, person, headers)
    case_id, address = case["case_id"], person["email"]

    # HR writes: one mail; routing's automatic "in progress" (first response) adds none.
    written = await act(system, AS_AGENT, case_id, "messages", {"body": SECRET})
    assert written.status_code == 201, written.text
    await until(system, case_id, headers, lambda v: v["status"] == "in_progress")
    mail = await mail_with(system, address, "HR has written to you")
    assert_private_mail(mail, case, system)

    need = "Please send your October timesheet; a photo of it is fine."
    waiting = await act(
        system, AS_AGENT, case_id, "status", {"to_status": "waiting_on_employee", "reason": need}
    )
    assert waiting.status_code == 202, waiting.text
    mail = await mail_with(system, address, "We need something from you")
    assert need in body_of(mail)
    assert_private_mail(mail, case, system)

    # The reporter's own reply mails them nothing, nor does routing's resume on it.
    async with client(system, headers) as c:
        replied = await c.post(f"/api/v1/cases/{case_id}/messages", json={"body": "Attached."})
    assert replied.status_code == 201, replied.text
    await until(system, case_id, headers, lambda v: v["status"] == "in_progress")

    outcome = "Your overtime will be paid with the December salary."
    resolved = await act(
        system, AS_AGENT, case_id, "status", {"to_status": "resolved", "reason": outcome}
    )
    assert resolved.status_code == 202, resolved.text
    mail = await mail_with(system, address, "Your case has been resolved")
    assert outcome in body_of(mail)

    reopened = await act(system, AS_AGENT, case_id, "status", {"to_status": "reopened"})
    assert reopened.status_code == 202, reopened.text
    await mail_with(system, address, "Your case has been reopened")
    closed = await act(
        system, AS_AGENT, case_id, "status", {"to_status": "closed", "reason": "Paid in full."}
    )
    assert closed.status_code == 202, closed.text
    mail = await mail_with(system, address, "Your case has been closed")
    assert "Paid in full." in body_of(mail)

    await asyncio.sleep(1.0)
    subjects = [str(m["Subject"]).split("] ", 1)[1] for m in system.mail.messages_to(address)]
    assert subjects == [
        "We have received your case",
        "HR has written to you about your case",
        "We need something from you",
        "Your case has been resolved",
        "Your case has been reopened",
        "Your case has been closed",
    ]
    # One delivery record per mail, each sent.
    rows = await admin_pool.fetch(
        "SELECT template, status FROM notifications.deliveries"
        " WHERE case_id = $1 AND audience = 'reporter' ORDER BY created_at",
        uuid.UUID(case_id),
    )
    assert [r["status"] for r in rows] == ["sent"] * 6
    # The reporter's page and API view show the status updates with the reasons for them.
    view = await until(system, case_id, headers, lambda v: v["status"] == "closed")
    assert [(u["kind"], u["reason"]) for u in view["status_updates"]] == [
        ("in_progress", None),  # the agent's first reply
        ("waiting_on_employee", need),
        ("in_progress", None),  # the reporter's reply
        ("resolved", outcome),
        ("reopened", None),
        ("closed", "Paid in full."),
    ]
    async with client(system, headers) as c:
        page = unescape((await c.get(f"/portal/cases/{case_id}")).text)
    assert need in page and outcome in page and "Your case was reopened" in page


async def test_only_the_address_on_file_is_ever_written_to(system):
    person, headers = reporter()
    case = await raise_case(system, person, headers)
    elsewhere = f"attacker-{uuid.uuid4().hex[:8]}@example.net"
    # No request can name a recipient: extra fields are refused, naming the field.
    for action, body in (
        ("messages", {"body": "hello", "to": elsewhere}),
        ("notes", {"body": "hello", "internal": False, "email": elsewhere}),
        ("status", {"to_status": "waiting_on_employee", "reporter_email": elsewhere}),
    ):
        refused = await act(system, AS_AGENT, case["case_id"], action, body)
        assert refused.status_code == 422, refused.text
        assert {"to", "email", "reporter_email"} & {
            str(part) for error in refused.json()["detail"] for part in error["loc"]
        }
    accepted = await act(system, AS_AGENT, case["case_id"], "messages", {"body": "hello"})
    assert accepted.status_code == 201
    await mail_with(system, person["email"], "HR has written to you")
    # A portal form ignores fields it does not know: the note is shared, the mail still goes
    # to the address on file and nowhere else.
    page_url = f"/portal/cases/{case['case_id']}"
    async with client(system, AS_AGENT) as agent:
        page = await agent.get(page_url)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        posted = await agent.post(
            f"{page_url}/notes",
            data={
                "csrf_token": token.group(1),
                "note_body": "Shared through the form.",
                "note_shared": "yes",
                "email": elsewhere,
                "reporter_email": elsewhere,
                "to": elsewhere,
            },
        )
    assert posted.status_code == 303, posted.text
    await mail_with(system, person["email"], "HR has shared an update")
    assert system.mail.messages_to(elsewhere) == []


async def test_a_restricted_case_keeps_the_reason_behind_sign_in(system):
    person, headers = reporter()
    case = await raise_case(
        system,
        person,
        headers,
        category="harassment",
        subject="Harassment by a colleague",
        description="A colleague keeps making harassing remarks about me in meetings.",
    )
    view = await until(system, case["case_id"], headers, lambda v: True)
    assert view["sensitivity"] == "restricted"
    reason = "The investigation upheld your complaint against the respondent."
    resolved = await act(
        system, AS_MANAGER, case["case_id"], "status", {"to_status": "resolved", "reason": reason}
    )
    assert resolved.status_code == 202, resolved.text
    mail = await mail_with(system, person["email"], "Your case has been resolved")
    text = assert_private_mail(mail, case, system)
    assert reason not in text and "is on your case page" in text
    assert "Harassment" not in text and "harass" not in text
    async with client(system, headers) as c:
        page = unescape((await c.get(f"/portal/cases/{case['case_id']}")).text)
    assert reason in page


async def test_an_anonymous_reporter_gets_no_mail_and_sees_the_updates(
    system, admin_pool: asyncpg.Pool
):
    async with client(system) as c:
        created = await c.post(
            "/api/v1/anonymous-reports",
            json={
                "subject": "Payroll keeps making errors",
                "description": "The payroll team keeps paying overtime late to our whole shift.",
                "category": "payroll_query",
            },
        )
    assert created.status_code == 201, created.text
    reference, key = created.json()["reference"], created.json()["secret_key"]

    async def case_row() -> asyncpg.Record | None:
        row = await admin_pool.fetchrow(
            "SELECT case_id, status FROM intake.cases WHERE reference = $1", reference
        )
        return row if row and row["status"] == "assigned" else None

    case_id = (await eventually(case_row, what="anonymous case assigned"))["case_id"]
    shared = await act(system, AS_AGENT, str(case_id), "notes", {"body": SECRET, "internal": False})
    assert shared.status_code == 202, shared.text
    need = "Which shift and which weeks? No names needed."
    waiting = await act(
        system,
        AS_AGENT,
        str(case_id),
        "status",
        {"to_status": "waiting_on_employee", "reason": need},
    )
    assert waiting.status_code == 202, waiting.text

    async def updated() -> dict[str, Any] | None:
        async with client(system) as c:
            view = await c.get(
                f"/api/v1/anonymous-reports/{reference}", headers={"X-Report-Key": key}
            )
        data: dict[str, Any] = view.json()
        return data if data["status_updates"] else None

    view = await eventually(updated, what="status update on the anonymous report")
    assert [n["body"] for n in view["notes"]] == [SECRET]
    assert view["status_updates"][0]["kind"] == "waiting_on_employee"
    assert view["status_updates"][0]["reason"] == need

    # The follow-up page, as the reporter uses it (reference and key in the form).
    async with client(system) as c:
        form = await c.get("/portal/anonymous/follow-up")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        page = await c.post(
            "/portal/anonymous/follow-up",
            data={"csrf_token": token.group(1), "reference": reference, "secret_key": key},
        )
    assert page.status_code == 200, page.text
    text = unescape(page.text)
    assert SECRET in text and need in text and "We need something from you" in text
    # Nothing was mailed or recorded as a delivery to a reporter for it.
    await asyncio.sleep(1.0)
    rows = await admin_pool.fetch(
        "SELECT * FROM notifications.deliveries WHERE case_id = $1 AND audience = 'reporter'",
        case_id,
    )
    assert rows == []
    # Only staff heard of it (the owner's assignment mail).
    about = [str(m["Subject"]) for m in system.mail.received() if reference in str(m["Subject"])]
    assert about and all("Case assigned to you" in s for s in about), about


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
async def test_the_reporter_follows_the_mail_link_signs_in_and_sees_the_update(
    system, browser, tmp_path
):
    # Sam Rivera (E-7001) of the portal's demo sign-in, with his address on file: once the
    # HR directory knows him, mails go to the directory's address whatever a form said.
    person, headers = reporter("E-7001")
    person["name"], person["email"] = "Sam Rivera", "sam.rivera@example.com"
    case = await raise_case(system, person, headers)
    note = "We have corrected your payslip; the difference is paid on Friday."
    shared = await act(
        system, AS_AGENT, case["case_id"], "notes", {"body": note, "internal": False}
    )
    assert shared.status_code == 202, shared.text
    need = "Please upload your October timesheet."
    waiting = await act(
        system,
        AS_AGENT,
        case["case_id"],
        "status",
        {"to_status": "waiting_on_employee", "reason": need},
    )
    assert waiting.status_code == 202, waiting.text
    assert note not in body_of(await mail_with(system, person["email"], "HR has shared an update"))
    mail = await mail_with(system, person["email"], "We need something from you")
    [link] = [u for u in LINK.findall(body_of(mail)) if "/portal/cases/" in u]

    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await page.goto(link)  # signed out: the portal's sign-in page, keeping the link
    await page.wait_for_url(re.compile(r"/portal/sign-in\?next="))
    await page.get_by_label(re.compile("Sam Rivera")).check()
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(link)
    heading = await page.get_by_role("heading", level=1).inner_text()
    assert heading.startswith(case["reference"])
    assert await page.get_by_text(note).count() == 1
    assert await page.locator("#case-status").inner_text() == "Waiting for your reply"
    updates = page.get_by_role("list").filter(has_text="We need something from you")
    assert "What we need: " + need in await updates.inner_text()
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    await page.screenshot(path=str(artifacts / "reporter-update.png"), full_page=True)
    await context.close()
