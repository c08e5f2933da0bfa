"""HR agents' actions on the real system: intake records the request, routing decides, and
intake's case view follows routing's events. Events are read from a capture queue bound to
every routing key, i.e. exactly what was published."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.support.auth import auth_headers
from tests.support.bus import capture_events
from tests.support.infra import wait_for
from tests.support.system import running_system

SAM = {"employee_id": "E-8301", "name": "Sam Okoye", "email": "sam.okoye@example.com"}
AS_SAM = auth_headers("u-sam", "employee", employee_id=SAM["employee_id"])
AS_AGENT = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
AS_INVESTIGATOR = auth_headers("A-3001", "investigator", employee_id="A-3001")
AS_MANAGER = auth_headers("M-9002", "hr_manager", employee_id="M-9002")
DEADLINE = 15.0  # seconds for a request to travel intake -> routing -> intake


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "agent-actions") as running:
        yield running


@pytest.fixture
async def capture(amqp, system):
    async with capture_events(amqp) as captured:
        yield captured


def client(system, headers=None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.url("intake"), timeout=10, headers=headers)


async def raise_case(system, headers=AS_SAM, reporter=SAM, **fields: Any) -> str:
    body = {
        "subject": "Payslip is missing my overtime",
        "description": "My overtime from October is not on my November payslip.",
        "reporter": reporter,
        "category": "payroll_query",
        **fields,
    }
    async with client(system, headers) as c:
        accepted = await c.post("/api/v1/cases", json=body)
    assert accepted.status_code == 202, accepted.text
    case_id: str = accepted.json()["case_id"]
    await until(system, case_id, lambda v: v["status"] == "assigned", headers=headers)
    return case_id


async def until(
    system, case_id: str, predicate: Callable[[dict[str, Any]], bool], headers=AS_SAM
) -> dict[str, Any]:
    """The case view once `predicate` holds, polled until the deadline."""
    deadline = asyncio.get_running_loop().time() + DEADLINE
    async with client(system, headers) as c:
        while True:
            view: dict[str, Any] = (await c.get(f"/api/v1/cases/{case_id}")).json()
            if predicate(view):
                return view
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the case never reached the expected state: {view}")
            await asyncio.sleep(0.1)


async def act(system, headers, case_id: str, action: str, body: dict[str, Any]) -> httpx.Response:
    async with client(system, headers) as c:
        return await c.post(f"/api/v1/cases/{case_id}/{action}", json=body)


async def test_status_and_category_requests_go_through_routing(system, capture):
    case_id = await raise_case(system)
    paused = await act(
        system,
        AS_AGENT,
        case_id,
        "status",
        {"to_status": "waiting_on_employee", "reason": "asked for the payslip"},
    )
    assert paused.status_code == 202, paused.text
    assert paused.json()["event_type"] == "case.status_change_requested"
    view = await until(system, case_id, lambda v: v["status"] == "waiting_on_employee")
    assert view["category"] == "payroll_query" and view["priority"] == "P4"

    request = await capture.wait(lambda e: e["event_id"] == paused.json()["event_id"])
    assert request["actor"] == {"type": "agent", "id": "A-1001"}
    assert request["case_id"] == case_id and request["producer"] == "intake"
    assert request["payload"] == {
        "to_status": "waiting_on_employee",
        "reason": "asked for the payslip",
    }
    # The read model now says so: asking again is refused with the reason.
    again = await act(system, AS_AGENT, case_id, "status", {"to_status": "waiting_on_employee"})
    assert again.status_code == 409 and "already waiting_on_employee" in again.json()["detail"]

    # Re-categorised while waiting: category, priority, team and SLA follow the policy
    # (contract_dispute: P3, employee_relations) and the status is not undone.
    before = view
    moved = await act(
        system,
        AS_AGENT,
        case_id,
        "category",
        {"category": "contract_dispute", "reason": "about the contract's overtime clause"},
    )
    assert moved.status_code == 202, moved.text
    view = await until(system, case_id, lambda v: v["category"] == "contract_dispute")
    assert view["priority"] == "P3" and view["sensitivity"] == "confidential"
    assert view["status"] == "waiting_on_employee"
    assert view["sla"] != before["sla"]
    view = await until(system, case_id, lambda v: v["assignment"]["team"] == "employee_relations")
    assert view["assignment"]["owner_id"] in ("A-2001", "A-2002")
    same = await act(
        system, AS_AGENT, case_id, "category", {"category": "contract_dispute", "reason": "again"}
    )
    assert same.status_code == 409

    invalid = await act(system, AS_AGENT, case_id, "category", {"category": "x", "reason": "r"})
    assert invalid.status_code == 422
    assert (
        await act(system, AS_AGENT, case_id, "status", {"to_status": "assigned"})
    ).status_code == 422


async def test_a_manager_reassigns_and_only_a_manager_may(system, capture):
    case_id = await raise_case(system)
    owner = (await until(system, case_id, lambda v: True))["assignment"]["owner_id"]
    new_owner = next(o for o in ("A-1001", "A-1002", "A-1003") if o != owner)
    body = {"owner_id": new_owner, "reason": "holiday cover"}

    refused = await act(system, AS_AGENT, case_id, "assignment", body)
    assert refused.status_code == 403 and "hr_manager" in refused.json()["detail"]
    accepted = await act(system, AS_MANAGER, case_id, "assignment", body)
    assert accepted.status_code == 202, accepted.text
    view = await until(system, case_id, lambda v: v["assignment"]["owner_id"] == new_owner)
    assert view["status"] == "assigned"
    request = await capture.wait(lambda e: e["event_id"] == accepted.json()["event_id"])
    assert request["event_type"] == "case.assignment_requested"
    assert request["actor"] == {"type": "agent", "id": "M-9002"}
    assert request["payload"] == body
    # Investigators may note and move a case, not re-categorise it.
    assert (
        await act(
            system,
            AS_INVESTIGATOR,
            case_id,
            "category",
            {"category": "grievance", "reason": "a grievance"},
        )
    ).status_code == 403


async def test_employees_and_staff_without_access_cannot_act(system):
    case_id = await raise_case(system)
    requests = {
        "notes": {"body": "let me in"},
        "status": {"to_status": "resolved", "reason": "done"},
        "category": {"category": "grievance", "reason": "mine now"},
        "assignment": {"owner_id": "A-1002", "reason": "mine now"},
    }
    for action, body in requests.items():
        # The reporter holds no staff role: refused before the case is even looked at.
        assert (await act(system, AS_SAM, case_id, action, body)).status_code == 403
        assert (await act(system, None, case_id, action, body)).status_code == 401

    # A restricted case is invisible to an agent who neither owns nor logged it.
    restricted = await raise_case(
        system,
        subject="Harassment by my shift lead",
        description="My shift lead harasses me with comments every night.",
        category="harassment",
    )
    missing = str(uuid.uuid4())
    for action in ("notes", "status", "category"):
        hidden = await act(system, AS_AGENT, restricted, action, requests[action])
        absent = await act(system, AS_AGENT, missing, action, requests[action])
        assert hidden.status_code == absent.status_code == 404
        assert hidden.json() == absent.json()
    # The investigator it is assigned to may work it; another investigator may not see it.
    owner = (await until(system, restricted, lambda v: True))["assignment"]["owner_id"]
    as_owner = auth_headers(owner, "investigator", employee_id=owner)
    note = await act(system, as_owner, restricted, "notes", {"body": "Interview booked."})
    assert note.status_code == 202, note.text
    other = "A-3003" if owner == "A-3001" else "A-3001"
    as_other = auth_headers(other, "investigator", employee_id=other)
    hidden = await act(system, as_other, restricted, "notes", {"body": "let me in"})
    assert hidden.status_code == 404

    # Staff who reported a case themselves see it as its reporter and may not work it.
    priya = auth_headers("A-1001", "hr_agent", "employee", employee_id="A-1001")
    own = await raise_case(
        system,
        headers=priya,
        reporter={"employee_id": "A-1001", "name": "Priya Shah", "email": "priya@example.com"},
    )
    refused = await act(system, priya, own, "notes", {"body": "note on my own case"})
    assert refused.status_code == 403 and "reported this case" in refused.json()["detail"]


async def test_internal_notes_stay_with_staff(system, capture):
    case_id = await raise_case(system)
    internal = await act(system, AS_AGENT, case_id, "notes", {"body": "Payroll cut-off missed."})
    shared = await act(
        system,
        AS_AGENT,
        case_id,
        "notes",
        {"body": "We will correct this in the next pay run.", "internal": False},
    )
    assert internal.status_code == shared.status_code == 202, internal.text
    assert (await act(system, AS_AGENT, case_id, "notes", {"body": " "})).status_code == 422

    async with client(system, AS_AGENT) as agent:
        notes = (await agent.get(f"/api/v1/cases/{case_id}")).json()["notes"]
    assert [(n["body"], n["internal"], n["author_id"]) for n in notes] == [
        ("Payroll cut-off missed.", True, "A-1001"),
        ("We will correct this in the next pay run.", False, "A-1001"),
    ]
    async with client(system, AS_SAM) as sam:
        notes = (await sam.get(f"/api/v1/cases/{case_id}")).json()["notes"]
    assert [(n["body"], n["author_id"]) for n in notes] == [
        ("We will correct this in the next pay run.", None)
    ]

    event = await capture.wait(lambda e: e["event_id"] == internal.json()["event_id"])
    assert event["event_type"] == "case.note_added" and event["case_id"] == case_id
    assert event["actor"] == {"type": "agent", "id": "A-1001"}
    assert event["payload"]["note_id"] == internal.json()["note_id"]
    assert event["payload"]["internal"] is True

    # An anonymous reporter sees the shared notes on their report too.
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
    anonymous_id = (
        await capture.wait(
            lambda e: (
                e["event_type"] == "case.submitted"
                and e["payload"]["reference"] == created["reference"]
            )
        )
    )["case_id"]
    await until(system, anonymous_id, lambda v: v.get("status") == "assigned", headers=AS_AGENT)
    for body, shown in (("Checked the rota.", True), ("Internal: ask payroll.", False)):
        note = {"body": body, "internal": not shown}
        assert (await act(system, AS_AGENT, anonymous_id, "notes", note)).status_code == 202
    async with client(system, {"X-Report-Key": created["secret_key"]}) as anonymous:
        report = (await anonymous.get(f"/api/v1/anonymous-reports/{created['reference']}")).json()
    assert [(n["body"], n["author_id"]) for n in report["notes"]] == [("Checked the rota.", None)]


async def test_a_closed_case_takes_only_a_reopen(system):
    case_id = await raise_case(system)
    for to_status in ("resolved", "closed"):
        moved = await act(system, AS_AGENT, case_id, "status", {"to_status": to_status})
        assert moved.status_code == 202, moved.text
        await until(system, case_id, lambda v, s=to_status: v["status"] == s)
    for action, body in {
        "notes": {"body": "too late"},
        "status": {"to_status": "in_progress"},
        "category": {"category": "grievance", "reason": "late change"},
        "assignment": {"owner_id": "A-1002", "reason": "late change"},
    }.items():
        headers = AS_MANAGER if action == "assignment" else AS_AGENT
        refused = await act(system, headers, case_id, action, body)
        assert refused.status_code == 409, (action, refused.text)
        assert "closed" in refused.json()["detail"]
    reopened = await act(
        system, AS_AGENT, case_id, "status", {"to_status": "reopened", "reason": "not fixed"}
    )
    assert reopened.status_code == 202, reopened.text
    await until(system, case_id, lambda v: v["status"] == "in_progress")


def test_portal_forms_for_staff(system):
    with httpx.Client(base_url=system.url("intake"), timeout=10) as api:
        accepted = api.post(
            "/api/v1/cases",
            headers=AS_SAM,
            json={
                "subject": "Leave balance looks wrong",
                "description": "My leave balance is two days short this year.",
                "reporter": SAM,
                "category": "leave_query",
            },
        )
        case_id = accepted.json()["case_id"]
        # Until routing has classified it, a case is hidden from agents (as it should be).
        wait_for(
            lambda: (
                api.get(f"/api/v1/cases/{case_id}", headers=AS_SAM).json()["status"] == "assigned"
            ),
            timeout=DEADLINE,
            what="case routed",
        )
    page_url = f"/portal/cases/{case_id}"
    # The portal takes the bearer header as well as its session cookie.
    with httpx.Client(base_url=system.url("intake"), timeout=10, headers=AS_AGENT) as agent:
        page = agent.get(page_url)
        assert page.status_code == 200
        for label in ('for="note_body"', 'for="status_to_status"', 'for="category_category"'):
            assert label in page.text
        assert 'for="assignment_owner_id"' not in page.text  # managers only
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

        forged = agent.post(f"{page_url}/notes", data={"note_body": "forged"})
        assert forged.status_code == 403
        empty = agent.post(f"{page_url}/notes", data={"csrf_token": token, "note_body": " "})
        assert empty.status_code == 422 and 'id="note_body-error"' in empty.text
        added = agent.post(
            f"{page_url}/notes", data={"csrf_token": token, "note_body": "Checked the rota."}
        )
        assert added.status_code == 303
        shown = agent.get(added.headers["location"])
        assert "Your note was added to the case." in shown.text
        assert "Internal note" in shown.text and "Checked the rota." in shown.text
        shared = agent.post(
            f"{page_url}/notes",
            data={"csrf_token": token, "note_body": "Two days restored.", "note_shared": "yes"},
        )
        assert shared.status_code == 303
        moved = agent.post(
            f"{page_url}/status",
            data={"csrf_token": token, "status_to_status": "in_progress", "status_reason": ""},
        )
        assert moved.status_code == 303
        assert "Status change requested" in agent.get(moved.headers["location"]).text

    with httpx.Client(base_url=system.url("intake"), timeout=10, headers=AS_MANAGER) as manager:
        assert 'for="assignment_owner_id"' in manager.get(page_url).text
    with httpx.Client(base_url=system.url("intake"), timeout=10, headers=AS_SAM) as sam:
        mine = sam.get(page_url).text
        assert "Two days restored." in mine and "Checked the rota." not in mine
        assert "Work on this case" not in mine


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
async def test_a_manager_works_a_case_in_the_browser(system, browser, tmp_path):
    case_id = await raise_case(system)
    # No JavaScript: the forms must work as plain HTML.
    context = await browser.new_context(base_url=system.url("intake"), java_script_enabled=False)
    page = await context.new_page()
    await page.goto("/portal/sign-in")
    await page.get_by_label(re.compile("Victor Almeida")).check()
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/portal/work-queue")

    await page.goto(f"/portal/cases/{case_id}")
    await page.get_by_label("Add a note").fill("Spoke to payroll; fix in the next run.")
    await page.get_by_label("Show this note to the employee").check()
    await page.get_by_role("button", name="Add note").click()
    await page.wait_for_url("**?done=note#case-actions")
    assert await page.get_by_role("status").inner_text() == "Your note was added to the case."
    assert await page.get_by_text("Shared with the employee · Victor Almeida").count() == 1

    await page.get_by_label("Change status").select_option("waiting_on_employee")
    await page.get_by_label("Reason", exact=False).first.fill("Asked for timesheets")
    await page.get_by_role("button", name="Request status change").click()
    await page.wait_for_url("**?done=status#case-actions")
    await until(system, case_id, lambda v: v["status"] == "waiting_on_employee")

    owner = (await until(system, case_id, lambda v: True))["assignment"]["owner_id"]
    new_owner = next(o for o in ("A-1001", "A-1002", "A-1003") if o != owner)
    await page.get_by_label(re.compile("^Reassign to")).fill(new_owner)
    await page.get_by_label("Reason for the reassignment").fill("Ana knows this payroll area")
    await page.get_by_role("button", name="Request reassignment").click()
    await page.wait_for_url("**?done=assignment#case-actions")
    await until(system, case_id, lambda v: v["assignment"]["owner_id"] == new_owner)
    await page.screenshot(path=str(tmp_path / "agent-actions.png"), full_page=True)
    await context.close()


async def test_p1_cases_are_visibly_different_for_staff(system):
    urgent = await raise_case(
        system,
        subject="My supervisor threatened me",
        description="My supervisor threatened me with violence in the car park yesterday.",
    )
    calm = await raise_case(system)
    urgent_view = await until(system, urgent, lambda v: v["priority"] == "P1")
    assert urgent_view["priority"] == "P1"
    async with client(system, AS_MANAGER) as manager:
        urgent_page = (await manager.get(f"/portal/cases/{urgent}")).text
        calm_page = (await manager.get(f"/portal/cases/{calm}")).text
    assert 'class="priority-p1">P1 · urgent' in urgent_page
    assert 'class="priority-p1"' not in calm_page
    async with client(system, AS_SAM) as employee:  # the reporter never sees triage labels
        assert 'class="priority-p1"' not in (await employee.get(f"/portal/cases/{urgent}")).text


async def test_a_request_routing_refuses_is_shown_to_staff_with_the_reason(system, capture):
    case_id = await raise_case(system)
    request = await act(
        system, AS_MANAGER, case_id, "assignment", {"owner_id": "X-999", "reason": "cover"}
    )
    assert request.status_code == 202  # intake records it; routing decides

    refusal = await capture.wait(
        lambda e: (
            e["event_type"] == "case.request_refused"
            and e["payload"]["request_event_id"] == request.json()["event_id"]
        )
    )
    assert "not HR staff" in refusal["payload"]["reason"]

    def refusal_noted(view: dict[str, Any]) -> bool:
        return any("was not applied" in n["body"] for n in view.get("notes", []))

    view = await until(system, case_id, refusal_noted, headers=AS_MANAGER)
    (note,) = [n for n in view["notes"] if "was not applied" in n["body"]]
    assert note["internal"] is True and "not HR staff" in note["body"]
    assert view["assignment"]["owner_id"] != "X-999"
    reporter_view = await until(system, case_id, lambda v: True)  # as the reporter
    assert not any("was not applied" in n["body"] for n in reporter_view.get("notes", []))
