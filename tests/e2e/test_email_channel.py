"""Email into cases, end to end: real SMTP into the intake process, the real broker and DB.

New mail opens a case (case.submitted in the audit log, attachments by reference), a reply
continues it (by In-Reply-To to the acknowledgement, or by the reference in the subject),
a stranger's reply opens a new case, redelivery is one case, auto-replies open nothing,
oversize mail gets 552, and the raw-MIME HTTP hook does what SMTP does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import smtplib
import time
import uuid
from email.message import EmailMessage
from email.policy import SMTP

import httpx
import pytest

from services.intake.config import DEV_INBOUND_EMAIL_TOKEN
from services.intake.domain.email import threads
from services.intake.entrypoints.send_sample_email import build_sample
from services.notifications.domain import notices as notifications_domain
from shared.mail import notification_id
from tests.support.auth import auth_headers
from tests.support.infra import free_port, wait_for
from tests.support.privacy import opened_payload
from tests.support.system import running_system

REPORTER = "dana.okafor@example.com"
STRANGER = "someone.else@example.net"
MAX_BYTES = 200_000


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    port = free_port()
    with running_system(
        database_url,
        rabbitmq_url,
        logs_dir / "email",
        INTAKE_SMTP_PORT=str(port),
        INTAKE_EMAIL_MAX_BYTES=str(MAX_BYTES),
    ) as running:
        running.smtp_port = port  # type: ignore[attr-defined]
        yield running


def new_mail(sender: str = REPORTER, subject: str = "Unpaid overtime in October", **headers):
    message = build_sample(
        sender=sender,
        to="hr@example.com",
        subject=subject,
        body="My October overtime (12 hours) is missing from my payslip.",
    )
    for name, value in headers.items():
        del message[name.replace("_", "-")]
        message[name.replace("_", "-")] = value
    return message


def send(system, message: EmailMessage, *, mail_from: str | None = None) -> tuple[int, str]:
    """One SMTP transaction; the reply to DATA (sent only after the commit)."""
    with smtplib.SMTP("127.0.0.1", system.smtp_port, timeout=20) as smtp:
        smtp.ehlo()
        code, text = smtp.mail(mail_from if mail_from is not None else str(message["From"]))
        assert code == 250, text
        code, text = smtp.rcpt("hr@example.com")
        assert code == 250, text
        code, text = smtp.data(message.as_bytes(policy=SMTP))
        return code, text.decode()


def fetch_case(admin_pool, message_id: str):
    return admin_pool.fetchrow(
        "SELECT * FROM intake.cases WHERE source_message_id = $1", message_id
    )


async def audit_types(admin_pool, case_id) -> list[str]:
    rows = await admin_pool.fetch(
        "SELECT event_type FROM audit.log WHERE case_id = $1 ORDER BY seq", case_id
    )
    return [row["event_type"] for row in rows]


async def wait_for_audit(admin_pool, case_id, event_type: str, count: int = 1):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        types = await audit_types(admin_pool, case_id)
        if types.count(event_type) >= count:
            return types
        await asyncio.sleep(0.1)
    raise AssertionError(f"{event_type} x{count} not in the audit log: {types}")


async def test_new_mail_opens_a_case_and_replies_continue_it(system, admin_pool):
    first = new_mail()
    first.add_attachment(
        b"%PDF-1.4 payslip", maintype="application", subtype="pdf", filename="payslip.pdf"
    )
    code, reply = await asyncio.to_thread(send, system, first)
    assert code == 250 and "Accepted: case HR-" in reply

    case = await fetch_case(admin_pool, first["Message-ID"])
    assert case["channel"] == "email"
    assert case["subject"] == "Unpaid overtime in October"
    assert "12 hours" in case["description"]
    assert case["reporter_email"] == REPORTER
    assert case["reporter_employee_id"] == f"email:{REPORTER}"
    assert case["reference"] in reply
    case_id = case["case_id"]

    await wait_for_audit(admin_pool, case_id, "case.submitted")
    submitted = await admin_pool.fetchrow(
        "SELECT payload::text AS payload, actor::text AS actor FROM audit.log"
        " WHERE case_id = $1 AND event_type = 'case.submitted'",
        case_id,
    )
    # The log holds the reporter's address sealed (shared.privacy); opened with the key
    # store it is theirs.
    assert REPORTER not in submitted["payload"]
    payload = await opened_payload(
        system.database_url, "case.submitted", json.loads(submitted["payload"]), case_id
    )
    assert payload["channel"] == "email" and payload["reporter"]["email"] == REPORTER
    [attachment] = payload["attachments"]  # a reference, never the bytes
    assert attachment["sha256"] == hashlib.sha256(b"%PDF-1.4 payslip").hexdigest()
    assert attachment["size"] == len(b"%PDF-1.4 payslip")
    assert "%PDF" not in submitted["payload"]
    assert REPORTER not in submitted["actor"]  # actors carry ids, not addresses
    stored = await admin_pool.fetchrow(
        "SELECT filename, content_type, size FROM intake.attachments WHERE case_id = $1", case_id
    )
    assert tuple(stored) == ("payslip.pdf", "application/pdf", len(b"%PDF-1.4 payslip"))

    # The acknowledgement (notifications) has the Message-ID intake expected for this case:
    # a reply to it, without the reference in the subject, threads by In-Reply-To alone.
    def acknowledgement():
        mails = [m for m in system.mail.messages_to(REPORTER) if case["reference"] in m["Subject"]]
        return mails[0] if mails else None

    ack = await asyncio.to_thread(wait_for, acknowledgement, what="acknowledgement email")
    reply_mail = new_mail(subject="Re: your message", In_Reply_To=ack["Message-ID"])
    code, text = await asyncio.to_thread(send, system, reply_mail)
    assert code == 250 and case["reference"] in text, text
    await wait_for_audit(admin_pool, case_id, "case.message_received")

    # By the reference in the subject, from the reporter (address case does not matter).
    by_subject = new_mail(
        sender=REPORTER.upper(), subject=f"Re: [{case['reference']}] one more detail"
    )
    code, text = await asyncio.to_thread(send, system, by_subject)
    assert code == 250 and f"added to case {case['reference']}" in text
    await wait_for_audit(admin_pool, case_id, "case.message_received", count=2)
    messages = await admin_pool.fetch(
        "SELECT email_message_id FROM intake.case_messages WHERE case_id = $1", case_id
    )
    assert {m["email_message_id"] for m in messages} == {
        reply_mail["Message-ID"],
        by_subject["Message-ID"],
    }

    # A stranger quoting the reference and the thread gets a case of their own.
    intruder = new_mail(
        sender=STRANGER,
        subject=f"Re: [{case['reference']}] Unpaid overtime in October",
        In_Reply_To=first["Message-ID"],
    )
    code, text = await asyncio.to_thread(send, system, intruder)
    assert code == 250 and "Accepted: case HR-" in text
    assert case["reference"] not in text.split("case ")[-1]
    other = await fetch_case(admin_pool, intruder["Message-ID"])
    assert other["case_id"] != case_id and other["reporter_email"] == STRANGER
    assert (
        await admin_pool.fetchval(
            "SELECT count(*) FROM intake.case_messages WHERE case_id = $1", case_id
        )
        == 2
    )


async def test_the_same_message_twice_is_one_case(system, admin_pool):
    message = new_mail(subject="Bullying in the warehouse team")
    first = await asyncio.to_thread(send, system, message)
    again = await asyncio.to_thread(send, system, message)
    assert first[0] == 250 and again[0] == 250
    assert "already received" in again[1]
    # Concurrent deliveries of one message (a retrying MTA, two MX hosts): still one case.
    racing = new_mail(subject="Racing deliveries")
    replies = await asyncio.gather(*(asyncio.to_thread(send, system, racing) for _ in range(4)))
    assert [code for code, _ in replies] == [250] * 4
    for sent in (message, racing):
        count = await admin_pool.fetchval(
            "SELECT count(*) FROM intake.cases WHERE source_message_id = $1", sent["Message-ID"]
        )
        assert count == 1


async def test_auto_replies_and_bounces_open_no_case(system, admin_pool):
    before = await admin_pool.fetchval("SELECT count(*) FROM intake.cases")
    out_of_office = new_mail(subject="Out of office", Auto_Submitted="auto-replied")
    bounce = new_mail(subject="Undeliverable")
    for message, mail_from in ((out_of_office, None), (bounce, "<>")):
        code, text = await asyncio.to_thread(send, system, message, mail_from=mail_from)
        assert code == 250 and "automatic" in text
    assert await admin_pool.fetchval("SELECT count(*) FROM intake.cases") == before


async def test_oversize_mail_is_refused_with_552(system):
    big = build_sample(
        sender=REPORTER, to="hr@example.com", subject="big", body=("z" * 70 + "\n") * 4000
    )

    def attempt() -> tuple[int, int]:
        with smtplib.SMTP("127.0.0.1", system.smtp_port, timeout=20) as smtp:
            smtp.ehlo()
            assert int(smtp.esmtp_features["size"]) == MAX_BYTES
            declared = smtp.mail(REPORTER, [f"SIZE={MAX_BYTES + 1}"])[0]
            smtp.rset()
            smtp.mail(REPORTER)
            smtp.rcpt("hr@example.com")
            return declared, smtp.data(big.as_bytes(policy=SMTP))[0]

    assert await asyncio.to_thread(attempt) == (552, 552)


def test_the_http_hook_accepts_raw_mime(system):
    raw = new_mail(subject="Forwarded by the mail provider").as_bytes(policy=SMTP)
    url = f"{system.url('intake')}/api/v1/inbound-email"
    headers = {"Content-Type": "message/rfc822"}
    assert httpx.post(url, content=raw, headers=headers).status_code == 401
    token = {**headers, "X-Inbound-Email-Token": DEV_INBOUND_EMAIL_TOKEN}
    wrong_type = {**token, "Content-Type": "text/plain"}
    assert httpx.post(url, content=raw, headers=wrong_type).status_code == 415
    response = httpx.post(url, content=raw, headers=token)
    assert response.status_code == 201, response.text
    assert response.json()["outcome"] == "opened"
    assert response.json()["reference"].startswith("HR-")
    again = httpx.post(url, content=raw, headers=token)
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    # Or a bearer token with the admin role (a mail-forwarding service account).
    employee = {**headers, **auth_headers("E-1", "employee", employee_id="E-1")}
    assert httpx.post(url, content=raw, headers=employee).status_code == 403
    admin = {**headers, **auth_headers("mail-forwarder", "admin")}
    forwarded = new_mail(subject="Forwarded with a service token").as_bytes(policy=SMTP)
    assert httpx.post(url, content=forwarded, headers=admin).status_code == 201
    bounced = new_mail(subject="Undeliverable").as_bytes(policy=SMTP)
    bounce = httpx.post(url, content=bounced, headers={**token, "X-Envelope-From": "<>"})
    assert bounce.status_code == 202 and bounce.json()["outcome"] == "automatic"
    metrics = httpx.get(system.metrics_url("intake")).text
    assert 'hrcase_intake_emails_total{entrypoint="http",outcome="automatic"} 1.0' in metrics


def test_acknowledgement_message_ids_match_what_notifications_sends():
    # The contract intake relies on for threading, checked against the real module.
    event_id = uuid.uuid4()
    config = notifications_domain.MailConfig(
        portal_base_url="http://localhost", mail_from="HR <hr-desk@hr.example.org>"
    )
    expected = notifications_domain.message_id(
        notification_id(event_id, notifications_domain.AUDIENCE_REPORTER),
        config,
    )
    assert threads.acknowledgement_message_ids(event_id, "hr.example.org") == [expected]
