"""A reply to a closed case is never silent (field case reply-to-closed-case.eml).

The .eml goes in over real SMTP to the running system, threaded (by the reference in its
subject) to a case the test first raises through the API and closes through routing.
Within the policy's `reopen_within_days` of the closure the reply reopens the case: routing
announces it, the owner gets a mail, the resolution clock runs again. After the window
(the closure time set back beyond it) intake opens a new case linked to the old one, the
reply's text as its description, and the reporter is acknowledged as for any new case.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from email.policy import SMTP
from typing import Any

import httpx
import pytest

from services.routing.domain.policy import load_policy
from tests.support.auth import auth_headers
from tests.support.bus import capture_events
from tests.support.infra import ROOT, free_port
from tests.support.system import running_system

FIELD_CASE = ROOT / "tests" / "fixtures" / "field_cases" / "reply-to-closed-case.eml"
OMAR = {"employee_id": "E-7300", "name": "Omar Said", "email": "omar.said@example.com"}
AS_OMAR = auth_headers("u-omar", "employee", employee_id=OMAR["employee_id"])
AS_MANAGER = auth_headers("M-9001", "hr_manager", employee_id="M-9001")
REPLY_TEXT = "It was NOT paid in November either - please reopen, I am short 240 GBP."
OWNER_EMAILS = {
    member.id: str(member.email) for team in load_policy().teams.values() for member in team.members
}


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    port = free_port()
    with running_system(
        database_url, rabbitmq_url, logs_dir / "reply-to-closed", INTAKE_SMTP_PORT=str(port)
    ) as running:
        running.smtp_port = port  # type: ignore[attr-defined]
        yield running


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def api(system: Any, headers: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.url("intake"), timeout=10, headers=headers)


async def view(system: Any, case_id: str, headers: dict[str, str] = AS_OMAR) -> dict[str, Any]:
    async with api(system, headers) as c:
        response = await c.get(f"/api/v1/cases/{case_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def raise_and_close(system: Any) -> tuple[str, str, str]:
    """A case of Omar's, routed, then closed through routing; (case_id, reference, owner)."""
    async with api(system, AS_OMAR) as c:
        accepted = await c.post(
            "/api/v1/cases",
            json={
                "subject": "Overtime not paid in October",
                "description": "My October overtime is missing from my payslip.",
                "reporter": OMAR,
                "category": "payroll_query",
            },
        )
    assert accepted.status_code == 202, accepted.text
    case_id, reference = accepted.json()["case_id"], accepted.json()["reference"]

    async def assigned() -> dict[str, Any] | None:
        v = await view(system, case_id)
        return v if v["status"] == "assigned" else None

    owner = (await eventually(assigned, "routed"))["assignment"]["owner_id"]
    async with api(system, AS_MANAGER) as c:
        closed = await c.post(
            f"/api/v1/cases/{case_id}/status", json={"to_status": "closed", "reason": "paid"}
        )
    assert closed.status_code == 202, closed.text

    async def is_closed() -> bool:
        return bool((await view(system, case_id))["status"] == "closed")

    await eventually(is_closed, "closed")
    return case_id, reference, owner


def field_case_reply(reference: str) -> Message:
    """The field case, threaded to our case by its reference, with a Message-ID of its own."""
    message = message_from_bytes(FIELD_CASE.read_bytes())
    subject = re.sub(r"\[HR-\d{4}-\d{6}\]", f"[{reference}]", str(message["Subject"]))
    message.replace_header("Subject", subject)
    message.replace_header("Message-ID", f"<reply-{uuid.uuid4()}@example.com>")
    return message


def send(system: Any, message: Message) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", system.smtp_port, timeout=20) as smtp:
        smtp.ehlo()
        assert smtp.mail(OMAR["email"])[0] == 250
        assert smtp.rcpt("hr@example.com")[0] == 250
        code, text = smtp.data(message.as_bytes(policy=SMTP))
        return code, text.decode()


def subjects_to(system: Any, address: str) -> list[str]:
    return [str(m["Subject"]) for m in system.mail.messages_to(address)]


