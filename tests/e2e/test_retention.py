"""Retention through the whole system: a closed case's retention comes due in routing's
timers (its due instant moved into the past in routing's table, as the SLA timer tests
do). Without a hold the case's keys are destroyed, `privacy.retention_erased` is in the
audit log and intake's, routing's and notifications' read models keep only the anonymous
skeleton (the dashboard still counts the case); with a hold a privacy officer placed,
nothing is erased until the hold is released, after which it is. Nothing closes a
resolved case by itself, so retention starts at resolution too (and a later closure
starts it again from the closure)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from shared.privacy.keys import KeyStore
from tests.support.auth import auth_headers
from tests.support.process_flow import eventually
from tests.support.system import running_system

AS_MANAGER = auth_headers("M-9001", "hr_manager", employee_id="M-9001")
AS_OFFICER = auth_headers("PO-1", "privacy_officer")
DESCRIPTION = "My October overtime of 14 hours is not on my payslip; my manager Dev Patel agreed."
NOTE = "Called Nadia: she will send the signed timesheet."
MESSAGE = "Here is the timesheet my manager signed on 3 November."
RESPONDENT = {"name": "Dev Patel", "email": "dev.patel@example.com"}


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(
        database_url, rabbitmq_url, logs_dir / "retention", ROUTING_TIMER_INTERVAL="0.2"
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def keys(database_url):
    store = await KeyStore.open(database_url, service="tests")
    yield store
    await store.close()


def api(system: Any, headers: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.url("intake"), timeout=10, headers=headers)


async def view(system: Any, case_id: str) -> dict[str, Any]:
    async with api(system, AS_MANAGER) as manager:
        answer = await manager.get(f"/api/v1/cases/{case_id}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def closed_case(
    system: Any, keys: KeyStore, employee_id: str, name: str, *, end: str = "closed"
) -> str:
    """A payroll query with a message and a note, routed, then closed (or resolved, with
    `end`); its reporter's key in the case's scope exists (as the sealing at the source
    makes it)."""
    reporter = {"employee_id": employee_id, "name": name, "email": f"{employee_id}@example.com"}
    as_reporter = auth_headers(f"u-{employee_id}", "employee", employee_id=employee_id)
    async with api(system, as_reporter) as c:
        raised = await c.post(
            "/api/v1/cases",
            json={
                "subject": f"Overtime missing for {name}",
                "description": DESCRIPTION,
                "reporter": reporter,
                "category": "payroll_query",
                "respondents": [RESPONDENT],
            },
        )
        assert raised.status_code == 202, raised.text
        case_id = str(raised.json()["case_id"])
        await eventually(
            lambda: _status_is(system, case_id, "assigned"), "the case routed and assigned"
        )
        sent = await c.post(f"/api/v1/cases/{case_id}/messages", json={"body": MESSAGE})
        assert sent.status_code == 201, sent.text
    await keys.key_for(f"employee:{employee_id}", case_id, create=True, purpose="test: seal")
    async with api(system, AS_MANAGER) as manager:
        noted = await manager.post(f"/api/v1/cases/{case_id}/notes", json={"body": NOTE})
        assert noted.status_code == 202, noted.text
        closed = await manager.post(
            f"/api/v1/cases/{case_id}/status", json={"to_status": end, "reason": "paid"}
        )
        assert closed.status_code == 202, closed.text
    await eventually(lambda: _status_is(system, case_id, end), f"the case {end}")
    return case_id


async def _status_is(system: Any, case_id: str, status: str) -> bool:
    return bool((await view(system, case_id))["status"] == status)


async def retention_timer(admin_pool: Any, case_id: str) -> Any:
    return await admin_pool.fetchrow(
        "SELECT * FROM routing.retention_timers WHERE case_id = $1", UUID(case_id)
    )


async def come_due(admin_pool: Any, case_id: str) -> None:
    """The retention period has passed: the timer's due instant moved into the past."""
    done = await admin_pool.execute(
        "UPDATE routing.retention_timers SET due_at = now() - interval '1 second',"
        " fire_at = now() - interval '1 second' WHERE case_id = $1 AND erased_at IS NULL",
        UUID(case_id),
    )
    assert done == "UPDATE 1"


async def erased_in_intake(admin_pool: Any, case_id: str) -> bool:
    return bool(
        await admin_pool.fetchval(
            "SELECT true FROM intake.case_retention_erasures WHERE case_id = $1", UUID(case_id)
        )
    )


async def live_keys(admin_pool: Any, case_id: str) -> int:
    return int(
        await admin_pool.fetchval(
            "SELECT count(*) FROM privacy_keys.data_keys WHERE scope = $1 AND key IS NOT NULL",
            case_id,
        )
    )


async def audited(admin_pool: Any, case_id: str, event_type: str) -> list[dict[str, Any]]:
    rows = await admin_pool.fetch(
        "SELECT payload::text AS payload FROM audit.log WHERE case_id = $1 AND event_type = $2",
        UUID(case_id),
        event_type,
    )
    return [json.loads(r["payload"]) for r in rows]


