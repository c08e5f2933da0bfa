"""The portal in a real headless Chromium (Debian's package, driven by Playwright).

Never `playwright install`: the browser is /usr/bin/chromium (apt-get install chromium;
.ci/run installs it). Without it the browser tests are skipped with that reason.
"""

from __future__ import annotations

import asyncio
import re
from html import unescape
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from services.intake.entrypoints.portal import session
from tests.support.auth import auth_headers
from tests.support.bus import capture_events
from tests.support.infra import wait_for
from tests.support.system import running_system

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (apt-get install chromium); .ci/run installs it",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOSTILE_NAME = "<img src=x onerror=alert(1)>.html"


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "portal") as running:
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


async def new_context(browser, system):
    # The portal must work without JavaScript, so the tests browse with it switched off.
    return await browser.new_context(base_url=system.url("intake"), java_script_enabled=False)


async def sign_in(browser, system, who: str):
    context = await new_context(browser, system)
    page = await context.new_page()
    await page.goto("/portal/sign-in")
    await page.get_by_label(re.compile(who)).check()
    await page.get_by_role("button", name="Sign in").click()
    # Employees land on their cases, staff on the work queue.
    await page.wait_for_url(re.compile(r"/portal/(cases|work-queue)$"))
    return context, page


@needs_chromium
async def test_an_employee_raises_a_case_and_follows_it(system, browser, tmp_path):
    context, page = await sign_in(browser, system, "Sam Rivera")
    cookies = {c["name"]: c for c in await context.cookies()}
    assert cookies["hrcase_session"]["httpOnly"]
    assert cookies["hrcase_session"]["sameSite"] == "Lax"

    await page.get_by_role("link", name="Raise a case").first.click()
    await page.get_by_label("Subject").fill("My payslip is missing overtime")
    await page.get_by_label("Category").select_option("payroll_query")
    await page.get_by_label("What happened?").fill(
        "Twelve hours of overtime from October are not on my November payslip."
    )
    attachment = tmp_path / "timesheet.txt"
    attachment.write_text("Week 41: 12 hours overtime\n")
    await page.get_by_label("Attachments (optional)").set_input_files(str(attachment))
    await page.get_by_role("button", name="Submit").click()

    await page.wait_for_url(re.compile(r"/portal/cases/[0-9a-f-]{36}"))
    heading = await page.get_by_role("heading", level=1).inner_text()
    reference = heading.split(":")[0]
    assert re.fullmatch(r"HR-\d{4}-\d{6,}", reference), heading
    assert await page.get_by_role("status").inner_text() == (
        "Your case was received. HR will be in touch."
    )
    assert await page.get_by_text("timesheet.txt").count() == 1

    await page.get_by_role("link", name="My cases").click()
    row = page.get_by_role("row").filter(has_text=reference)
    assert await row.count() == 1
    assert "My payslip is missing overtime" in await row.inner_text()
    await row.get_by_role("link", name=reference).click()

    await page.get_by_label("Add a message").fill("I have attached my timesheet.")
    await page.get_by_role("button", name="Send message").click()
    await page.wait_for_url("**?sent=1#messages")
    messages = page.get_by_role("list").filter(has_text="I have attached my timesheet.")
    assert await messages.count() == 1

    # Keyboard only: on a fresh load the skip link is the first stop.
    await page.goto(page.url.split("?")[0])
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"

    shot = tmp_path / "case-page.png"
    await page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert shot.stat().st_size > 1000 and data.startswith(PNG_MAGIC)
    await context.close()


@needs_chromium
async def test_another_employee_cannot_open_the_case_page(system, browser):
    context, page = await sign_in(browser, system, "Sam Rivera")
    await page.goto("/portal/cases/new")
    await page.get_by_label("Subject").fill("A confidential matter")
    await page.get_by_label("What happened?").fill("Something only HR should know about me.")
    await page.get_by_role("button", name="Submit").click()
    await page.wait_for_url(re.compile(r"/portal/cases/[0-9a-f-]{36}"))
    case_url = page.url.split("?")[0]
    await context.close()

    context, page = await sign_in(browser, system, "Alex Chen")
    response = await page.goto(case_url)
    assert response is not None and response.status == 404
    assert await page.get_by_role("heading", level=1).inner_text() == "Case not found"
    assert await page.get_by_text("A confidential matter").count() == 0
    await page.goto("/portal/cases")
    assert await page.get_by_text("A confidential matter").count() == 0
    await context.close()


