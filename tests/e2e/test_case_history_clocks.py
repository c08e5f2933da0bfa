"""SLA warnings, breaches and escalations reach a case's history on the running system
(routing's timer loop with seconds-long targets), with whom it was escalated to by name."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.e2e.test_sla_timers import AS_REPORTER, REPORTER, timer_policy
from tests.support.auth import auth_headers
from tests.support.system import running_system

AS_MANAGER = auth_headers("M-9002", "hr_manager", employee_id="M-9002")


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir, tmp_path_factory):
    policy = timer_policy(tmp_path_factory.mktemp("history-timers") / "timers.yaml")
    with running_system(
        database_url,
        rabbitmq_url,
        logs_dir / "history-clocks",
        ROUTING_POLICY_FILE=str(policy),
        ROUTING_TIMER_INTERVAL="0.2",
    ) as running:
        yield running


async def test_clock_events_are_in_the_history(system):
    body = {
        "subject": "Passed over for promotion",
        "description": "I was passed over for promotion because of my age, twice this year.",
        "reporter": REPORTER,
        "category": "discrimination",  # P2: both clocks breach within seconds
    }
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as c:
        accepted = await c.post("/api/v1/cases", json=body, headers=AS_REPORTER)
        assert accepted.status_code == 202, accepted.text
        case_id = accepted.json()["case_id"]
        deadline = asyncio.get_running_loop().time() + 60
        # A warning too, unless the machine is so slow the deadline passed first (routing
        # sends no "due soon" for a deadline already past).
        wanted = {"sla_breached", "escalated"}
        while True:
            response = await c.get(f"/api/v1/cases/{case_id}/history", headers=AS_MANAGER)
            entries: list[dict[str, Any]] = (
                response.json()["entries"] if response.status_code == 200 else []
            )
            if wanted <= {e["kind"] for e in entries}:
                break
            assert asyncio.get_running_loop().time() < deadline, entries
            await asyncio.sleep(0.3)
    breached = next(e for e in entries if e["kind"] == "sla_breached")
    assert breached["summary"]["clock"] in ("first_response", "resolution")
    assert breached["actor"]["name"] == "SLA timer"
    escalated = next(e for e in entries if e["kind"] == "escalated")
    target = escalated["summary"]
    assert target["escalated_to_name"] and target["escalated_to_name"] != target["escalated_to_id"]
    assert escalated["description"].startswith(
        f"Escalated (level 1) to {target['escalated_to_name']}"
    )
    # In time order: warned before breached before escalated.
    order = [e["kind"] for e in entries]
    assert order.index("sla_breached") < order.index("escalated")
    if "sla_warning" in order:
        assert order.index("sla_warning") < order.index("sla_breached")
