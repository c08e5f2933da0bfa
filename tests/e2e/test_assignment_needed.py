"""A case nobody can be assigned to automatically asks a person, through all four processes.

No door of intake names respondents yet, so the test makes every candidate of the case's
team (HR Operations) and of the conflict fallback team (Employee Relations) unavailable
through the HR directory feed on the bus (inactive members are passed over exactly like
conflicted ones: services/routing/application/handlers.py `_pick_owner`). The conflict
rule itself is proven on routing's own process in services/routing/tests/test_routing_service.py
(`test_a_case_with_every_candidate_conflicted_out_asks_a_person_to_assign`).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest

from services.routing.domain.policy import load_policy
from shared.envelope import Actor
from shared.events import DirectoryEmployeeUpdated, make_event
from tests.support.auth import auth_headers
from tests.support.bus import publish_envelope
from tests.support.system import running_system

POLICY = load_policy()
CANDIDATES = [
    member
    for team in ("hr_operations", POLICY.conflict_fallback_team)
    for member in POLICY.teams[team].members
]
MANAGERS = {s.id: str(s.email) for s in POLICY.staff}
REPORTER = {"employee_id": "E-6100", "name": "Noor Haddad", "email": "noor.haddad@example.com"}
AS_REPORTER = auth_headers("u-noor", "employee", employee_id=REPORTER["employee_id"])
LINK = re.compile(r"https?://[^\s<>\"')]+")


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "assignment-needed") as running:
        yield running


async def set_active(amqp, active: bool) -> None:
    for member in CANDIDATES:
        update = DirectoryEmployeeUpdated(
            employee_id=member.id, name=member.name, email=member.email, active=active
        )
        envelope = make_event(
            update, producer="directory", actor=Actor(type="system", id="hr-feed"), case_id=None
        )
        await publish_envelope(amqp, envelope)


async def eventually(check, what: str, timeout: float = 60) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


async def test_a_case_nobody_can_take_asks_the_hr_managers_and_waits_for_a_person(
    system, amqp, admin_pool
) -> None:
    ids = [m.id for m in CANDIDATES]
    await set_active(amqp, False)
    try:

        async def all_inactive() -> bool:
            n = await admin_pool.fetchval(
                "SELECT count(*) FROM routing.employees"
                " WHERE employee_id = ANY($1::text[]) AND NOT active",
                ids,
            )
            return n == len(ids)

        await eventually(all_inactive, "the directory feed applied by routing")
        body = {
            "subject": "My payslip is missing overtime",
            "description": "Overtime from October is not on my payslip.",
            "reporter": REPORTER,
        }
        async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
            accepted = await client.post("/api/v1/cases", json=body, headers=AS_REPORTER)
            assert accepted.status_code == 202, accepted.text
            case_id, reference = accepted.json()["case_id"], accepted.json()["reference"]

            async def needs_person() -> dict[str, Any] | None:
                view = (await client.get(f"/api/v1/cases/{case_id}", headers=AS_REPORTER)).json()
                return view if view["assignment"]["needs_person"] else None

            view = await eventually(needs_person, "intake to show the case needs a person")
        assert view["status"] == "routed" and view["assignment"]["owner_id"] is None
        assert view["assignment"]["team"] == "hr_operations"

        # In the audit record, with routing's sentence (read as an auditor would).
        async def audited() -> list[dict[str, Any]] | None:
            async with httpx.AsyncClient(base_url=system.url("audit"), timeout=10) as audit:
                timeline = await audit.get(
                    f"/api/v1/audit/cases/{case_id}/timeline",
                    headers=auth_headers("auditor-1", "auditor"),
                )
            items = timeline.json().get("items", []) if timeline.status_code == 200 else []
            return [i for i in items if i["event_type"] == "case.assignment_needed"] or None

        (entry,) = await eventually(audited, "case.assignment_needed in the audit timeline")
        assert entry["summary"].startswith("no owner could be assigned in team hr_operations")
        assert entry["actor"] == {"type": "service", "id": "routing"}
        # Nothing dead-lettered: routing settled the case as a business outcome.
        assert (
            await admin_pool.fetchval(
                "SELECT owner_id IS NULL AND status = 'routed' FROM routing.cases"
                " WHERE case_id = $1",
                uuid.UUID(case_id),
            )
            is True
        )

        def manager_mails() -> dict[str, Any]:
            found = {}
            for staff_id, address in MANAGERS.items():
                for mail in system.mail.messages_to(address):
                    if reference in str(mail["Subject"]):
                        found[staff_id] = mail
            return found

        async def every_manager_asked() -> dict[str, Any] | None:
            found = manager_mails()
            return found if set(found) == set(MANAGERS) else None

        mails = await eventually(every_manager_asked, "a mail to every HR manager")
        for staff_id, mail in mails.items():
            text = mail.get_body(preferencelist=("plain",)).get_content()
            assert "assign" in str(mail["Subject"]).lower()
            # Reference, priority, deadline and a link: no subject, description or reporter.
            for secret in ("payslip", "Overtime", "Noor", "noor.haddad", "conflict"):
                assert secret.lower() not in (str(mail["Subject"]) + text).lower(), secret
            (link,) = LINK.findall(text)
            assert link == f"{system.url('intake')}/portal/cases/{case_id}"
            manager = auth_headers(staff_id, "hr_manager", employee_id=staff_id)
            async with httpx.AsyncClient(timeout=10) as browser:
                page = await browser.get(link, headers=manager, follow_redirects=False)
            assert page.status_code == 200 and reference in page.text
            assert "Needs a person" in page.text
        # The portal shows the reporter only that the case is being reviewed.
        async with httpx.AsyncClient(timeout=10) as browser:
            own = await browser.get(
                f"{system.url('intake')}/portal/cases/{case_id}", headers=AS_REPORTER
            )
        assert own.status_code == 200 and "Needs a person" not in own.text

        # An HR manager assigns a person; the case is owned and the flag goes.
        async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
            manager = auth_headers("M-9001", "hr_manager", employee_id="M-9001")
            requested = await client.post(
                f"/api/v1/cases/{case_id}/assignment",
                json={"owner_id": "A-3001", "reason": "nobody in the team is free"},
                headers=manager,
            )
            assert requested.status_code == 202, requested.text

            async def owned() -> dict[str, Any] | None:
                view = (await client.get(f"/api/v1/cases/{case_id}", headers=AS_REPORTER)).json()
                return view if view["assignment"]["owner_id"] == "A-3001" else None

            view = await eventually(owned, "the manual assignment")
        assert view["status"] == "assigned" and not view["assignment"]["needs_person"]
    finally:
        await set_active(amqp, True)