@needs_chromium
async def test_anonymous_report_and_follow_up_in_the_browser(system, browser):
    context = await new_context(browser, system)
    page = await context.new_page()
    await page.goto("/portal/")
    await page.get_by_role("link", name="Report anonymously").first.click()
    await page.get_by_label("Subject").fill("Bullying in the night team")
    await page.get_by_label("What happened?").fill("The night team lead shouts at new staff.")
    await page.get_by_role("button", name="Submit").click()
    reference = await page.locator("#reference").inner_text()
    key = await page.locator("#secret-key").inner_text()
    assert "key" not in page.url and key not in page.url

    await page.get_by_role("link", name="Follow up an anonymous report").first.click()
    await page.get_by_label("Reference").fill(reference)
    await page.get_by_label("Secret key").fill(key)
    await page.get_by_role("button", name="Show my report").click()
    assert reference in await page.get_by_role("heading", level=1).inner_text()
    await page.get_by_label(re.compile("^Reply")).fill("It happened again last night.")
    await page.get_by_role("button", name="Send reply").click()
    assert await page.get_by_text("It happened again last night.").count() == 1

    await page.get_by_role("link", name="Follow up an anonymous report").first.click()
    await page.get_by_label("Reference").fill(reference)
    await page.get_by_label("Secret key").fill("WRONG-WRONG-WRONG")
    await page.get_by_role("button", name="Show my report").click()
    assert "not recognised" in await page.get_by_role("alert").inner_text()
    await context.close()