async def test_a_reply_within_the_window_reopens_the_case_and_tells_the_owner(
    system, amqp, admin_pool
):
    case_id, reference, owner = await raise_and_close(system)
    async with capture_events(amqp) as capture:
        code, text = send(system, field_case_reply(reference))
        assert code == 250 and reference in text
        changed = await capture.wait(
            lambda e: e["case_id"] == case_id and e["event_type"] == "case.status_changed"
        )
        reopened = await capture.wait(
            lambda e: e["case_id"] == case_id and e["event_type"] == "case.reopened"
        )
    assert (changed["payload"]["from_status"], changed["payload"]["to_status"]) == (
        "closed",
        "in_progress",
    )
    assert changed["payload"]["reason"] == "reopened: the reporter replied"
    assert changed["producer"] == "routing"
    assert reopened["payload"]["owner_id"] == owner
    assert reopened["payload"]["trigger"] == "reporter_reply"

    async def back_in_progress() -> bool:
        return bool((await view(system, case_id))["status"] == "in_progress")

    await eventually(back_in_progress, "the case view shows it reopened")
    due = reopened["payload"]["resolution_due"]
    assert due is not None

    async def new_deadline_shown() -> bool:
        shown = (await view(system, case_id))["sla"]["resolution_due"]
        return bool(shown and datetime.fromisoformat(shown) == datetime.fromisoformat(due))

    await eventually(new_deadline_shown, "the resolution deadline of the reopened case")
    # The reply is on the case, and the resolution clock runs again.
    messages = (await view(system, case_id))["messages"]
    assert [m["body"].strip() for m in messages][-1] == REPLY_TEXT
    running = await admin_pool.fetchval(
        "SELECT running_since IS NOT NULL FROM routing.sla_clocks"
        " WHERE case_id = $1 AND clock = 'resolution'",
        uuid.UUID(case_id),
    )
    assert running is True

    async def owner_told() -> list[str]:
        return [s for s in subjects_to(system, OWNER_EMAILS[owner]) if "Case reopened" in s]

    (subject,) = await eventually(owner_told, "the owner's 'case reopened' mail")
    assert subject.startswith(f"[{reference}]")
    mail = next(
        m for m in system.mail.messages_to(OWNER_EMAILS[owner]) if "reopened" in str(m["Subject"])
    )
    body = mail.get_content()
    # Staff mail pattern: reference and link, never what the reporter wrote.
    assert "240 GBP" not in body and "overtime" not in body.lower()
    assert f"/portal/cases/{case_id}" in body


async def test_a_reply_after_the_window_opens_a_new_case_linked_to_the_old_one(
    system, amqp, admin_pool
):
    case_id, reference, _ = await raise_and_close(system)
    window = load_policy().reopen_within_days
    # The closure happened longer ago than the policy's window.
    await admin_pool.execute(
        "UPDATE routing.cases SET status_changed_at = now() - make_interval(days => $2)"
        " WHERE case_id = $1",
        uuid.UUID(case_id),
        int(window) + 1,
    )
    async with capture_events(amqp) as capture:
        code, _ = send(system, field_case_reply(reference))
        assert code == 250
        requested = await capture.wait(
            lambda e: e["case_id"] == case_id and e["event_type"] == "case.follow_up_case_requested"
        )
        submitted = await capture.wait(
            lambda e: (
                e["event_type"] == "case.submitted"
                and e["payload"].get("follows_up_case_id") == case_id
            )
        )
    assert requested["producer"] == "routing"
    new_id = submitted["case_id"]
    assert new_id != case_id
    new_reference = submitted["payload"]["reference"]
    assert submitted["payload"]["reporter"]["email"] == OMAR["email"]

    async def routed() -> dict[str, Any] | None:
        v = await view(system, new_id)
        return v if v["status"] == "assigned" else None

    new_case = await eventually(routed, "the follow-up case routed")
    assert new_case["subject"].startswith(f"Follow-up to {reference}")
    assert new_case["linked_cases"] == [
        {"case_id": case_id, "reference": reference, "relation": "follows_up"}
    ]
    description = await admin_pool.fetchval(
        "SELECT description FROM intake.cases WHERE case_id = $1", uuid.UUID(new_id)
    )
    assert description.strip() == REPLY_TEXT
    # Staff see the link on both cases; the old case stays closed.
    old = await view(system, case_id, AS_MANAGER)
    assert old["status"] == "closed"
    assert old["linked_cases"] == [
        {"case_id": new_id, "reference": new_reference, "relation": "followed_up_by"}
    ]
    assert any("follow-up case" in n["body"] and new_reference in n["body"] for n in old["notes"])

    # The reporter is acknowledged for the new case as for any new case.
    async def acknowledged() -> list[str]:
        return [s for s in subjects_to(system, OMAR["email"]) if new_reference in s]

    await eventually(acknowledged, "the acknowledgement of the follow-up case")
    # Exactly one follow-up for the one reply.
    count = await admin_pool.fetchval(
        "SELECT count(*) FROM intake.cases WHERE follows_up_case_id = $1", uuid.UUID(case_id)
    )
    assert count == 1


