"""The process on a case from the staff side, through intake on the real broker and Postgres.

Intake's doors record each request (process switch, stage move, process role, conflict)
and publish it through the outbox; routing (running here for routing and assigning the
case) decides on processes in its own module: these tests publish routing's process
decisions (case.process_assigned, case.stage_entered, case.process_role_assigned,
case.request_refused) onto the bus as routing would, and check intake's projection, its
access rules and its answers. The case is a harassment complaint: restricted, owned by an
investigator of the investigations team. The queues of services not running here (audit,
notifications) are purged afterwards so no later module reads these stand-in decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from hrcase.services import QUEUES
from shared.envelope import Actor
from shared.events import (
    CaseProcessAssigned,
    CaseProcessRoleAssigned,
    CaseRequestRefused,
    CaseStageDueSoon,
    CaseStageEntered,
    CaseStageOverdue,
    EventPayload,
    Person,
    ProcessStage,
    make_event,
)
from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, PNG_MAGIC, needs_chromium
from tests.support.auth import auth_headers
from tests.support.bus import capture_events, publish_envelope, purge
from tests.support.processes import policy_without_processes
from tests.support.system import running_system

REPORTER = {"employee_id": "E-7001", "name": "Sam Rivera", "email": "sam.rivera@example.com"}
AS_REPORTER = auth_headers("u-sam", "employee", employee_id="E-7001")
AS_OTHER_EMPLOYEE = auth_headers("u-alex", "employee", employee_id="E-7002")
AS_AGENT = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
AS_MANAGER = auth_headers("M-9002", "hr_manager", employee_id="M-9002")
# Omar is in the investigations team without the harassment skill: never the owner here.
AS_OMAR = auth_headers("A-3002", "investigator", employee_id="A-3002")
OMAR = Person(id="A-3002", name="Omar Haddad", email="omar.haddad@example.com")
DEADLINE = 30.0
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
STAGES = [
    ProcessStage(name="planning", label="Planning", target_working_days=5),
    ProcessStage(name="interviews", label="Interviews", target_working_days=15),
    ProcessStage(name="findings", label="Findings", target_working_days=10),
    ProcessStage(name="outcome", label="Outcome and approval", target_working_days=5),
    ProcessStage(name="appeal_window", label="Appeal window"),
    ProcessStage(name="appeal", label="Appeal", target_working_days=20),
    ProcessStage(name="closed", label="Closed"),
]
ENDINGS = ["outcome_final", "withdrawn", "referred_on"]


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir, tmp_path_factory):
    # Routing routes the cases but, with no processes in its policy, leaves the process
    # decisions to this module, which publishes them as routing would.
    policy = policy_without_processes(tmp_path_factory.mktemp("policy") / "policy.yaml")
    with running_system(
        database_url,
        rabbitmq_url,
        logs_dir / "process-staff",
        only=("intake", "routing"),
        ROUTING_POLICY_FILE=str(policy),
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def purged_afterwards(amqp, system):
    """Audit and notifications do not run here: drop what queued for them."""
    yield
    for service in ("audit", "notifications"):
        for name in QUEUES[service].queue_names:
            with contextlib.suppress(Exception):
                await purge(amqp, name)


@pytest.fixture
async def capture(amqp, system, purged_afterwards):
    async with capture_events(amqp) as captured:
        yield captured


def client(system, headers=None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.url("intake"), timeout=10, headers=headers)


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def raise_harassment_case(system) -> tuple[str, str, str]:
    """(case_id, reference, owner_id) of a harassment case routing has assigned."""
    body = {
        "subject": "Harassment by a colleague",
        "description": "A colleague keeps making inappropriate comments about me in meetings.",
        "reporter": REPORTER,
        "category": "harassment",
    }
    async with client(system, AS_REPORTER) as c:
        accepted = await c.post("/api/v1/cases", json=body)
        assert accepted.status_code == 202, accepted.text
        case_id: str = accepted.json()["case_id"]
    async with client(system, AS_MANAGER) as c:

        async def assigned() -> dict[str, Any] | None:
            view = (await c.get(f"/api/v1/cases/{case_id}")).json()
            return view if view.get("status") == "assigned" else None

        view = await eventually(assigned, "the case assigned")
    owner_id: str = view["assignment"]["owner_id"]
    assert view["sensitivity"] == "restricted" and owner_id != OMAR.id
    return case_id, accepted.json()["reference"], owner_id


async def as_routing(amqp, case_id: str, payload: EventPayload) -> UUID:
    """Publish `payload` on the bus as routing's decision on the case."""
    envelope = make_event(
        payload,
        producer="routing",
        actor=Actor(type="service", id="routing"),
        case_id=UUID(case_id),
    )
    await publish_envelope(amqp, envelope)
    return envelope.event_id