@needs_chromium
async def test_an_agent_logs_a_phone_call_in_the_portal(system, browser):
    context, page = await sign_in(browser, system, "Priya Shah")
    await page.get_by_role("link", name="Log a phone call").click()
    await page.get_by_role("button", name="Log the call").click()  # empty: refused with reasons
    assert await page.get_by_role("alert").count() >= 1
    await page.get_by_label("Or: who called").fill("Agency worker, site B")
    await page.get_by_label("Callback number").fill("+44 20 7946 0000")
    await page.get_by_label("Duration in minutes").fill("7")
    await page.get_by_label("Summary of the call").fill(
        "Caller reports a broken ladder in the loading bay that nobody has fixed."
    )
    await page.get_by_role("button", name="Log the call").click()
    await page.wait_for_url(re.compile(r"/portal/cases/[0-9a-f-]{36}"))
    heading = await page.get_by_role("heading", level=1).inner_text()
    assert "Phone call: Caller reports" in heading
    # Said to the agent, who is not the one waiting to hear from HR.
    reference = heading.split(":")[0]
    assert await page.get_by_role("status").inner_text() == f"Call logged as {reference}."
    assert await page.get_by_text("Agency worker, site B").count() == 1
    await context.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_forms_refuse_cross_site_posts_and_missing_tokens(system):
    with httpx.Client(base_url=system.url("intake"), timeout=10) as client:
        page = client.get("/portal/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        assert page.cookies.get("hrcase_csrf") == token
        signed_in = client.post("/portal/sign-in", data={"csrf_token": token, "identity": "sam"})
        assert signed_in.status_code == 303
        assert "httponly" in signed_in.headers["set-cookie"].lower()

        form = {"subject": "Cross-site", "description": "A forged submission attempt."}
        # The CSRF token is rotated at sign-in: the one from before is spent.
        stale = client.post("/portal/cases", data={**form, "csrf_token": token})
        assert stale.status_code == 403
        before, token = token, csrf_of(client.get("/portal/cases/new").text)
        assert token != before
        missing = client.post("/portal/cases", data=form)
        assert missing.status_code == 403
        forged = client.post(
            "/portal/cases",
            data={**form, "csrf_token": token},
            headers={"Origin": "https://evil.example"},
        )
        assert forged.status_code == 403
        wrong = client.post("/portal/cases", data={**form, "csrf_token": "x" * 43})
        assert wrong.status_code == 403
        invalid = client.post("/portal/cases", data={"csrf_token": token, "subject": "x"})
        assert invalid.status_code == 422
        assert "at least 10 characters" in invalid.text
        ok = client.post(
            "/portal/cases",
            data={**form, "csrf_token": token, "name": "Sam Rivera", "email": "sam@example.com"},
            files={"attachments": (HOSTILE_NAME, b"<script>alert(1)</script>", "text/html")},
        )
        assert ok.status_code == 303, ok.text
        case_page = client.get(ok.headers["location"])
        link = re.search(r'href="(/portal/cases/[^"]+/attachments/[^"]+)"', case_page.text)
        assert "&lt;img src=x onerror=alert(1)&gt;.html" in case_page.text  # escaped
        download = client.get(link.group(1))
        assert download.content == b"<script>alert(1)</script>"
        assert download.headers["content-disposition"].startswith("attachment;")
        assert download.headers["x-content-type-options"] == "nosniff"
        # Phone logging is for agents only.
        assert client.get("/portal/phone-calls/new").status_code == 403

        # Signed in but reporting anonymously: the report is not linked to the session.
        anonymous = client.post(
            "/portal/cases",
            data={
                "csrf_token": token,
                "anonymous": "yes",
                "subject": "Signed-in anonymous report",
                "description": "Expense claims are being padded by the team lead.",
            },
        )
        assert anonymous.status_code == 201
        assert re.search(r'id="secret-key">[A-Z2-7-]{39}<', anonymous.text)
        assert anonymous.headers["cache-control"] == "no-store"
        assert "Signed-in anonymous report" not in client.get("/portal/cases").text


def session_cookie(cookies: list[dict]) -> str:
    return next(c["value"] for c in cookies if c["name"] == "hrcase_session")


@needs_chromium
async def test_signing_out_revokes_the_session_at_once(system, browser):
    context, page = await sign_in(browser, system, "Sam Rivera")
    token = session_cookie(await context.cookies())
    as_cookie = {"Cookie": f"hrcase_session={token}"}
    as_bearer = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as replay:
        # Before signing out the captured token works as the cookie and as a bearer header.
        for headers in (as_cookie, as_bearer):
            assert (await replay.get("/portal/cases", headers=headers)).status_code == 200
        # It is a portal session token: the JSON API and the audit service never take it.
        assert (await replay.get("/api/v1/cases", headers=as_bearer)).status_code == 401
        audit = f"{system.url('audit')}/api/v1/audit/access"
        assert (await replay.get(audit, headers=as_bearer)).status_code == 401

        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url("**/portal/")
        assert "hrcase_session" not in {c["name"] for c in await context.cookies()}

        # Replayed after sign-out, however it is presented: signed out at once.
        for headers in (as_cookie, as_bearer):
            answer = await replay.get("/portal/cases", headers=headers)
            assert answer.status_code == 303, answer.text
            assert answer.headers["location"] == "/portal/sign-in"
            new_case = await replay.get("/portal/cases/new", headers=headers)
            # Sign-in would return to the page asked for.
            assert (
                new_case.headers.get("location") == "/portal/sign-in?next=%2Fportal%2Fcases%2Fnew"
            )
        assert (await replay.get("/api/v1/cases", headers=as_bearer)).status_code == 401
    await context.close()


@needs_chromium
async def test_a_csrf_token_from_another_session_is_refused(system, browser):
    async def session_of(who: str) -> tuple[object, str, str]:
        context, page = await sign_in(browser, system, who)
        await page.goto("/portal/cases/new")
        csrf = await page.locator("input[name=csrf_token]").first.get_attribute("value")
        return context, session_cookie(await context.cookies()), csrf or ""

    context_a, cookie_a, csrf_a = await session_of("Sam Rivera")
    context_b, cookie_b, csrf_b = await session_of("Sam Rivera")  # same person, new session
    assert csrf_a != csrf_b
    form = {
        "subject": "Bound token",
        "description": "Testing whose token this form carries.",
        "name": "Sam Rivera",
        "email": "sam.rivera@example.com",
    }
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
        headers = {"Cookie": f"hrcase_session={cookie_b}"}
        foreign = await client.post(
            "/portal/cases", data={**form, "csrf_token": csrf_a}, headers=headers
        )
        assert foreign.status_code == 403
        # The pre-sign-in double-submit pair does not stand in for the session's token either.
        cookie_pair = {"Cookie": f"hrcase_session={cookie_b}; hrcase_csrf={csrf_a}"}
        paired = await client.post(
            "/portal/cases", data={**form, "csrf_token": csrf_a}, headers=cookie_pair
        )
        assert paired.status_code == 403
        own = await client.post(
            "/portal/cases", data={**form, "csrf_token": csrf_b}, headers=headers
        )
        assert own.status_code == 303, own.text
    # Signing in again (in session A's browser) rotates the token.
    page = await context_a.new_page()
    await page.goto("/portal/sign-in")
    await page.get_by_label(re.compile("Alex Chen")).check()
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/portal/cases")
    await page.goto("/portal/cases/new")
    rotated = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert rotated not in (csrf_a, csrf_b)
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
        # The session it replaced is over.
        gone = await client.get("/portal/cases", headers={"Cookie": f"hrcase_session={cookie_a}"})
        assert gone.status_code == 303
    await context_a.close()
    await context_b.close()


@pytest.fixture
async def capture(amqp, system):
    async with capture_events(amqp) as captured:
        yield captured


async def raised_and_assigned(system, category: str, subject: str) -> tuple[str, dict]:
    as_sam = auth_headers("u-sam", "employee", employee_id="E-7001")
    body = {
        "subject": subject,
        "description": f"{subject}: details for HR, please treat this with care.",
        "reporter": {"employee_id": "E-7001", "name": "Sam Rivera", "email": "sam@example.com"},
        "category": category,
    }
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10, headers=as_sam) as c:
        case_id = (await c.post("/api/v1/cases", json=body)).json()["case_id"]
        for _ in range(300):
            view = (await c.get(f"/api/v1/cases/{case_id}")).json()
            if view["sensitivity"] and view["assignment"]["owner_id"]:
                return case_id, view
            await asyncio.sleep(0.1)
    raise AssertionError(f"never routed and assigned: {view}")


