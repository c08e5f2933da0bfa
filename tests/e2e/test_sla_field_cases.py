"""SLA field cases driven through the real system (intake's HTTP API, routing on the bus).

recat-after-first-response.steps.json: after a re-categorisation, a case whose first
response was already met keeps showing the deadline it met, not the moment of the change.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.auth import auth_headers
from tests.support.infra import ROOT
from tests.support.system import running_system

STEPS = ROOT / "tests" / "fixtures" / "field_cases" / "recat-after-first-response.steps.json"
DEADLINE = 20.0


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(
        database_url, rabbitmq_url, logs_dir / "sla-field-cases", only=("intake", "routing")
    ) as running:
        yield running


async def until(
    c: httpx.AsyncClient, case_id: str, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while True:
        view: dict[str, Any] = (await c.get(f"/api/v1/cases/{case_id}")).json()
        if predicate(view):
            return view
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the case never reached the expected state: {view}")
        await asyncio.sleep(0.1)


async def test_a_met_first_response_stays_met_after_recategorisation(system):
    steps = list(json.loads(STEPS.read_text("utf-8")).items())
    (_, raise_body), (_, message_body), (_, category_body), (last, _) = steps
    reporter = raise_body["reporter"]
    as_employee = auth_headers("u-noor", "employee", employee_id=reporter["employee_id"])
    as_manager = auth_headers("M-9001", "hr_manager", employee_id="M-9001")
    base = system.url("intake")
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=as_employee) as employee:
        # 1: the employee raises the case
        accepted = await employee.post("/api/v1/cases", json=raise_body)
        assert accepted.status_code == 202, accepted.text
        case_id = accepted.json()["case_id"]
        view = await until(employee, case_id, lambda v: v["status"] == "assigned")
        owner = view["assignment"]["owner_id"]
        met_due = view["sla"]["first_response_due"]
        assert met_due is not None
        # 2: the owner answers: the first response is met
        as_owner = auth_headers(owner, "hr_agent", employee_id=owner)
        async with httpx.AsyncClient(base_url=base, timeout=10, headers=as_owner) as agent:
            sent = await agent.post(f"/api/v1/cases/{case_id}/messages", json=message_body)
            assert sent.status_code == 201, sent.text
        await until(employee, case_id, lambda v: v["status"] == "in_progress")
        # 3: an HR manager re-categorises (payroll -> grievance, another team)
        async with httpx.AsyncClient(base_url=base, timeout=10, headers=as_manager) as manager:
            moved = await manager.post(f"/api/v1/cases/{case_id}/category", json=category_body)
            assert moved.status_code == 202, moved.text
        # 4: GET the case
        assert last.startswith("4 GET")
        view = await until(employee, case_id, lambda v: v["category"] == "grievance")
    shown = datetime.fromisoformat(view["sla"]["first_response_due"])
    assert shown == datetime.fromisoformat(met_due)  # the deadline it met, unchanged
    # Not the moment of the change (today's fault): a P4 first response is 24 working
    # hours after submission, far from now.
    assert abs(shown - datetime.now(UTC)) > timedelta(hours=1)
    # The resolution clock still runs to the new target, from what it had used.
    assert view["sla"]["resolution_due"] is not None
