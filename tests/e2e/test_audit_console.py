"""The auditor's day in a real headless Chromium, against the whole running system.

An auditor signs in at the portal, follows "Audit console" (served by the audit service,
on its own port, with the portal's session cookie), finds a case by reference, reads its
timeline and access log, picks an instant and sees the state then, sees the log verified
and downloads the case file. Others get 403; after sign-out the old cookie is refused.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.auth import PORTAL_AUDIENCE, PORTAL_SESSION_COOKIE, TokenService
from shared.settings import DEV_JWT_SECRET
from tests.e2e.test_agent_actions import AS_AGENT, act, raise_case, until
from tests.e2e.test_portal import PNG_MAGIC, needs_chromium, new_context, sign_in
from tests.e2e.test_portal import browser as browser
from tests.support.auth import auth_headers
from tests.support.bus import capture_events
from tests.support.infra import own_database
from tests.support.system import running_system

AUDITOR_API = auth_headers("aud-e2e", "auditor")
DEADLINE = 15.0


@pytest.fixture(scope="module")
def database_url(database_url):
    """A database of this module's own: audit tests earlier in a run write synthetic log
    entries whose references repeat this module's, and a reference that two cases share
    gives a list of matches, not the case page."""
    with own_database("audit_console") as url:
        yield url


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "audit-console") as running:
        yield running


def console(system) -> str:
    return f"{system.url('audit')}/audit/console/"


async def audit_timeline(system, case_id: str, predicate) -> list[dict[str, Any]]:
    """The case's timeline in the audit log once `predicate(event types)` holds."""
    deadline = asyncio.get_running_loop().time() + DEADLINE
    async with httpx.AsyncClient(base_url=system.url("audit"), headers=AUDITOR_API) as c:
        while True:
            response = await c.get(f"/api/v1/audit/cases/{case_id}/timeline")
            items = response.json().get("items", []) if response.status_code == 200 else []
            if predicate([i["event_type"] for i in items]):
                return list(items)
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the audit log never caught up: {items}")
            await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def story(system) -> dict[str, Any]:
    """A case raised, noted and put in progress, with an instant between note and status."""
    marker = uuid.uuid4().hex[:8]
    description = f"My October overtime is missing from my payslip ({marker})."
    note = f"Payroll confirms the cut-off was missed ({marker})."
    case_id = await raise_case(system, description=description)
    assert (await act(system, AS_AGENT, case_id, "notes", {"body": note})).status_code == 202
    await audit_timeline(system, case_id, lambda types: "case.note_added" in types)
    await asyncio.sleep(1.1)  # the instant below is taken to the second
    instant = datetime.now(UTC)
    await asyncio.sleep(1.1)
    moved = await act(system, AS_AGENT, case_id, "status", {"to_status": "in_progress"})
    assert moved.status_code == 202
    await until(system, case_id, lambda v: v["status"] == "in_progress")
    await audit_timeline(system, case_id, lambda types: "case.status_changed" in types)
    view = await until(system, case_id, lambda v: True)
    return {
        "case_id": case_id,
        "reference": view["reference"],
        "description": description,
        "note": note,
        "instant": instant,
    }


async def console_status(system, cookie: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=system.url("audit")) as c:
        return await c.get(path, headers={"Cookie": f"{PORTAL_SESSION_COOKIE}={cookie}"})


@needs_chromium
async def test_an_auditor_reviews_a_case_in_the_console(system, browser, story, tmp_path: Path):
    context, page = await sign_in(browser, system, "Ines Duarte")
    await page.get_by_role("link", name="Audit console").click()
    await page.wait_for_url(console(system))

    await page.get_by_label("Case reference or case id").fill(story["reference"].lower())
    await page.get_by_role("button", name="Find case").click()
    await page.wait_for_url(f"{console(system)}cases/{story['case_id']}", timeout=90_000)
    assert story["reference"] in await page.get_by_role("heading", level=1).inner_text()

    timeline = page.get_by_role("table", name="Every event of the case, in chain order")
    text = await timeline.inner_text()
    for event_type in ("case.submitted", "case.routed", "case.assigned", "case.note_added",
                       "case.status_changed"):  # fmt: skip
        assert event_type in text
    access = page.get_by_role("table", name=re.compile("Who read or exported"))
    assert "AU-1001" in await access.inner_text()
    assert (await page.get_by_role("status").inner_text()).startswith("Verified")
    now = page.get_by_role("table", name=re.compile("^Now"))
    assert "in_progress" in await now.inner_text()

    # The state at the instant between the note and the status change.
    await page.get_by_label("State at an instant (UTC)").fill(
        story["instant"].strftime("%Y-%m-%dT%H:%M:%S")
    )
    await page.get_by_role("button", name="Show state at this instant").click()
    then = page.get_by_role("table", name=re.compile("^At "))
    then_text = await then.inner_text()
    assert re.search(r"Status\s+assigned", then_text), then_text
    assert re.search(r"Messages / notes / documents\s+0 / 1 / 0", then_text), then_text
    await page.screenshot(path=str(tmp_path / "audit-console-case.png"), full_page=True)
    assert (tmp_path / "audit-console-case.png").read_bytes().startswith(PNG_MAGIC)

    async with page.expect_download() as downloading:
        await page.get_by_role("button", name="Download case file (HTML)").click()
    download = await downloading.value
    assert download.suggested_filename == f"case-file-{story['reference']}.html"
    saved = tmp_path / download.suggested_filename
    await download.save_as(str(saved))
    case_file = saved.read_text(encoding="utf-8")
    assert story["description"] in case_file and story["note"] in case_file

    # The export is in the access log, by the auditor.
    await page.reload()
    assert "exported the case file" in await access.inner_text()

    # Sign out at the portal: the old cookie stops opening the console.
    cookie = {c["name"]: c["value"] for c in await context.cookies()}[PORTAL_SESSION_COOKIE]
    case_path = f"/audit/console/cases/{story['case_id']}"
    assert (await console_status(system, cookie, case_path)).status_code == 200
    await page.goto("/portal/cases")
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/portal/")
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while (refused := await console_status(system, cookie, case_path)).status_code == 200:
        assert asyncio.get_running_loop().time() < deadline, "the old cookie still works"
        await asyncio.sleep(0.2)
    assert refused.status_code == 303 and "/portal/sign-in" in refused.headers["location"]
    await context.close()