@needs_chromium
async def test_investigators_open_only_assigned_restricted_cases_and_reads_are_audited(
    system, browser, capture
):
    # Compliance cases go to the investigators with the compliance skill, never Helen.
    restricted, routed = await raised_and_assigned(system, "compliance", "Bribery in purchasing")
    assert routed["sensitivity"] == "restricted"
    assert routed["assignment"]["owner_id"] not in ("A-3001", None)
    confidential, routed = await raised_and_assigned(system, "grievance", "Grievance about rota")
    assert routed["sensitivity"] == "confidential"

    context, page = await sign_in(browser, system, "Helen Carter")
    hidden = await page.goto(f"/portal/cases/{restricted}")
    assert hidden is not None and hidden.status == 404
    assert await page.get_by_role("heading", level=1).inner_text() == "Case not found"
    shown = await page.goto(f"/portal/cases/{confidential}")
    assert shown is not None and shown.status == 200
    viewed = await capture.wait(
        lambda e: e["event_type"] == "audit.case_viewed" and e["case_id"] == confidential
    )
    assert viewed["payload"]["viewer"] == "A-3001" and viewed["payload"]["view"] == "portal"
    await page.goto("/portal/cases")
    assert await page.get_by_text("Bribery in purchasing").count() == 0
    await context.close()

    # An HR manager reads the restricted case; that read is audited as well.
    context, page = await sign_in(browser, system, "Victor Almeida")
    shown = await page.goto(f"/portal/cases/{restricted}")
    assert shown is not None and shown.status == 200
    viewed = await capture.wait(
        lambda e: e["event_type"] == "audit.case_viewed" and e["case_id"] == restricted
    )
    assert viewed["payload"]["viewer"] == "M-9002"
    views = [e for e in capture.events if e["event_type"] == "audit.case_viewed"]
    assert {e["case_id"] for e in views} == {restricted, confidential}
    await context.close()


# --- A newcomer's path: an email link, sign-in, back to the case ---------------------------

MARIA = session.DEMO_BY_KEY["maria"]
AS_MARIA = auth_headers(MARIA.subject, "employee", employee_id=MARIA.employee_id)
CASE_LINK = re.compile(r"https?://[^\s<>\"')]+/portal/cases/[0-9a-f-]{36}")


def acknowledgement_link(system, reference: str) -> str:
    """The case link in the acknowledgement mail to Maria, as the mail sink received it."""

    def found():
        mails = [m for m in system.mail.messages_to(MARIA.email) if reference in str(m["Subject"])]
        return mails[0] if mails else None

    mail = wait_for(found, timeout=30, what=f"acknowledgement of {reference} to {MARIA.email}")
    links = CASE_LINK.findall(mail.get_body(preferencelist=("plain",)).get_content())
    assert links, "the acknowledgement has no link to the case"
    return links[0]