async def put_in_investigation(amqp, case_id: str, ref: str) -> datetime:
    """Routing's policy default for harassment: the investigation, at its planning stage
    (target in 5 working days). Returns the target instant."""
    target = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0)
    await as_routing(
        amqp,
        case_id,
        CaseProcessAssigned(
            reference=ref, process="investigation", label="Investigation", stages=STAGES,
            endings=ENDINGS, assigned_by="policy",
        ),
    )  # fmt: skip
    await as_routing(
        amqp,
        case_id,
        CaseStageEntered(
            reference=ref, process="investigation", stage="planning", label="Planning",
            direction="start", target_at=target, due_soon_at=target - timedelta(days=1),
        ),
    )  # fmt: skip
    return target


async def process_of(system, case_id: str, headers=AS_MANAGER) -> dict[str, Any]:
    async with client(system, headers) as c:
        found = await c.get(f"/api/v1/cases/{case_id}/process")
    assert found.status_code == 200, found.text
    result: dict[str, Any] = found.json()
    return result


async def until_process(system, case_id: str, check, what: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        found = await process_of(system, case_id)
        return found if check(found) else None

    result: dict[str, Any] = await eventually(reached, what)
    return result


async def post(system, headers, path: str, body: dict[str, Any]) -> httpx.Response:
    async with client(system, headers) as c:
        return await c.post(path, json=body)


async def test_an_investigator_sees_the_case_only_once_routing_names_them(
    system, amqp, capture
) -> None:
    case_id, ref, _owner = await raise_harassment_case(system)
    async with client(system, AS_OMAR) as omar:
        # Not the owner, no role: the case is as good as missing, everywhere.
        assert (await omar.get(f"/api/v1/cases/{case_id}")).status_code == 404
        assert (await omar.get(f"/api/v1/cases/{case_id}/process")).status_code == 404
        refused = await omar.post(f"/api/v1/cases/{case_id}/stage", json={"stage": "interviews"})
        assert refused.status_code == 404
        queue = (await omar.get("/api/v1/work-queue", params={"scope": "all"})).json()
        assert case_id not in {item["case_id"] for item in queue["items"]}

        await put_in_investigation(amqp, case_id, ref)
        await as_routing(
            amqp,
            case_id,
            CaseProcessRoleAssigned(
                reference=ref, process="investigation", role="investigator", person=OMAR
            ),
        )
        await until_process(
            system,
            case_id,
            lambda p: any(r["staff_id"] == OMAR.id for r in p["roles"]),
            "Omar the investigator",
        )
        seen = await omar.get(f"/api/v1/cases/{case_id}")
        assert seen.status_code == 200, seen.text
        # Every read of the restricted case by staff is audited, Omar's too.
        await capture.wait(
            lambda e: (
                e["event_type"] == "audit.case_viewed"
                and e["case_id"] == case_id
                and e["payload"]["viewer"] == OMAR.id
            )
        )
        view = (await omar.get(f"/api/v1/cases/{case_id}/process")).json()
        assert view["roles"][0]["role"] == "investigator"
        # His queue shows it, under "mine" too, and he may act on it.
        mine = (await omar.get("/api/v1/work-queue", params={"scope": "mine"})).json()
        assert case_id in {item["case_id"] for item in mine["items"]}
        assert mine["counts"]["mine"] >= 1
        moved = await omar.post(f"/api/v1/cases/{case_id}/stage", json={"stage": "interviews"})
        assert moved.status_code == 202, moved.text


async def test_staff_read_the_process_and_ask_routing_to_change_it(system, amqp, capture) -> None:
    case_id, ref, _owner = await raise_harassment_case(system)
    # Before routing puts it in a process: shown as none; a stage move is refused early.
    # (Once routing's own process module runs here, it may have put the case in its
    # process already: then there is nothing to see.)
    empty = await process_of(system, case_id)
    if empty["process"] is None:
        assert empty["stages"] == [] and empty["clock"] is None
        early = await post(
            system, AS_MANAGER, f"/api/v1/cases/{case_id}/stage", {"stage": "planning"}
        )
        assert early.status_code == 409 and "not in a process" in early.json()["detail"]

    target = await put_in_investigation(amqp, case_id, ref)
    view = await until_process(
        system, case_id, lambda p: (p["process"] or {}).get("stage") == "planning", "planning"
    )
    assert view["process"]["label"] == "Investigation"
    assert [(s["name"], s["position"]) for s in view["stages"]][:2] == [
        ("planning", "current"),
        ("interviews", "next"),
    ]
    assert view["endings"] == ENDINGS and view["final_stage"] == "closed"
    clock = view["clock"]
    assert datetime.fromisoformat(clock["target_at"]) == target
    assert clock["state"] == "on_track" and clock["time_zone"] == view["time_zone"]
    # The investigations desk's zone (routing's roster), not UTC, is how the team reads it.
    assert datetime.fromisoformat(clock["target_at_local"]) == target
    assert view["last_refusal"] is None

    # Requests: each 202 with its event id, published for routing to decide.
    stage = await post(
        system, AS_MANAGER, f"/api/v1/cases/{case_id}/stage", {"stage": "interviews"}
    )
    assert stage.status_code == 202, stage.text
    assert stage.json()["event_type"] == "case.stage_change_requested"
    stage_event = await capture.wait(lambda e: e["event_id"] == stage.json()["event_id"])
    assert stage_event["payload"]["stage"] == "interviews"
    assert stage_event["actor"] == {"type": "agent", "id": "M-9002"}
    switch = await post(
        system, AS_MANAGER, f"/api/v1/cases/{case_id}/process",
        {"process": "disciplinary", "reason": "Both parties asked for a disciplinary hearing"},
    )  # fmt: skip
    # Intake does not know the policy's list of processes: routing refuses one it lacks.
    assert switch.status_code == 202, switch.text
    switched = await capture.wait(lambda e: e["event_id"] == switch.json()["event_id"])
    assert switched["event_type"] == "case.process_change_requested"
    assert switched["payload"]["process"] == "disciplinary"
    role = await post(
        system, AS_MANAGER, f"/api/v1/cases/{case_id}/process-roles",
        {"role": "investigator", "staff_id": "A-3003"},
    )  # fmt: skip
    assert role.status_code == 202, role.text
    asked = await capture.wait(lambda e: e["event_id"] == role.json()["event_id"])
    assert asked["payload"]["role"] == "investigator" and asked["payload"]["staff_id"] == "A-3003"
    conflict = await post(
        system, AS_MANAGER, f"/api/v1/cases/{case_id}/conflicts",
        {"reason": "I line-manage the respondent's team"},
    )  # fmt: skip
    assert conflict.status_code == 202, conflict.text
    declared = await capture.wait(lambda e: e["event_id"] == conflict.json()["event_id"])
    assert declared["event_type"] == "case.conflict_declared"
    assert declared["payload"]["staff_id"] == "M-9002"  # the signed-in person by default

    # What intake already knows cannot apply: 409 with the reason.
    for body, words in (
        ({"stage": "ground_rules"}, "no stage 'ground_rules'"),
        ({"stage": "closed", "ending": "resolved_by_agreement"}, "no ending"),
        ({"stage": "findings", "ending": "withdrawn"}, "only with the final stage"),
        ({"stage": "closed", "ending": "withdrawn"}, "needs a reason"),
        ({"stage": "planning"}, "already in the Planning stage"),
    ):
        answer = await post(system, AS_MANAGER, f"/api/v1/cases/{case_id}/stage", body)
        assert answer.status_code == 409 and words in answer.json()["detail"], answer.text

    # Routing refuses the stage move: the process view says why.
    await as_routing(
        amqp,
        case_id,
        CaseRequestRefused(
            reference=ref,
            request_event_id=UUID(stage.json()["event_id"]),
            request_type="case.stage_change_requested",
            reason="the interviews stage requires: investigator_assigned, allegation_recorded",
        ),
    )
    refused = await until_process(
        system, case_id, lambda p: p["last_refusal"] is not None, "routing's refusal"
    )
    assert refused["last_refusal"]["request"] == "stage change"
    assert "allegation_recorded" in refused["last_refusal"]["reason"]
    assert [c["staff_id"] for c in refused["conflicts"]] == ["M-9002"]

    # The stage clock: due soon, then overdue and escalated.
    clock_fields = {"reference": ref, "process": "investigation", "stage": "planning",
                    "label": "Planning", "target_at": target}  # fmt: skip
    await as_routing(amqp, case_id, CaseStageDueSoon(**clock_fields))
    await until_process(system, case_id, lambda p: p["clock"]["state"] == "due_soon", "due soon")
    victor = Person(id="M-9002", name="Victor Almeida", email="victor.almeida@example.com")
    await as_routing(amqp, case_id, CaseStageOverdue(**clock_fields, escalated_to=victor))
    overdue = await until_process(
        system, case_id, lambda p: p["clock"]["state"] == "overdue", "overdue"
    )
    assert overdue["clock"]["state_label"] == "Overdue"

    # The history tells the process in words.
    async with client(system, AS_MANAGER) as c:
        history = (await c.get(f"/api/v1/cases/{case_id}/history")).json()["entries"]
    lines = [entry["description"] for entry in history]
    assert "Process: Investigation (by the policy for the category)" in lines
    assert any(line.startswith("Stage: Planning, target") for line in lines)
    assert "Requested a move to the Interviews stage" in lines
    assert (
        "Requested a switch to the disciplinary process: Both parties asked for a"
        " disciplinary hearing" in lines
    )
    assert any(
        line.startswith("Requested stage change was refused: the interviews") for line in lines
    )

    # The process ends (withdrawn): no more moves, switches or roles.
    await as_routing(
        amqp,
        case_id,
        CaseStageEntered(
            reference=ref, process="investigation", stage="closed", label="Closed",
            previous_stage="planning", direction="final", ending="withdrawn",
            reason="The complainant withdrew the complaint",
        ),
    )  # fmt: skip
    ended = await until_process(system, case_id, lambda p: p["process"]["ended"], "the ending")
    assert ended["process"]["ending"] == "withdrawn" and ended["clock"]["state"] == "ended"
    assert [s["position"] for s in ended["stages"]] == ["done"] * 6 + ["current"]
    for path, body in (
        ("stage", {"stage": "planning", "reason": "reopened"}),
        ("process", {"process": "query", "reason": "light touch now"}),
        ("process-roles", {"role": "appeal_hearer", "staff_id": "A-3003"}),
    ):
        answer = await post(system, AS_MANAGER, f"/api/v1/cases/{case_id}/{path}", body)
        assert answer.status_code == 409 and "has ended (withdrawn)" in answer.json()["detail"]


async def test_who_may_not_and_bad_input(system) -> None:
    case_id, _ref, _owner = await raise_harassment_case(system)
    path = f"/api/v1/cases/{case_id}"
    # Employees (the reporter included) have no staff door: 403; an agent who may not read
    # the restricted case: 404, as for a missing case.
    for headers, code in ((AS_REPORTER, 403), (AS_OTHER_EMPLOYEE, 403), (AS_AGENT, 404)):
        async with client(system, headers) as c:
            assert (await c.get(f"{path}/process")).status_code == code
            answer = await c.post(f"{path}/conflicts", json={"reason": "I know the reporter"})
            assert answer.status_code == code
    async with client(system, AS_MANAGER) as c:
        missing = await c.get(f"/api/v1/cases/{uuid4()}/process")
        assert missing.status_code == 404
    # A token whose subject is no staff id must say whom the conflict is about.
    client_token = auth_headers("svc client/1", "hr_manager")
    async with client(system, client_token) as c:
        answer = await c.post(f"{path}/conflicts", json={"reason": "I know the reporter"})
        assert answer.status_code == 422 and "staff_id" in answer.json()["detail"]
        named = await c.post(
            f"{path}/conflicts", json={"staff_id": "A-3003", "reason": "I know the reporter"}
        )
        assert named.status_code == 202, named.text
        for suffix, body, field in (
            ("stage", {}, "stage"),
            ("stage", {"stage": "Interviews!"}, "stage"),
            ("stage", {"stage": "closed", "ending": "x" * 65}, "ending"),
            ("process", {"process": "case_management"}, "reason"),
            ("process", {"process": "query", "reason": "a\u0000b"}, "reason"),
            ("process-roles", {"role": "judge", "staff_id": "A-3003"}, "role"),
            ("process-roles", {"role": "investigator"}, "staff_id"),
            ("conflicts", {"staff_id": "A 3003", "reason": "I know them"}, "staff_id"),
            ("conflicts", {"reason": ""}, "reason"),
        ):
            answer = await c.post(f"{path}/{suffix}", json=body)
            assert answer.status_code == 422, (suffix, body, answer.text)
            fields = {str(e["loc"][-1]) for e in answer.json()["detail"]}
            assert field in fields, (suffix, body, answer.text)


@needs_chromium
async def test_a_manager_moves_the_stage_in_the_browser(system, amqp, capture, tmp_path) -> None:
    from playwright.async_api import async_playwright

    case_id, ref, _owner = await raise_harassment_case(system)
    await put_in_investigation(amqp, case_id, ref)
    await until_process(
        system, case_id, lambda p: (p["process"] or {}).get("stage") == "planning", "planning"
    )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        context = await browser.new_context(
            base_url=system.url("intake"), java_script_enabled=False
        )
        page = await context.new_page()
        await page.goto("/portal/sign-in")
        await page.get_by_label(re.compile("Victor Almeida")).check()
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(re.compile(r"/portal/(cases|work-queue)$"))

        await page.goto(f"/portal/cases/{case_id}")
        section = page.locator("#process")
        name = await section.locator("#process-name").inner_text()
        assert name.startswith("Investigation") and "the policy's default" in name
        assert (await section.locator("#stage-planning").get_attribute("aria-current")) == "step"
        assert "On track" in await section.locator("#process-clock").inner_text()
        # An ending belongs to the final stage only: refused here, beside the field, with
        # the choices kept.
        await section.get_by_label("Stage", exact=True).select_option("interviews")
        await section.get_by_label(re.compile("^Ending")).select_option("withdrawn")
        await section.get_by_role("button", name="Request stage move").click()
        error = page.locator("#stage_stage-error")
        assert "only with the final stage" in await error.inner_text()
        assert await page.get_by_label("Stage", exact=True).input_value() == "interviews"
        await page.get_by_label(re.compile("^Ending")).select_option("")
        await page.locator("#stage_reason").fill("Plan agreed with the team")
        await page.get_by_role("button", name="Request stage move").click()
        await page.wait_for_url("**?done=stage#process")
        requested = await capture.wait(
            lambda e: e["event_type"] == "case.stage_change_requested" and e["case_id"] == case_id
        )
        assert requested["payload"]["stage"] == "interviews"
        assert requested["payload"]["reason"] == "Plan agreed with the team"
        assert requested["actor"]["id"] == "M-9002"

        # Routing moves it on: the trail shows planning done, interviews current.
        await as_routing(
            amqp,
            case_id,
            CaseStageEntered(
                reference=ref, process="investigation", stage="interviews",
                label="Interviews", previous_stage="planning", direction="forward",
                target_at=datetime.now(UTC) + timedelta(days=21),
            ),
        )  # fmt: skip

        async def moved() -> bool:
            await page.reload()
            return "stage-done" in (
                await page.locator("#stage-planning").get_attribute("class") or ""
            )

        await eventually(moved, "the trail moved on")
        assert (await page.locator("#stage-interviews").get_attribute("aria-current")) == "step"
        assert await page.locator("#history", has_text="Stage moved on to Interviews").count() == 1

        # A role needs a person from the roster: said beside the field; then Omar.
        await page.locator("#process summary", has_text="Assign a process role").click()
        await page.get_by_role("button", name="Request role assignment").click()
        assert await page.locator("#role_staff_id-error").count() == 1
        await page.get_by_label("Person", exact=True).select_option("A-3002")
        await page.get_by_role("button", name="Request role assignment").click()
        await page.wait_for_url("**?done=process_role#process")
        asked = await capture.wait(
            lambda e: (
                e["event_type"] == "case.process_role_assignment_requested"
                and e["case_id"] == case_id
            )
        )
        assert asked["payload"] == {
            "reference": ref, "role": "investigator", "staff_id": "A-3002", "reason": None,
        }  # fmt: skip
        await page.locator("#process summary", has_text="Declare a conflict").click()
        await page.get_by_label("What the conflict is").fill("The respondent reports to me")
        await page.get_by_role("button", name="Declare conflict").click()
        await page.wait_for_url("**?done=conflict#process")
        declared = await capture.wait(
            lambda e: e["event_type"] == "case.conflict_declared" and e["case_id"] == case_id
        )
        assert declared["payload"]["staff_id"] == "M-9002"
        shot = tmp_path / "process-section.png"
        await section.screenshot(path=str(shot))
        assert shot.read_bytes().startswith(PNG_MAGIC)
        # Refresh the committed screenshot only when asked, leaving the checkout as it was:
        # HRCASE_UPDATE_SCREENSHOTS=1 pytest tests/e2e/test_process_staff.py
        if os.environ.get("HRCASE_UPDATE_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOTS / "process-staff.png"), full_page=True)
        await context.close()
        await browser.close()