async def routing_and_notifications_copies(admin_pool: Any, case_id: str) -> dict[str, Any]:
    """What routing and notifications keep of the case: respondents as named, the
    reporter's contact (and the skeleton columns beside them)."""
    respondents = await admin_pool.fetch(
        "SELECT r.named_name, r.named_email, c.category, c.team, c.status"
        " FROM routing.case_respondents r JOIN routing.cases c USING (case_id)"
        " WHERE r.case_id = $1",
        UUID(case_id),
    )
    contact = await admin_pool.fetchrow(
        "SELECT reference, reporter_employee_id, reporter_name, reporter_email, erased_at"
        " FROM notifications.case_contacts WHERE case_id = $1",
        UUID(case_id),
    )
    return {"respondents": [dict(r) for r in respondents], "contact": dict(contact or {})}


async def dashboard(system: Any) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    async with api(system, AS_MANAGER) as manager:
        answer = await manager.get(
            "/api/v1/analytics/dashboard",
            params={"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()},
        )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def assert_skeleton_only(case: dict[str, Any], name: str, status: str = "closed") -> None:
    """The case keeps ids, category, team, dates and status; no personal data is left."""
    text = json.dumps(case)
    for personal in (DESCRIPTION, NOTE, MESSAGE, name, "example.com", "Dev Patel"):
        assert personal not in text, personal
    assert case["status"] == status and case["category"] == "payroll_query"
    assert case["assignment"]["team"] == "hr_operations"
    assert case["reference"] and case["submitted_at"]


async def test_a_closed_case_without_a_hold_is_erased_when_its_retention_comes_due(
    system, keys, admin_pool
):
    name = "Nadia Rahman"
    case_id = await closed_case(system, keys, "E-8851", name)
    timer = await eventually(lambda: retention_timer(admin_pool, case_id), "retention armed")
    assert timer["rule"] == "retention: payroll_query 2 years after closure"
    assert timer["due_at"].year == timer["closed_at"].year + 2
    before = await dashboard(system)
    assert await live_keys(admin_pool, case_id) >= 1
    copies = await routing_and_notifications_copies(admin_pool, case_id)
    assert [(r["named_name"], r["named_email"]) for r in copies["respondents"]] == [
        (RESPONDENT["name"], RESPONDENT["email"])
    ]
    assert copies["contact"]["reporter_name"] == name and copies["contact"]["erased_at"] is None

    await come_due(admin_pool, case_id)
    await eventually(lambda: erased_in_intake(admin_pool, case_id), "intake scrubbed the case")

    async def notifications_scrubbed() -> dict[str, Any] | None:
        found = await routing_and_notifications_copies(admin_pool, case_id)
        return found if found["contact"]["erased_at"] is not None else None

    copies = await eventually(notifications_scrubbed, "notifications scrubbed the case")
    assert copies["contact"]["reference"] == (await view(system, case_id))["reference"]
    assert (
        copies["contact"]["reporter_employee_id"],
        copies["contact"]["reporter_name"],
        copies["contact"]["reporter_email"],
    ) == (None, None, None)
    # Routing scrubbed its copies in the transaction that announced the erasure.
    assert [(r["named_name"], r["named_email"]) for r in copies["respondents"]] == [(None, None)]
    [skeleton] = copies["respondents"]
    assert (skeleton["category"], skeleton["team"], skeleton["status"]) == (
        "payroll_query",
        "hr_operations",
        "closed",
    )

    assert_skeleton_only(await view(system, case_id), name)
    assert await live_keys(admin_pool, case_id) == 0
    reasons = await admin_pool.fetch(
        "SELECT destroyed_reason FROM privacy_keys.data_keys WHERE scope = $1", case_id
    )
    assert {r["destroyed_reason"] for r in reasons} == {timer["rule"]}
    [erased] = await eventually(
        lambda: audited(admin_pool, case_id, "privacy.retention_erased"), "the audit record"
    )
    assert erased["rule"] == timer["rule"] and erased["case_id"] == case_id
    assert "employee:E-8851" in erased["subject_ids"]
    after = await dashboard(system)
    assert after["volume_by_category"]["total"] == before["volume_by_category"]["total"]
    assert after["volume_by_team"]["total"] == before["volume_by_team"]["total"]


async def test_a_hold_keeps_everything_until_it_is_released_then_retention_erases(
    system, keys, admin_pool
):
    name = "Tomasz Wilk"
    case_id = await closed_case(system, keys, "E-8852", name)
    await eventually(lambda: retention_timer(admin_pool, case_id), "retention armed")
    async with api(system, AS_OFFICER) as officer:
        placed = await officer.post(
            "/api/v1/privacy/legal-holds",
            json={"subject": {"employee_id": "E-8852"}, "reason": "Tribunal claim expected"},
        )
    assert placed.status_code == 201, placed.text
    hold_id = UUID(placed.json()["hold_id"])
    await eventually(
        lambda: admin_pool.fetchval(
            "SELECT true FROM routing.legal_holds WHERE hold_id = $1", hold_id
        ),
        "routing heard of the hold",
    )
    held = await dashboard(system)
    assert held["legal_holds"]["active"] >= 1 and held["legal_holds"]["placed"] >= 1

    await come_due(admin_pool, case_id)
    blocked = await eventually(
        lambda: admin_pool.fetchrow(
            "SELECT blocked_at, blocked_by, erased_at FROM routing.retention_timers"
            " WHERE case_id = $1 AND blocked_at IS NOT NULL",
            UUID(case_id),
        ),
        "the due retention blocked by the hold",
    )
    assert blocked["blocked_by"] == [hold_id] and blocked["erased_at"] is None
    await asyncio.sleep(1.0)  # a few more timer ticks: still nothing erased
    case = await view(system, case_id)
    assert name in json.dumps(case) and MESSAGE in json.dumps(case)
    assert await live_keys(admin_pool, case_id) >= 1
    assert not await erased_in_intake(admin_pool, case_id)
    assert not await audited(admin_pool, case_id, "privacy.retention_erased")

    async with api(system, AS_OFFICER) as officer:
        released = await officer.post(
            f"/api/v1/privacy/legal-holds/{hold_id}/release", json={"reason": "Claim settled"}
        )
    assert released.status_code == 202, released.text
    await eventually(lambda: erased_in_intake(admin_pool, case_id), "erased after the release")
    assert_skeleton_only(await view(system, case_id), name)
    assert await live_keys(admin_pool, case_id) == 0
    assert len(await audited(admin_pool, case_id, "privacy.retention_erased")) == 1
    after = await dashboard(system)
    assert after["legal_holds"]["released"] >= 1
    assert after["legal_holds"]["active"] == held["legal_holds"]["active"] - 1


async def test_a_reopening_cancels_the_retention_and_the_next_closure_arms_it_again(
    system, keys, admin_pool
):
    case_id = await closed_case(system, keys, "E-8853", "Lena Fischer")
    first = await eventually(lambda: retention_timer(admin_pool, case_id), "retention armed")
    async with api(system, AS_MANAGER) as manager:
        reopened = await manager.post(
            f"/api/v1/cases/{case_id}/status", json={"to_status": "reopened", "reason": "more"}
        )
        assert reopened.status_code == 202, reopened.text
        await eventually(lambda: _status_is(system, case_id, "in_progress"), "reopened")
        assert await retention_timer(admin_pool, case_id) is None
        closed = await manager.post(
            f"/api/v1/cases/{case_id}/status", json={"to_status": "closed", "reason": "done"}
        )
        assert closed.status_code == 202, closed.text
    again = await eventually(lambda: retention_timer(admin_pool, case_id), "armed again")
    assert again["closed_at"] > first["closed_at"]
    assert again["due_at"] == again["closed_at"].replace(year=again["closed_at"].year + 2)
    assert await live_keys(admin_pool, case_id) >= 1


async def test_a_case_left_resolved_is_erased_too_and_a_later_closure_restarts_the_period(
    system, keys, admin_pool
):
    """No auto-close exists: a case resolved and never closed would otherwise keep its
    personal data forever. Retention is armed at resolution; closing the case later arms it
    again from the closure; a case left resolved is erased when its period ends."""
    case_id = await closed_case(system, keys, "E-8854", "Omar Haddad", end="resolved")
    resolved = await eventually(lambda: retention_timer(admin_pool, case_id), "armed")
    assert resolved["rule"] == "retention: payroll_query 2 years after closure"
    assert resolved["due_at"] == resolved["closed_at"].replace(year=resolved["closed_at"].year + 2)
    async with api(system, AS_MANAGER) as manager:
        closed = await manager.post(
            f"/api/v1/cases/{case_id}/status", json={"to_status": "closed", "reason": "done"}
        )
        assert closed.status_code == 202, closed.text
    await eventually(lambda: _status_is(system, case_id, "closed"), "closed")

    async def rearmed() -> Any:
        timer = await retention_timer(admin_pool, case_id)
        return timer if timer["closed_at"] > resolved["closed_at"] else None

    again = await eventually(rearmed, "re-armed from the closure")
    assert again["due_at"] == again["closed_at"].replace(year=again["closed_at"].year + 2)

    name = "Priya Nair"
    left_resolved = await closed_case(system, keys, "E-8855", name, end="resolved")
    await eventually(lambda: retention_timer(admin_pool, left_resolved), "armed at resolution")
    await come_due(admin_pool, left_resolved)
    await eventually(lambda: erased_in_intake(admin_pool, left_resolved), "erased while resolved")
    assert_skeleton_only(await view(system, left_resolved), name, status="resolved")
    assert await live_keys(admin_pool, left_resolved) == 0