@needs_chromium
async def test_an_email_link_opens_the_case_after_sign_in(system, browser):
    reporter = {"employee_id": MARIA.employee_id, "name": MARIA.name, "email": MARIA.email}
    with system.client("intake", headers=AS_MARIA) as client:
        accepted = client.post(
            "/api/v1/cases",
            json={
                "subject": "My payslip is missing overtime",
                "description": "My October overtime is not on my November payslip.",
                "reporter": reporter,
            },
        )
    assert accepted.status_code == 202, accepted.text
    reference, case_id = accepted.json()["reference"], accepted.json()["case_id"]
    link = acknowledgement_link(system, reference)
    assert link == f"{system.url('intake')}/portal/cases/{case_id}"

    context = await new_context(browser, system)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on(
        "response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    await page.goto(link)  # signed out: sign-in first
    assert page.url.split("?")[0] == f"{system.url('intake')}/portal/sign-in"
    await page.get_by_label(re.compile("Maria Lopez")).check()
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(link)
    assert await page.get_by_role("heading", level=1).inner_text() == (
        f"{reference}: My payslip is missing overtime"
    )

    # Her cases table: the caption spans the table above its header, not one column.
    await page.get_by_role("link", name="My cases").click()
    table = page.get_by_role("table")
    caption, header = table.locator("caption"), table.locator("thead")
    assert "Cases you raised" in await caption.inner_text()
    table_box, caption_box = await table.bounding_box(), await caption.bounding_box()
    header_box = await header.bounding_box()
    assert table_box and caption_box and header_box
    assert caption_box["width"] >= table_box["width"] - 1, (caption_box, table_box)
    assert caption_box["y"] + caption_box["height"] <= header_box["y"] + 1
    assert await table.get_by_role("row").filter(has_text=reference).count() == 1
    assert problems == []  # no 404 (a favicon, say) or other error in the console
    await context.close()


# next: (where sign-in lands)
NEXT_CASES = {
    "/portal/cases/new": "/portal/cases/new",
    "/portal/cases?x=1": "/portal/cases?x=1",
    "https://evil.example/portal/cases": "/portal/cases",
    "//evil.example/portal/": "/portal/cases",
    "/\\evil.example": "/portal/cases",
    "/portal/\\..\\evil": "/portal/cases",
    "/portal//evil.example": "/portal/cases",
    "/portal/%2f%2fevil.example": "/portal/cases",
    "/portal/../../evil": "/portal/cases",
    "javascript:alert(1)": "/portal/cases",
    "/portal/cases\r\nLocation: https://evil.example": "/portal/cases",
    "/api/v1/cases": "/portal/cases",
    "": "/portal/cases",
}


@pytest.mark.parametrize(("next_path", "lands"), NEXT_CASES.items())
def test_sign_in_returns_only_to_this_portal(system, next_path: str, lands: str) -> None:
    with httpx.Client(base_url=system.url("intake"), timeout=10) as client:
        page = client.get("/portal/sign-in", params={"next": next_path})
        assert page.status_code == 200
        offered = re.search(r'name="next" value="([^"]*)"', page.text)
        assert (unescape(offered.group(1)) if offered else "/portal/cases") == lands
        signed_in = client.post(
            "/portal/sign-in",
            data={"csrf_token": csrf_of(page.text), "identity": "maria", "next": next_path},
        )
        assert signed_in.status_code == 303, signed_in.text
        assert signed_in.headers["location"] == lands


def test_a_signed_out_visit_carries_the_page_to_sign_in(system) -> None:
    case = "/portal/cases/6f1c1c9e-8a47-4c52-9a7e-0d1c6b1c2f3a"
    with httpx.Client(base_url=system.url("intake"), timeout=10) as client:
        answer = client.get(case)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/portal/sign-in?next={quote(case, safe='')}"
        # A POST cannot be replayed by a GET after sign-in: plain sign-in.
        posted = client.post(f"{case}/messages", data={"body": "hello"})
        assert posted.headers["location"] == "/portal/sign-in"


def test_the_portal_answers_the_favicon_request(system) -> None:
    with httpx.Client(base_url=system.url("intake"), timeout=10) as client:
        icon = client.get("/favicon.ico")
    assert icon.status_code == 204 and icon.content == b""
