"""Documents on the real system: staff add evidence and files (case.document_added carries
the SHA-256 into the audit chain), types are read from the bytes, limits answer with the
file's name, and every file opens, as a safe download, for exactly those who may see it:
from the API, the portal (signed in, or anonymously with the report's key), on cases from
every channel (portal, API, email, phone, anonymous)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import uuid
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import httpx
import pytest

from services.intake.config import DEV_INBOUND_EMAIL_TOKEN
from services.intake.domain.documents import MAX_FILE_BYTES
from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, csrf_of, needs_chromium
from tests.support.auth import auth_headers
from tests.support.system import running_system

SAM = {"employee_id": "E-8601", "name": "Sam Okoye", "email": "sam.okoye@example.com"}
AS_SAM = auth_headers("u-sam", "employee", employee_id=SAM["employee_id"])
AS_ALEX = auth_headers("u-alex", "employee", employee_id="E-8602")
AS_AGENT = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
AS_MANAGER = auth_headers("M-9002", "hr_manager", employee_id="M-9002")
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200
DEADLINE = 20.0


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "documents") as running:
        yield running


def client(system, headers=None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.url("intake"), timeout=20, headers=headers)


async def raise_case(system, **fields: Any) -> str:
    body = {
        "subject": "Payslip is missing my overtime",
        "description": "My overtime from October is not on my November payslip.",
        "reporter": SAM,
        "category": "payroll_query",
        **fields,
    }
    async with client(system, AS_SAM) as c:
        accepted = await c.post("/api/v1/cases", json=body)
        assert accepted.status_code == 202, accepted.text
        case_id: str = accepted.json()["case_id"]
        await until(lambda: c.get(f"/api/v1/cases/{case_id}"), "assigned")
    return case_id


async def until(read, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while True:
        view: dict[str, Any] = (await read()).json()
        if view.get("status") == status:
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"never {status}: {view}")
        await asyncio.sleep(0.1)


async def upload(system, headers, case_id: str, files, **form: str) -> httpx.Response:
    async with client(system, headers) as c:
        return await c.post(f"/api/v1/cases/{case_id}/documents", files=files, data=form)


async def audit_rows(admin_pool, case_id: str, event_type: str, count: int = 1) -> list[dict]:
    deadline = time.monotonic() + DEADLINE
    while True:
        rows = await admin_pool.fetch(
            "SELECT payload::text AS payload, actor::text AS actor FROM audit.log"
            " WHERE case_id = $1 AND event_type = $2 ORDER BY seq",
            uuid.UUID(case_id),
            event_type,
        )
        if len(rows) >= count:
            return [{"payload": json.loads(r["payload"]), "actor": r["actor"]} for r in rows]
        if time.monotonic() > deadline:
            raise AssertionError(f"{event_type} x{count} not in the audit log: {len(rows)}")
        await asyncio.sleep(0.1)


def assert_safe_download(response: httpx.Response, filename: str) -> None:
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    assert "filename*=UTF-8''" in disposition
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert filename.split(".")[0] in disposition


async def test_staff_add_evidence_the_chain_vouches_for_it_and_the_reporter_never_sees_it(
    system, admin_pool
):
    case_id = await raise_case(system)
    added = await upload(
        system,
        AS_AGENT,
        case_id,
        files=[("files", ("witness statement.pdf", PDF, "application/pdf"))],
        evidence="true",
        description="Signed statement of the shift lead",
    )
    assert added.status_code == 201, added.text
    [document] = added.json()["documents"]
    assert document["content_type"] == "application/pdf"
    assert document["sha256"] == hashlib.sha256(PDF).hexdigest()

    [event] = await audit_rows(admin_pool, case_id, "case.document_added")
    payload = event["payload"]
    assert payload["document"]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert payload["document"]["size"] == len(PDF)
    assert payload["evidence"] is True and payload["shared"] is False
    assert "%PDF" not in json.dumps(payload)  # a reference, never the bytes
    assert '"A-1001"' in event["actor"]

    url = f"/api/v1/cases/{case_id}/attachments/{document['attachment_id']}"
    async with client(system, AS_AGENT) as c:
        download = await c.get(url)
        listed = (await c.get(f"/api/v1/cases/{case_id}/documents")).json()["documents"]
    assert_safe_download(download, "witness statement.pdf")
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert [d["filename"] for d in listed] == ["witness statement.pdf"]
    assert listed[0]["evidence"] and listed[0]["uploaded_by"] == "A-1001"

    async with client(system, AS_SAM) as c:
        assert (await c.get(url)).status_code == 404  # evidence: not for the reporter
        mine = (await c.get(f"/api/v1/cases/{case_id}/documents")).json()["documents"]
        view = (await c.get(f"/api/v1/cases/{case_id}")).json()
    assert mine == [] and view["attachments"] == []

    # Evidence is never shared; a shared document is.
    both = await upload(
        system,
        AS_AGENT,
        case_id,
        files=[("files", ("x.pdf", PDF, "application/pdf"))],
        evidence="true",
        shared="true",
    )
    assert both.status_code == 422 and "shared" in both.json()["detail"]
    shared = await upload(
        system,
        AS_AGENT,
        case_id,
        files=[("files", ("policy.pdf", PDF, "application/pdf"))],
        shared="true",
    )
    assert shared.status_code == 201
    shared_id = shared.json()["documents"][0]["attachment_id"]
    async with client(system, AS_SAM) as c:
        mine = (await c.get(f"/api/v1/cases/{case_id}/documents")).json()["documents"]
        assert [d["filename"] for d in mine] == ["policy.pdf"]
        assert mine[0]["uploaded_by"] is None  # which member of staff: for staff
        opened = await c.get(f"/api/v1/cases/{case_id}/attachments/{shared_id}")
    assert opened.status_code == 200 and opened.content == PDF

    # Only staff add documents; the reporter gets 403, nobody at all 401.
    files = [("files", ("x.pdf", PDF, "application/pdf"))]
    assert (await upload(system, AS_SAM, case_id, files)).status_code == 403
    assert (await upload(system, None, case_id, files)).status_code == 401
    missing = await upload(system, AS_AGENT, str(uuid.uuid4()), files)
    assert missing.status_code == 404


async def test_types_are_read_from_the_bytes_and_limits_name_the_file(system):
    case_id = await raise_case(system)
    renamed_exe = await upload(
        system, AS_AGENT, case_id, files=[("files", ("payslip.pdf", EXE, "application/pdf"))]
    )
    assert renamed_exe.status_code == 422
    assert "payslip.pdf" in renamed_exe.json()["detail"]
    assert "program" in renamed_exe.json()["detail"]

    by_name = await upload(
        system, AS_AGENT, case_id, files=[("files", ("run.bat", b"echo hi\r\n", "text/plain"))]
    )
    assert by_name.status_code == 422 and "run.bat" in by_name.json()["detail"]

    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inside.txt", "hello")
    zipped = await upload(
        system, AS_AGENT, case_id, files=[("files", ("bundle.pdf", buffer.getvalue(), "a/b"))]
    )
    assert zipped.status_code == 422 and "archive" in zipped.json()["detail"]

    # A picture named and declared as a PDF is stored as what it is.
    mislabelled = await upload(
        system, AS_AGENT, case_id, files=[("files", ("scan.pdf", PNG, "application/pdf"))]
    )
    assert mislabelled.status_code == 201, mislabelled.text
    assert mislabelled.json()["documents"][0]["content_type"] == "image/png"

    too_big = b"%PDF-1.4\n" + b"0" * MAX_FILE_BYTES
    large = await upload(
        system, AS_AGENT, case_id, files=[("files", ("huge-scan.pdf", too_big, "application/pdf"))]
    )
    assert large.status_code == 413
    assert "huge-scan.pdf" in large.json()["detail"]

    # HTML is kept, but only ever served as an opaque download.
    page = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
    html = await upload(
        system, AS_AGENT, case_id, files=[("files", ("notes.txt", page, "text/plain"))]
    )
    assert html.status_code == 201, html.text
    [stored] = html.json()["documents"]
    assert stored["content_type"] == "text/html"
    async with client(system, AS_AGENT) as c:
        served = await c.get(f"/api/v1/cases/{case_id}/attachments/{stored['attachment_id']}")
    assert_safe_download(served, "notes.txt")
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.content == page


async def test_a_restricted_case_file_is_hidden_from_whoever_may_not_read_it_and_reads_audited(
    system, admin_pool
):
    case_id = await raise_case(
        system,
        subject="Harassment by my shift lead",
        description="My shift lead harasses me with comments every night.",
        category="harassment",
    )
    async with client(system, AS_MANAGER) as c:
        view = (await c.get(f"/api/v1/cases/{case_id}")).json()
    assert view["sensitivity"] == "restricted"
    owner = view["assignment"]["owner_id"]
    as_owner = auth_headers(owner, "investigator", employee_id=owner)
    added = await upload(
        system, as_owner, case_id, files=[("files", ("interview.pdf", PDF, "application/pdf"))]
    )
    assert added.status_code == 201, added.text
    attachment_id = added.json()["documents"][0]["attachment_id"]
    url = f"/api/v1/cases/{case_id}/attachments/{attachment_id}"
    missing_url = f"/api/v1/cases/{uuid.uuid4()}/attachments/{attachment_id}"

    for outsider in (AS_ALEX, AS_AGENT):  # another employee; an agent not on the case
        async with client(system, outsider) as c:
            hidden, absent = await c.get(url), await c.get(missing_url)
        assert hidden.status_code == absent.status_code == 404
        assert hidden.json() == absent.json()
    async with client(system, as_owner) as c:
        opened = await c.get(url)
    assert opened.status_code == 200 and opened.content == PDF

    # The file read is audited like a case read, the view naming the document.
    deadline = time.monotonic() + DEADLINE
    while True:
        viewed = await audit_rows(admin_pool, case_id, "audit.case_viewed")
        reads = [r for r in viewed if r["payload"]["view"] == f"api:document:{attachment_id}"]
        if reads or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert [r["payload"]["viewer"] for r in reads] == [owner]


async def test_note_files_follow_the_note(system):
    case_id = await raise_case(system)
    async with client(system, AS_AGENT) as c:
        internal = await c.post(f"/api/v1/cases/{case_id}/notes", json={"body": "Called payroll."})
        shared = await c.post(
            f"/api/v1/cases/{case_id}/notes",
            json={"body": "Here is the corrected payslip.", "internal": False},
        )
    internal_files = await upload(
        system,
        AS_AGENT,
        case_id,
        files=[("files", ("call-log.txt", b"payroll says: fixed in December", "text/plain"))],
        note_id=internal.json()["note_id"],
        shared="true",  # an internal note's files stay internal whatever is asked
    )
    shared_files = await upload(
        system,
        AS_AGENT,
        case_id,
        files=[("files", ("payslip-corrected.pdf", PDF, "application/pdf"))],
        note_id=shared.json()["note_id"],
        shared="true",
    )
    assert internal_files.status_code == shared_files.status_code == 201
    foreign_note = await upload(
        system,
        AS_AGENT,
        case_id,
        files=[("files", ("x.pdf", PDF, "application/pdf"))],
        note_id=str(uuid.uuid4()),
    )
    assert foreign_note.status_code == 404
    async with client(system, AS_AGENT) as c:
        staff = (await c.get(f"/api/v1/cases/{case_id}/documents")).json()["documents"]
    assert {(d["filename"], d["source"], d["shared"]) for d in staff} == {
        ("call-log.txt", "note", False),
        ("payslip-corrected.pdf", "note", True),
    }
    async with client(system, AS_SAM) as c:
        mine = (await c.get(f"/api/v1/cases/{case_id}/documents")).json()["documents"]
    assert [d["filename"] for d in mine] == ["payslip-corrected.pdf"]


def raw_mail(subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Dana Okafor <dana.okafor@example.com>"
    message["To"] = "hr@example.com"
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4()}@mail.example.com>"
    message["Date"] = "Sun, 29 Nov 2026 09:00:00 +0000"
    message.set_content("My payslip for October is attached, the overtime is missing.")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="payslip.pdf")
    message.add_attachment(EXE, maintype="application", subtype="pdf", filename="invoice.pdf")
    return message.as_bytes(policy=SMTP)


async def test_files_from_every_channel_open(system, admin_pool):
    # Email: the file opens for staff; a program in the mail is withheld, and said so.
    async with client(system) as c:
        mailed = await c.post(
            "/api/v1/inbound-email",
            content=raw_mail("Overtime missing"),
            headers={
                "Content-Type": "message/rfc822",
                "X-Inbound-Email-Token": DEV_INBOUND_EMAIL_TOKEN,
            },
        )
    assert mailed.status_code == 201, mailed.text
    email_case = mailed.json()["case_id"]
    async with client(system, AS_MANAGER) as c:
        listed = (await c.get(f"/api/v1/cases/{email_case}/documents")).json()["documents"]
        assert [d["filename"] for d in listed] == ["payslip.pdf"]
        opened = await c.get(listed[0]["download"])
    assert_safe_download(opened, "payslip.pdf")
    assert opened.content == PDF
    description = await admin_pool.fetchval(
        "SELECT description FROM intake.cases WHERE case_id = $1", uuid.UUID(email_case)
    )
    assert "withheld" in description and "invoice.pdf" in description

    # Phone: staff add the call's paperwork and open it.
    call = {
        "caller": {"details": "Agency worker, site B"},
        "called_at": "2026-11-20T09:00:00Z",
        "duration_seconds": 300,
        "summary": "Caller reports a broken ladder in the loading bay.",
    }
    async with client(system, AS_AGENT) as c:
        logged = await c.post("/api/v1/phone-calls", json=call)
    assert logged.status_code == 202, logged.text
    phone_case = logged.json()["case_id"]
    photo = await upload(
        system, AS_AGENT, phone_case, files=[("files", ("ladder.png", PNG, "image/png"))]
    )
    assert photo.status_code == 201, photo.text
    async with client(system, AS_AGENT) as c:
        opened = await c.get(
            f"/api/v1/cases/{phone_case}/attachments/{photo.json()['documents'][0]['attachment_id']}"
        )
    assert opened.status_code == 200 and opened.content == PNG

    # Anonymous (portal form with a file), then opened with the key: by the API, by the page.
    async with client(system) as browser:
        token = csrf_of((await browser.get("/portal/anonymous")).text)
        created = await browser.post(
            "/portal/cases",
            data={
                "csrf_token": token,
                "anonymous": "yes",
                "subject": "Expenses padded",
                "description": "The team lead pads expense claims every month.",
            },
            files={"attachments": ("receipt.png", PNG, "image/png")},
        )
        assert created.status_code == 201, created.text
        reference = re.search(r'id="reference">([^<]+)<', created.text).group(1)
        key = re.search(r'id="secret-key">([^<]+)<', created.text).group(1)
        keyed = {"X-Report-Key": key}
        listed = await browser.get(
            f"/api/v1/anonymous-reports/{reference}/documents", headers=keyed
        )
        assert listed.status_code == 200, listed.text
        [receipt] = listed.json()["documents"]
        opened = await browser.get(receipt["download"], headers=keyed)
        assert opened.status_code == 200 and opened.content == PNG
        wrong = await browser.get(
            receipt["download"], headers={"X-Report-Key": "WRONG-WRONG-WRONG"}
        )
        assert wrong.status_code == 404

        page = await browser.post(
            "/portal/anonymous/follow-up",
            data={"csrf_token": token, "reference": reference, "secret_key": key},
        )
        assert page.status_code == 200 and "receipt.png" in page.text
        action = re.search(r'action="(/portal/anonymous/attachments/[^"]+)"', page.text).group(1)
        form = {"csrf_token": csrf_of(page.text), "reference": reference, "secret_key": key}
        downloaded = await browser.post(action, data=form)
        assert downloaded.status_code == 200 and downloaded.content == PNG
        assert downloaded.headers["content-disposition"].startswith("attachment;")
        refused = await browser.post(action, data={**form, "secret_key": "WRONG-WRONG-WRONG"})
        assert refused.status_code == 404 and refused.content != PNG


@pytest.fixture(scope="module")
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


async def sign_in(browser, system, who: str):
    context = await browser.new_context(
        base_url=system.url("intake"), java_script_enabled=False, accept_downloads=True
    )
    page = await context.new_page()
    await page.goto("/portal/sign-in")
    await page.get_by_label(re.compile(who)).check()
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/portal/(cases|work-queue)$"))
    return context, page


async def download_bytes(page, link) -> bytes:
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    path = await download.path()
    return path.read_bytes()


@needs_chromium
async def test_staff_upload_evidence_in_the_portal_and_the_reporter_sees_only_theirs(
    system, browser, tmp_path
):
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    timesheet = tmp_path / "timesheet.txt"
    timesheet.write_bytes(b"Week 41: 12 hours overtime\n")
    context, page = await sign_in(browser, system, "Sam Rivera")
    await page.get_by_role("link", name="Raise a case").first.click()
    await page.get_by_label("Subject").fill("Overtime not paid")
    await page.get_by_label("Category").select_option("payroll_query")
    await page.get_by_label("What happened?").fill("Twelve hours of overtime are not paid.")
    await page.get_by_label("Attachments (optional)").set_input_files(str(timesheet))
    await page.get_by_role("button", name="Submit").click()
    await page.wait_for_url(re.compile(r"/portal/cases/[0-9a-f-]{36}"))
    case_url = page.url.split("?")[0]
    await context.close()

    context, page = await sign_in(browser, system, "Priya Shah")
    await page.goto(case_url)
    evidence = tmp_path / "CCTV report.pdf"
    evidence.write_bytes(PDF)
    # A program under a PDF's name is refused on the form, with its name.
    fake = tmp_path / "payslip.pdf"
    fake.write_bytes(EXE)
    await page.get_by_label("Add documents").set_input_files(str(fake))
    await page.get_by_role("button", name="Upload documents").click()
    error = page.locator("#documents_files-error")
    assert "payslip.pdf" in await error.inner_text()

    await page.get_by_label("Add documents").set_input_files(str(evidence))
    await page.get_by_label("Description").fill("Security's CCTV report")
    await page.get_by_label("Evidence (never shown to the employee)").check()
    await page.get_by_role("button", name="Upload documents").click()
    await page.wait_for_url("**?done=documents#documents")
    table = page.locator("#documents-table")
    row = table.get_by_role("row").filter(has_text="CCTV report.pdf")
    assert "Evidence" in await row.inner_text()
    assert "application/pdf" in await row.inner_text()
    assert await download_bytes(page, row.get_by_role("link", name="CCTV report.pdf")) == PDF
    await page.screenshot(path=str(artifacts / "staff-documents.png"), full_page=True)
    await context.close()

    context, page = await sign_in(browser, system, "Sam Rivera")
    await page.goto(case_url)
    documents = page.locator("#documents")
    assert await documents.get_by_text("CCTV report.pdf").count() == 0
    own = documents.get_by_role("link", name="timesheet.txt")
    assert await download_bytes(page, own) == timesheet.read_bytes()
    shot = artifacts / "reporter-documents.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")
    await context.close()


async def portal_as(system, identity: str) -> tuple[httpx.AsyncClient, str]:
    """A signed-in portal session (httpx) and its CSRF token (rotated at sign-in)."""
    portal = client(system)
    token = csrf_of((await portal.get("/portal/sign-in")).text)
    signed_in = await portal.post(
        "/portal/sign-in", data={"csrf_token": token, "identity": identity}
    )
    assert signed_in.status_code == 303
    return portal, csrf_of((await portal.get("/portal/cases/new")).text)


async def test_a_note_form_carries_files_that_follow_the_note(system):
    sam = {"employee_id": "E-7001", "name": "Sam Rivera", "email": "sam.rivera@example.com"}
    async with client(system, auth_headers("u-sam", "employee", employee_id="E-7001")) as c:
        accepted = await c.post(
            "/api/v1/cases",
            json={
                "subject": "Holiday pay wrong",
                "description": "My holiday pay in October was calculated on the wrong rate.",
                "reporter": sam,
                "category": "payroll_query",
            },
        )
        case_id = accepted.json()["case_id"]
        await until(lambda: c.get(f"/api/v1/cases/{case_id}"), "assigned")
    agent, token = await portal_as(system, "priya")
    try:
        too_big = b"%PDF-1.4\n" + b"0" * MAX_FILE_BYTES
        refused = await agent.post(
            f"/portal/cases/{case_id}/notes",
            data={"csrf_token": token, "note_body": "Rates checked."},
            files={"note_files": ("rates-huge.pdf", too_big, "application/pdf")},
        )
        assert refused.status_code == 413
        assert re.search(r'id="note_files-error">[^<]*rates-huge.pdf', refused.text)
        added = await agent.post(
            f"/portal/cases/{case_id}/notes",
            data={"csrf_token": token, "note_body": "Rates checked with payroll."},
            files={"note_files": ("rates.pdf", PDF, "application/pdf")},
        )
        assert added.status_code == 303, added.text
        page = (await agent.get(f"/portal/cases/{case_id}")).text
        assert "rates.pdf" in page and "A note by HR" in page
    finally:
        await agent.aclose()
    reporter, _ = await portal_as(system, "sam")
    try:
        page = (await reporter.get(f"/portal/cases/{case_id}")).text
        assert "Rates checked" not in page and "rates.pdf" not in page
    finally:
        await reporter.aclose()
