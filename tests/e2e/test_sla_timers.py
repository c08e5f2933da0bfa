"""SLA timers through the real system: intake's API in, routing's timer loop, notifications'
mails out. One escalation mail per case per ladder level (not one per clock), and no
"due soon" mail for a deadline already past."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import yaml

from services.routing.domain.policy import DEFAULT_POLICY_FILE
from tests.support.auth import auth_headers
from tests.support.bus import capture_events
from tests.support.system import running_system

CLOCKS = ("first_response", "resolution")
ALL_WEEK = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
REPORTER = {"employee_id": "E-8801", "name": "Lee Grant", "email": "lee.grant@example.com"}
AS_REPORTER = auth_headers("u-lee", "employee", employee_id=REPORTER["employee_id"])
AS_MANAGER = auth_headers("M-9001", "hr_manager", employee_id="M-9001")
# Working hours, round the clock: 0.001 h = 3.6 s.
TARGETS = {
    "P1": {"first_response_hours": 0.001, "resolution_hours": 0.002},
    "P2": {"first_response_hours": 0.001, "resolution_hours": 0.002},
    "P3": {"first_response_hours": 0.001, "resolution_hours": 1},
    "P4": {"first_response_hours": 0.01, "resolution_hours": 1},
}


def timer_policy(path: Path) -> Path:
    raw = copy.deepcopy(yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8")))
    for calendar in raw["calendars"].values():
        calendar["hours"] = ALL_WEEK
    raw["sla"] = {"warn_at": 0.5, "targets": TARGETS}
    for ladder in raw["escalation_ladders"].values():
        for index, level in enumerate(ladder):
            level["after_breach_hours"] = index * 0.0005  # levels 1.8 s apart
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir, tmp_path_factory):
    policy = timer_policy(tmp_path_factory.mktemp("timer-policy") / "timers.yaml")
    with running_system(
        database_url,
        rabbitmq_url,
        logs_dir / "sla-timers",
        ROUTING_POLICY_FILE=str(policy),
        ROUTING_TIMER_INTERVAL="0.2",
    ) as running:
        yield running


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 60) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def raise_case(system: Any, **fields: Any) -> tuple[str, str]:
    body = {
        "subject": "Payslip is missing my overtime",
        "description": "My overtime from October is not on my November payslip.",
        "reporter": REPORTER,
        "category": "payroll_query",
        **fields,
    }
    async with httpx.AsyncClient(
        base_url=system.url("intake"), timeout=10, headers=AS_REPORTER
    ) as c:
        accepted = await c.post("/api/v1/cases", json=body)
    assert accepted.status_code == 202, accepted.text
    return accepted.json()["case_id"], accepted.json()["reference"]


async def settled(admin_pool: Any, case_id: str, clocks: tuple[str, ...] = CLOCKS) -> bool:
    """Every timer of the clocks fired and notifications handled every event they caused."""
    case = UUID(case_id)
    pending = await admin_pool.fetchval(
        "SELECT count(*) FROM routing.timers WHERE case_id = $1 AND fired_at IS NULL"
        " AND clock = ANY($2::text[])",
        case,
        list(clocks),
    )
    unhandled = await admin_pool.fetchval(
        "SELECT count(*) FROM routing.timers t WHERE t.case_id = $1"
        " AND t.fired_event_id IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM notifications.inbox i WHERE i.event_id = t.fired_event_id)",
        case,
    )
    return bool(pending == 0 and unhandled == 0)


def mails_about(system: Any, reference: str) -> list[tuple[str, str]]:
    """(recipient, subject) of every mail about the case."""
    return [
        (str(m["To"]), str(m["Subject"]))
        for m in system.mail.received()
        if str(m["Subject"]).startswith(f"[{reference}]")
    ]


async def test_each_ladder_level_is_escalated_once_per_case_not_once_per_clock(
    system, admin_pool, amqp
):
    async with capture_events(amqp) as capture:
        # Discrimination: P2, both clocks breach within seconds and climb the whole ladder.
        case_id, reference = await raise_case(system, category="discrimination")
        await eventually(
            lambda: _has(admin_pool, case_id, "SELECT owner_id FROM routing.cases"), "routed"
        )
        await eventually(lambda: settled(admin_pool, case_id), "every timer fired and mailed")
        breaches = await admin_pool.fetchval(
            "SELECT count(*) FROM routing.timers WHERE case_id = $1 AND kind = 'breach'"
            " AND fired_event_id IS NOT NULL",
            UUID(case_id),
        )
        assert breaches == 2  # both clocks did breach
        escalations = [
            m
            for m in await _drain(capture)
            if m["case_id"] == case_id and m["event_type"] == "case.escalated"
        ]
    levels = Counter(e["payload"]["level"] for e in escalations)
    assert levels and all(n == 1 for n in levels.values()), levels
    mails = [
        (to, subject) for to, subject in mails_about(system, reference) if "escalated" in subject
    ]
    per_level = Counter(re.search(r"level (\d)", subject).group(1) for _, subject in mails)  # type: ignore[union-attr]
    assert per_level == Counter({str(level): 1 for level in levels}), mails
    # The sensitive ladder to its top (M-9002, M-9002, M-9003): one mail per level.
    assert max(levels) == 3
    assert len(mails) == len(set(mails))


async def test_no_due_soon_warning_for_a_deadline_already_past(system, admin_pool, amqp):
    async with capture_events(amqp) as capture:
        # P4: 36 s of first response, warning at 18 s. After ~6 s it becomes a grievance
        # (P3: 3.6 s): the new deadline is already past. A breach, never "due soon".
        case_id, reference = await raise_case(system)
        await eventually(
            lambda: _has(admin_pool, case_id, "SELECT owner_id FROM routing.cases"),
            "routed",
        )
        await asyncio.sleep(6)  # working time used, past the new target (3.6 s)
        async with httpx.AsyncClient(
            base_url=system.url("intake"), timeout=10, headers=AS_MANAGER
        ) as c:
            moved = await c.post(
                f"/api/v1/cases/{case_id}/category",
                json={"category": "grievance", "reason": "about the manager refusing overtime"},
            )
        assert moved.status_code == 202, moved.text
        await eventually(
            lambda: _has(
                admin_pool,
                case_id,
                "SELECT 1 FROM routing.timers WHERE kind = 'breach' AND clock = 'first_response'"
                " AND fired_event_id IS NOT NULL AND case_id = $1 AND true",
            ),
            "first response breached",
        )
        await eventually(
            lambda: settled(admin_pool, case_id, ("first_response",)), "every due timer mailed"
        )
        events = [m for m in await _drain(capture) if m["case_id"] == case_id]
    warnings = [
        e
        for e in events
        if e["event_type"] == "case.sla_warning" and e["payload"]["clock"] == "first_response"
    ]
    assert warnings == []
    subjects = [subject for _, subject in mails_about(system, reference)]
    assert any("First response deadline missed" in s for s in subjects), subjects
    assert not any("First response due soon" in s for s in subjects), subjects


async def _has(admin_pool: Any, case_id: str, query: str) -> bool:
    if "$1" not in query:
        query += " WHERE case_id = $1"
    return bool(await admin_pool.fetchval(query, UUID(case_id)))


async def _drain(capture: Any) -> list[dict[str, Any]]:
    """Everything captured so far (reads the queue until it is empty)."""
    with contextlib.suppress(AssertionError):
        await capture.wait(lambda e: False, timeout=1.0)
    return list(capture.events)