async def test_the_reporter_may_write_to_a_closed_case_through_the_api_and_it_reopens(system, amqp):
    case_id, _, _ = await raise_and_close(system)
    async with api(system, AS_OMAR) as c:
        sent = await c.post(f"/api/v1/cases/{case_id}/messages", json={"body": REPLY_TEXT})
    assert sent.status_code == 201, sent.text

    async def reopened() -> bool:
        return bool((await view(system, case_id))["status"] == "in_progress")

    await eventually(reopened, "reopened by the API message")
    # Staff still reopen a closed case explicitly before writing to it.
    case_id, _, owner = await raise_and_close(system)
    as_owner = auth_headers(owner, "hr_agent", employee_id=owner)
    async with api(system, as_owner) as c:
        refused = await c.post(f"/api/v1/cases/{case_id}/messages", json={"body": "hello"})
    assert refused.status_code == 409


async def test_the_portal_lets_the_reporter_write_to_a_closed_case_and_shows_the_link(
    system, admin_pool
):
    as_sam = auth_headers("u-sam", "employee", employee_id="E-7001")
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as portal:
        sign_in = await portal.get("/portal/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', sign_in.text).group(1)  # type: ignore[union-attr]
        signed_in = await portal.post(
            "/portal/sign-in", data={"csrf_token": token, "identity": "sam"}
        )
        assert signed_in.status_code == 303
        # The CSRF token is rotated at sign-in: take the signed-in session's own.
        new_case = await portal.get("/portal/cases/new")
        token = re.search(r'name="csrf_token" value="([^"]+)"', new_case.text).group(1)  # type: ignore[union-attr]

        async def raise_case() -> str:
            raised = await portal.post(
                "/portal/cases",
                data={
                    "csrf_token": token,
                    "subject": "Overtime not paid in October",
                    "description": "My October overtime is missing from my payslip.",
                    "category": "payroll_query",
                    "name": "Sam Rivera",
                    "email": "sam.rivera@example.com",
                },
            )
            assert raised.status_code == 303, raised.text
            return raised.headers["location"].split("/portal/cases/")[1].split("?")[0]

        async def close(case_id: str) -> None:
            async def routed() -> bool:
                return bool((await view(system, case_id, as_sam))["status"] == "assigned")

            await eventually(routed, "routed")
            async with api(system, AS_MANAGER) as c:
                closing = await c.post(
                    f"/api/v1/cases/{case_id}/status", json={"to_status": "closed"}
                )
            assert closing.status_code == 202

            async def closed() -> bool:
                return bool((await view(system, case_id, as_sam))["status"] == "closed")

            await eventually(closed, "closed")

        # Within the window: the message form is there, and sending reopens the case.
        case_id = await raise_case()
        await close(case_id)
        page = await portal.get(f"/portal/cases/{case_id}")
        assert f'action="/portal/cases/{case_id}/messages"' in page.text
        sent = await portal.post(
            f"/portal/cases/{case_id}/messages", data={"csrf_token": token, "body": REPLY_TEXT}
        )
        assert sent.status_code == 303, sent.text

        async def reopened() -> bool:
            return bool((await view(system, case_id, as_sam))["status"] == "in_progress")

        await eventually(reopened, "reopened by the portal message")

        # After the window: a follow-up case, linked on the old case's page.
        case_id = await raise_case()
        await close(case_id)
        await admin_pool.execute(
            "UPDATE routing.cases SET status_changed_at = now() - interval '400 days'"
            " WHERE case_id = $1",
            uuid.UUID(case_id),
        )
        sent = await portal.post(
            f"/portal/cases/{case_id}/messages", data={"csrf_token": token, "body": REPLY_TEXT}
        )
        assert sent.status_code == 303, sent.text

        async def linked() -> list[dict[str, Any]]:
            return list((await view(system, case_id, as_sam))["linked_cases"])

        (link,) = await eventually(linked, "the follow-up case")
        assert link["relation"] == "followed_up_by"
        page = await portal.get(f"/portal/cases/{case_id}")
        assert f'href="/portal/cases/{link["case_id"]}">{link["reference"]}</a>' in page.text
        assert "Follow-up case" in page.text
        follow_up = await portal.get(f"/portal/cases/{link['case_id']}")
        assert follow_up.status_code == 200 and "Follow-up of" in follow_up.text