@needs_chromium
async def test_a_signed_out_auditor_is_brought_back_to_the_console_page(system, browser, story):
    context = await new_context(browser, system)
    page = await context.new_page()
    wanted = f"{console(system)}cases/{story['case_id']}"
    await page.goto(wanted)
    await page.wait_for_url(re.compile(r"/portal/sign-in\?next="))
    await page.get_by_label(re.compile("Ines Duarte")).check()
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(wanted)
    assert story["reference"] in await page.get_by_role("heading", level=1).inner_text()
    await context.close()


@needs_chromium
async def test_the_console_is_for_auditors_only(system, browser, story, tmp_path: Path):
    context, page = await sign_in(browser, system, "Priya Shah")
    assert await page.get_by_role("link", name="Audit console").count() == 0
    response = await page.goto(f"{console(system)}cases/{story['case_id']}")
    assert response is not None and response.status == 403
    assert "auditors only" in await page.get_by_role("alert").inner_text()
    assert story["description"] not in await page.content()
    await page.screenshot(path=str(tmp_path / "audit-console-403.png"))
    await context.close()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def test_sign_out_and_a_new_sign_in_announce_the_end_of_the_session(system, amqp):
    tokens = TokenService(DEV_JWT_SECRET)
    async with (
        capture_events(amqp) as captured,
        httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as portal,
    ):
        page = await portal.get("/portal/sign-in")
        first = await portal.post(
            "/portal/sign-in", data={"csrf_token": _csrf(page.text), "identity": "ines"}
        )
        assert first.status_code == 303
        cookie1 = portal.cookies[PORTAL_SESSION_COOKIE]
        # Signing in again in the same browser replaces the session...
        page = await portal.get("/portal/sign-in")
        await portal.post(
            "/portal/sign-in", data={"csrf_token": _csrf(page.text), "identity": "ines"}
        )
        cookie2 = portal.cookies[PORTAL_SESSION_COOKIE]
        # ... and the portal forwards to the console (another origin here: a page that
        # moves on by itself, since a form's redirect may not leave the portal's origin).
        forward = await portal.get("/portal/audit-console/cases/abc?at=x")
        assert forward.status_code == 200
        target = f"{console(system)}cases/abc?at=x"
        assert f'content="0;url={target}"' in forward.text
        page = await portal.get("/portal/cases")
        out = await portal.post("/portal/sign-out", data={"csrf_token": _csrf(page.text)})
        assert out.status_code == 303
        signed_out = await portal.get("/portal/audit-console/cases/abc")
        assert signed_out.status_code == 303
        assert signed_out.headers["location"].startswith("/portal/sign-in?next=")

        for cookie, reason in ((cookie1, "replaced"), (cookie2, "signed_out")):
            sid = tokens.verify(cookie, audience=PORTAL_AUDIENCE).session_id
            event = await captured.wait(
                lambda e, sid=sid: (
                    e["event_type"] == "portal.session_ended" and e["payload"]["session_id"] == sid
                )
            )
            assert event["producer"] == "intake" and event["case_id"] is None
            assert event["actor"] == {"type": "agent", "id": "AU-1001"}
            assert event["payload"]["reason"] == reason
            assert event["payload"]["subject"] == "AU-1001"
    # Both old cookies are refused by the console once audit has recorded the events.
    for cookie in (cookie1, cookie2):
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while (await console_status(system, cookie, "/audit/console/")).status_code != 303:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.2)
