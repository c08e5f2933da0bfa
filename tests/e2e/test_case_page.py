"""Everything about a case on one page, for staff: who raised it, the full history with
people by name, and the reporter's other cases, on the running system (intake records,
routing decides, intake's history follows its events)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.auth import TokenService
from shared.settings import DEV_JWT_SECRET
from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, needs_chromium, sign_in
from tests.support.bus import capture_events
from tests.support.system import running_system

TOKENS = TokenService(DEV_JWT_SECRET)
# Seconds for a flow to travel intake -> routing -> intake on a busy shared machine.
DEADLINE = 45.0


def bearer(subject: str, *roles: str, employee_id: str | None = None, name: str | None = None):
    token = TOKENS.mint(subject, roles, employee_id=employee_id, name=name)
    return {"Authorization": f"Bearer {token}"}


# The portal's demo employee, so the reporter can sign in at the sign-in page too.
SAM = {"employee_id": "E-7001", "name": "Sam Rivera", "email": "sam.rivera@example.com"}
AS_SAM = bearer("u-sam", "employee", employee_id="E-7001", name="Sam Rivera")
AS_OTHER_EMPLOYEE = bearer("u-alex", "employee", employee_id="E-7002", name="Alex Chen")
AS_PRIYA = bearer("A-1001", "hr_agent", employee_id="A-1001", name="Priya Shah")
AS_VICTOR = bearer("M-9002", "hr_manager", employee_id="M-9002", name="Victor Almeida")


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "case-page") as running:
        yield running


def client(system, headers=None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.url("intake"), timeout=10, headers=headers)


async def poll(
    system, path: str, headers, predicate: Callable[[httpx.Response], bool]
) -> httpx.Response:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    async with client(system, headers) as c:
        while True:
            response = await c.get(path)
            if predicate(response):
                return response
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{path} never got there: {response.text}")
            await asyncio.sleep(0.1)


async def raise_case(system, headers=AS_SAM, **fields: Any) -> str:
    body = {
        "subject": "Payslip is missing my overtime",
        "description": "My overtime from October is not on my November payslip.",
        "reporter": SAM,
        "category": "payroll_query",
        **fields,
    }
    async with client(system, headers) as c:
        accepted = await c.post("/api/v1/cases", json=body)
    assert accepted.status_code == 202, accepted.text
    case_id: str = accepted.json()["case_id"]
    await poll(
        system,
        f"/api/v1/cases/{case_id}",
        headers,
        lambda r: r.status_code == 200 and r.json()["status"] == "assigned",
    )
    return case_id


async def act(system, headers, case_id: str, action: str, body: dict[str, Any]) -> httpx.Response:
    async with client(system, headers) as c:
        response = await c.post(f"/api/v1/cases/{case_id}/{action}", json=body)
    assert response.status_code == 202, response.text
    return response


def kinds(history: dict[str, Any]) -> list[str]:
    return [entry["kind"] for entry in history["entries"]]


def is_subsequence(wanted: list[str], got: list[str]) -> bool:
    remaining = iter(got)
    return all(kind in remaining for kind in wanted)


FLOW = [
    "submitted",
    "routed",
    "assigned",
    "status_changed",  # new -> assigned, routing's own doing
    "note",
    "note",
    "status_change_requested",
    "status_changed",
    "assignment_requested",
    "request_refused",
]


async def work_a_case(system) -> tuple[str, dict[str, Any]]:
    """submit -> routed -> assigned -> internal and shared note -> status change ->
    a reassignment routing refuses; returns the case id and its history as Priya sees it."""
    case_id = await raise_case(system)
    await act(system, AS_PRIYA, case_id, "notes", {"body": "Payroll cut-off was missed."})
    await act(
        system,
        AS_PRIYA,
        case_id,
        "notes",
        {"body": "We will correct it in the next pay run.", "internal": False},
    )
    await act(system, AS_PRIYA, case_id, "status", {"to_status": "in_progress", "reason": "on it"})
    await act(system, AS_VICTOR, case_id, "assignment", {"owner_id": "X-999", "reason": "cover"})
    history = await poll(
        system,
        f"/api/v1/cases/{case_id}/history",
        AS_PRIYA,
        lambda r: r.status_code == 200 and "request_refused" in kinds(r.json()),
    )
    return case_id, history.json()


@pytest.fixture
async def captured(amqp, system):
    async with capture_events(amqp) as capture:
        yield capture


async def test_the_history_has_every_step_in_order_with_people_by_name(system, captured):
    case_id, history = await work_a_case(system)
    entries = history["entries"]
    assert is_subsequence(FLOW, kinds(history)), kinds(history)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_kind.setdefault(entry["kind"], []).append(entry)

    submitted = by_kind["submitted"][0]
    assert submitted["actor"]["name"] == "Sam Rivera"
    assert submitted["summary"]["channel"] == "api"

    # The owner by name, as routing's case.assigned carried it.
    assigned = by_kind["assigned"][0]
    owner_id, owner_name = assigned["summary"]["owner_id"], assigned["summary"]["owner_name"]
    assert owner_name and owner_name != owner_id
    assert f"Assigned to {owner_name}" in assigned["description"]
    assert owner_id not in assigned["description"]

    internal, shared = by_kind["note"]
    assert (internal["text"], internal["internal"]) == ("Payroll cut-off was missed.", True)
    assert (shared["text"], shared["internal"]) == (
        "We will correct it in the next pay run.",
        False,
    )
    assert internal["actor"] == {"type": "agent", "id": "A-1001", "name": "Priya Shah"}

    # The status change routing applied is shown as Priya's, with from/to and reason.
    moved = [e for e in by_kind["status_changed"] if e["summary"]["to_status"] == "in_progress"]
    assert moved[0]["summary"] == {
        "from_status": "assigned",
        "to_status": "in_progress",
        "reason": "on it",
    }
    assert moved[0]["actor"]["name"] == "Priya Shah"

    refused = by_kind["request_refused"][0]
    assert refused["summary"]["request_type"] == "case.assignment_requested"
    assert "not HR staff" in refused["summary"]["reason"]
    assert by_kind["assignment_requested"][0]["actor"]["name"] == "Victor Almeida"
    event = await captured.wait(
        lambda e: e["event_type"] == "case.request_refused" and e["case_id"] == case_id
    )
    assert refused["event_id"] == event["event_id"]  # one entry per event, by its id

    # Staff-only: the reporter and any other employee are refused; so is nobody.
    async with client(system, AS_SAM) as reporter:
        assert (await reporter.get(f"/api/v1/cases/{case_id}/history")).status_code == 403
        view = (await reporter.get(f"/api/v1/cases/{case_id}")).json()
    assert view["reporter"] is None and view["related_cases"] == []
    assert [n["body"] for n in view["notes"]] == ["We will correct it in the next pay run."]
    assert all(n["author_id"] is None and n["author_name"] is None for n in view["notes"])
    async with client(system, AS_OTHER_EMPLOYEE) as other:
        assert (await other.get(f"/api/v1/cases/{case_id}/history")).status_code == 403
        assert (await other.get(f"/api/v1/cases/{case_id}")).status_code == 404
    async with client(system) as nobody:
        assert (await nobody.get(f"/api/v1/cases/{case_id}/history")).status_code == 401


async def test_who_raised_it_is_for_staff_who_may_read_the_case(system):
    case_id = await raise_case(system)
    async with client(system, AS_PRIYA) as agent:
        view = (await agent.get(f"/api/v1/cases/{case_id}")).json()
    assert view["reporter"] == {
        "anonymous": False,
        "employee_id": "E-7001",
        "name": "Sam Rivera",
        "email": "sam.rivera@example.com",
        "phone": None,
    }
    assert view["assignment"]["owner_name"]

    # A phone call with only free-text caller details: what the agent took down, and who.
    call = {
        "caller": {"details": "Night-shift forklift driver, would not give a name"},
        "called_at": "2026-11-20T09:30:00Z",
        "duration_seconds": 240,
        "summary": "Caller says overtime on the night shift is not paid since June.",
        "callback_number": "+44 20 7946 0018",
        "category": "payroll_query",
    }
    async with client(system, AS_PRIYA) as agent:
        logged = await agent.post("/api/v1/phone-calls", json=call)
    assert logged.status_code == 202, logged.text
    phone_case = logged.json()["case_id"]
    view = (
        await poll(
            system,
            f"/api/v1/cases/{phone_case}",
            AS_VICTOR,
            lambda r: r.status_code == 200 and r.json()["status"] == "assigned",
        )
    ).json()
    phone = view["reporter"]["phone"]
    assert phone["caller_details"] == "Night-shift forklift driver, would not give a name"
    assert phone["callback_number"] == "+44 20 7946 0018"
    assert (phone["logged_by"], phone["logged_by_name"]) == ("A-1001", "Priya Shah")


async def test_an_anonymous_report_shows_only_that_it_is_anonymous(system, admin_pool):
    async with client(system) as anonymous:
        created = (
            await anonymous.post(
                "/api/v1/anonymous-reports",
                json={
                    "subject": "Overtime is not paid",
                    "description": "Overtime on the night shift has not been paid since June.",
                    "category": "payroll_query",
                },
            )
        ).json()
    case_id = await admin_pool.fetchval(
        "SELECT case_id FROM intake.cases WHERE reference = $1", created["reference"]
    )
    view = (
        await poll(
            system,
            f"/api/v1/cases/{case_id}",
            AS_PRIYA,
            lambda r: r.status_code == 200 and r.json()["status"] == "assigned",
        )
    ).json()
    assert view["reporter"] == {"anonymous": True}
    assert view["related_cases"] == []
    history = (
        await poll(system, f"/api/v1/cases/{case_id}/history", AS_PRIYA, lambda r: True)
    ).json()
    submitted = history["entries"][0]
    assert submitted["kind"] == "submitted"
    assert submitted["actor"] == {"type": "anonymous", "id": None, "name": "Anonymous reporter"}


async def test_related_cases_leave_out_what_the_viewer_may_not_read(system):
    first = await raise_case(system)
    second = await raise_case(
        system,
        subject="Leave balance looks wrong",
        description="My leave balance is two days short this year.",
        category="leave_query",
    )
    restricted = await raise_case(
        system,
        subject="Harassment by my shift lead",
        description="My shift lead harasses me with comments every night.",
        category="harassment",
    )
    async with client(system, AS_PRIYA) as agent:
        related = (await agent.get(f"/api/v1/cases/{first}")).json()["related_cases"]
        assert (await agent.get(f"/api/v1/cases/{restricted}")).status_code == 404
    shown = {c["case_id"] for c in related}
    assert second in shown and restricted not in shown
    (leave,) = [c for c in related if c["case_id"] == second]
    assert leave["subject"] == "Leave balance looks wrong" and leave["status"]
    assert set(leave) == {"case_id", "reference", "subject", "status"}
    # An HR manager may read restricted cases: for them it is listed.
    async with client(system, AS_VICTOR) as manager:
        related = (await manager.get(f"/api/v1/cases/{first}")).json()["related_cases"]
    assert {second, restricted} <= {c["case_id"] for c in related}
    # The restricted case's page for Priya is not there at all.
    async with client(system, AS_PRIYA) as agent:
        page = await agent.get(f"/portal/cases/{first}")
    assert page.status_code == 200
    assert "Harassment by my shift lead" not in page.text
    assert "Leave balance looks wrong" in page.text


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
async def test_a_manager_sees_everything_about_a_case_on_its_page(system, browser, tmp_path):
    case_id, _ = await work_a_case(system)
    other = await raise_case(
        system,
        subject="Leave balance looks wrong",
        description="My leave balance is two days short this year.",
        category="leave_query",
    )
    async with client(system, AS_PRIYA) as agent:
        wrote = await agent.post(
            f"/api/v1/cases/{case_id}/messages", json={"body": "Could you send your timesheet?"}
        )
    assert wrote.status_code == 201, wrote.text
    async with client(system, AS_VICTOR) as manager:
        view = (await manager.get(f"/api/v1/cases/{case_id}")).json()
    owner_id, owner_name = view["assignment"]["owner_id"], view["assignment"]["owner_name"]

    context, page = await sign_in(browser, system, "Victor Almeida")
    await page.goto(f"/portal/cases/{case_id}")
    raised_by = page.locator("#raised-by")
    assert await raised_by.get_by_role("heading", name="Who raised it").count() == 1
    assert await page.locator("#reporter-name").inner_text() == "Sam Rivera"
    assert await page.locator("#reporter-employee-id").inner_text() == "E-7001"
    assert "sam.rivera@example.com" in await page.locator("#reporter-contact").inner_text()
    handler = page.locator("#case-handler")
    assert await handler.inner_text() == owner_name and owner_id not in owner_name

    timeline = page.locator("#case-history")
    text = await timeline.inner_text()
    for line in (
        "Case raised via api",
        f"Assigned to {owner_name}",
        "Internal note",
        "Note shared with the employee",
        "Status changed from assigned to in progress: on it",
        "Requested assignment to X-999: cover",
        "Requested assignment was refused",
    ):
        assert line in text, line
    assert await timeline.locator(".history-actor", has_text="Priya Shah").count() >= 3
    assert await timeline.locator(".history-actor", has_text="Victor Almeida").count() >= 1
    assert "Message from HR" in text
    # Messages and notes name their author too, not their id.
    assert await page.locator("#messages + ol").get_by_text("HR · Priya Shah").count() == 1
    assert await page.get_by_text("Internal note · Priya Shah").count() == 1

    # The reporter's other case is one click away.
    await page.locator("#related-cases").get_by_role("link").first.wait_for()
    related_refs = await page.locator("#related-cases a").all_inner_texts()
    assert len(related_refs) >= 1
    await page.screenshot(path=str(artifacts(tmp_path) / "case-page.png"), full_page=True)
    await page.locator(f"#related-cases a[href='/portal/cases/{other}']").click()
    await page.wait_for_url(f"**/portal/cases/{other}")
    assert "Leave balance looks wrong" in await page.locator("h1").inner_text()
    await context.close()

    # The reporter's own page keeps showing only what they may see.
    context, page = await sign_in(browser, system, "Sam Rivera")
    try:
        await page.goto(f"/portal/cases/{case_id}")
        body = await page.locator("main, body").first.inner_text()
        assert "Payroll cut-off was missed." not in body
        assert "We will correct it in the next pay run." in body
        assert await page.locator("#case-history").count() == 0
        assert await page.locator("#raised-by").count() == 0
        assert "Could you send your timesheet?" in body and "HR · Priya Shah" not in body
    finally:
        await context.close()


def artifacts(tmp_path):
    path = tmp_path / "artifacts"
    path.mkdir(exist_ok=True)
    return path
