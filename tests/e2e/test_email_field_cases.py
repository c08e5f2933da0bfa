"""Issue 8 mail field cases, from the doors: SMTP into a running intake and the raw-MIME hook.

Charsets (item 1), Message-ID reuse (item 3), mail loops and the acknowledgement limit
(item 4), Outlook winmail.dat (item 5): what the sending server is told, what staff see
through the API and the portal, and what the mail sink receives (or does not).
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import parseaddr
from pathlib import Path

import httpx
import pytest

from services.intake.config import DEV_INBOUND_EMAIL_TOKEN
from services.intake.entrypoints.send_sample_email import build_sample
from tests.support.auth import auth_headers
from tests.support.infra import free_port, wait_for
from tests.support.system import running_system

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIELD_CASES = FIXTURES / "field_cases"
MANAGER = auth_headers("mgr-1", "hr_manager")
LIMIT = 2


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    port = free_port()
    with running_system(
        database_url,
        rabbitmq_url,
        logs_dir / "email-field-cases",
        INTAKE_SMTP_PORT=str(port),
        INTAKE_MAIL_ALIASES="people@example.com",
        ACKNOWLEDGEMENTS_PER_ADDRESS_PER_HOUR=str(LIMIT),
    ) as running:
        running.smtp_port = port  # type: ignore[attr-defined]
        yield running


def smtp_send(system, raw: bytes, mail_from: str) -> tuple[int, str]:
    """One SMTP transaction as the field-case README says: MAIL FROM = the From address."""
    with smtplib.SMTP("127.0.0.1", system.smtp_port, timeout=20) as smtp:
        smtp.ehlo()
        assert smtp.mail(mail_from)[0] == 250
        assert smtp.rcpt("hr@example.com")[0] == 250
        code, text = smtp.data(raw)
        return code, text.decode()


def field_case(system, name: str) -> tuple[int, str]:
    raw = (FIELD_CASES / name).read_bytes()
    sender = parseaddr(raw.split(b"From: ", 1)[1].split(b"\r\n", 1)[0].decode())[1]
    return smtp_send(system, raw, sender)


def hook(system, raw: bytes) -> httpx.Response:
    return httpx.post(
        f"{system.url('intake')}/api/v1/inbound-email",
        content=raw,
        headers={
            "Content-Type": "message/rfc822",
            "X-Inbound-Email-Token": DEV_INBOUND_EMAIL_TOKEN,
        },
        timeout=20,
    )


async def eventually(query, *, what: str, timeout: float = 60):
    """Poll an async query until it returns rows (a busy shared machine: no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = await query()
        if rows:
            return rows
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def metrics(system) -> str:
    return httpx.get(system.metrics_url("intake")).text


def reference_in(reply: str) -> str:
    """The reference in a 250 reply that opened a case."""
    assert "Accepted: case HR-" in reply, reply
    return reply.rsplit("case ", 1)[1].split()[0]


async def case_by_reference(admin_pool, reference: str):
    return await admin_pool.fetchrow("SELECT * FROM intake.cases WHERE reference = $1", reference)


def staff_view(system, case_id) -> dict:
    response = httpx.get(f"{system.url('intake')}/api/v1/cases/{case_id}", headers=MANAGER)
    assert response.status_code == 200, response.text
    return response.json()


def portal_page(system, case_id) -> str:
    response = httpx.get(f"{system.url('intake')}/portal/cases/{case_id}", headers=MANAGER)
    assert response.status_code == 200, response.text
    return response.text


async def test_legacy_charsets_arrive_readable(system, admin_pool):
    _, reply = await asyncio.to_thread(field_case, system, "charset-iso-8859-8-i.eml")
    hebrew = await case_by_reference(admin_pool, reference_in(reply))
    _, reply = await asyncio.to_thread(field_case, system, "charset-latin1-is-cp1252.eml")
    latin = await case_by_reference(admin_pool, reference_in(reply))

    assert (hebrew["subject"], hebrew["description"]) == (
        "תלוש שכר",
        "שלום, המשכורת שלי חסרה שעות נוספות",
    )
    assert latin["subject"] == "Overtime – November"  # noqa: RUF001
    assert latin["description"] == (
        "I didn’t get my “overtime” for 12–14 Nov – about €240… please check."  # noqa: RUF001
    )
    # What staff see: the API and the portal page.
    assert staff_view(system, latin["case_id"])["subject"] == "Overtime – November"  # noqa: RUF001
    page = portal_page(system, hebrew["case_id"])
    assert "שלום, המשכורת שלי חסרה שעות נוספות" in page


async def test_a_reused_message_id_is_not_a_duplicate(system, admin_pool):
    first = "same-message-id-different-sender-1.eml"
    second = "same-message-id-different-sender-2.eml"
    _, reply = await asyncio.to_thread(field_case, system, first)
    sick_note = reference_in(reply)
    code, reply = await asyncio.to_thread(field_case, system, second)
    assert code == 250
    statement = reference_in(reply)  # today: "250 already received", and lost
    assert statement != sick_note
    case = await case_by_reference(admin_pool, statement)
    assert case["reporter_email"] == "jane.park@example.com"
    assert case["subject"] == "Scan: harassment statement"
    assert "harassment by my team lead" in case["description"]

    # A true re-delivery of either is still one case, by SMTP or the hook.
    code, reply = await asyncio.to_thread(field_case, system, first)
    assert code == 250 and "already received" in reply
    again = hook(system, (FIELD_CASES / second).read_bytes())
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert again.json()["reference"] == statement
    count = await admin_pool.fetchval(
        "SELECT count(*) FROM intake.cases WHERE source_message_id = $1",
        "<scan@hr-scanner.example.com>",
    )
    assert count == 2

    # A reply that threads to the shared Message-ID reaches its sender's own case only.
    reply_mail = build_sample(
        sender="jane.park@example.com",
        to="hr@example.com",
        subject="Re: Scan: harassment statement",
        body="One more detail.",
        in_reply_to="<scan@hr-scanner.example.com>",
    )
    code, text = await asyncio.to_thread(
        smtp_send, system, reply_mail.as_bytes(policy=SMTP), "jane.park@example.com"
    )
    assert code == 250 and f"added to case {statement}" in text, text

    # Both reporters get their own acknowledgement.
    for address, reference in (
        ("olu.bello@example.com", sick_note),
        ("jane.park@example.com", statement),
    ):
        await asyncio.to_thread(
            wait_for,
            lambda a=address, r=reference: [
                m for m in system.mail.messages_to(a) if r in m["Subject"]
            ],
            timeout=60,
            what=f"acknowledgement to {address}",
        )


async def test_mail_from_our_own_addresses_opens_nothing_and_sends_nothing(system, admin_pool):
    before = await admin_pool.fetchval("SELECT count(*) FROM intake.cases")
    for name in ("from-own-desk-address.eml", "from-own-intake-mailbox.eml"):
        code, reply = await asyncio.to_thread(field_case, system, name)
        assert code == 250 and "mail loop" in reply, reply
    alias = build_sample(
        sender="people@example.com", to="hr@example.com", subject="Fwd: x", body="loop"
    )
    response = hook(system, alias.as_bytes(policy=SMTP))
    assert response.status_code == 202 and response.json()["outcome"] == "loop"
    assert await admin_pool.fetchval("SELECT count(*) FROM intake.cases") == before

    # Evidence that the pipeline ran: a person's mail sent afterwards is acknowledged, and
    # still nothing went to our own addresses.
    person = build_sample(
        sender="kim.lee@example.com", to="hr@example.com", subject="Leave", body="A question."
    )
    _, reply = await asyncio.to_thread(
        smtp_send, system, person.as_bytes(policy=SMTP), "kim.lee@example.com"
    )
    reference = reference_in(reply)
    await asyncio.to_thread(
        wait_for,
        lambda: [
            m for m in system.mail.messages_to("kim.lee@example.com") if reference in m["Subject"]
        ],
        timeout=60,
        what="acknowledgement to kim.lee",
    )
    for own in ("hr-desk@example.com", "hr@example.com", "people@example.com"):
        assert system.mail.messages_to(own) == []
    assert 'hrcase_intake_emails_total{entrypoint="smtp",outcome="loop"} 2.0' in metrics(system)


async def test_acknowledgements_to_one_address_are_rate_limited(system, admin_pool):
    sender = "auto.responder@example.org"  # a responder that sets no marker at all
    for index in range(LIMIT + 1):
        message = build_sample(
            sender=sender, to="hr@example.com", subject=f"Re: ticket {index}", body=f"Reply {index}"
        )
        _, reply = await asyncio.to_thread(smtp_send, system, message.as_bytes(policy=SMTP), sender)
        reference_in(reply)  # each is a case: the limit is on acknowledgements, not intake

    rows = await eventually(
        lambda: admin_pool.fetch(
            """SELECT d.last_error, d.case_id FROM notifications.deliveries d
                 JOIN notifications.case_contacts c USING (case_id)
                WHERE c.reporter_email = $1 AND d.status = 'failed'""",
            sender,
        ),
        what="a suppressed acknowledgement on record",
    )
    assert len(rows) == 1 and rows[0]["last_error"].startswith("suppressed:"), rows
    sent = await asyncio.to_thread(
        wait_for,
        lambda: len(system.mail.messages_to(sender)) >= LIMIT and system.mail.messages_to(sender),
        timeout=60,
        what="the acknowledgements within the limit",
    )
    assert len(sent) == LIMIT
    # Recorded, not silently dropped: notification.failed with the reason, in the audit log.
    failed = await eventually(
        lambda: admin_pool.fetch(
            "SELECT payload::text AS payload FROM audit.log WHERE case_id = $1"
            " AND event_type = 'notification.failed'",
            rows[0]["case_id"],
        ),
        what="notification.failed in the audit log",
    )
    assert len(failed) == 1 and "suppressed" in failed[0]["payload"]
    assert len(system.mail.messages_to(sender)) == LIMIT


async def test_outlook_winmail_dat_content_is_what_staff_see(system, admin_pool):
    message = EmailMessage()
    message["From"] = "Jonas Weber <jonas.weber@example.com>"
    message["To"] = "hr@example.com"
    message["Subject"] = "Meine Unterlagen"
    message["Message-ID"] = "<tnef-e2e@example.com>"
    message.set_content("Bitte sehen Sie den Anhang.")
    message.add_attachment(
        (FIXTURES / "tnef" / "umlaut.tnef").read_bytes(),
        maintype="application",
        subtype="ms-tnef",
        filename="winmail.dat",
    )
    _, reply = await asyncio.to_thread(
        smtp_send, system, message.as_bytes(policy=SMTP), "jonas.weber@example.com"
    )
    case = await case_by_reference(admin_pool, reference_in(reply))
    view = staff_view(system, case["case_id"])
    assert sorted(a["filename"] for a in view["attachments"]) == [
        "TBZ PARIV GmbH.jpg",
        "UmlautAnhang-äüö.txt",
        "image003.jpg",
    ]
    text_file = next(a for a in view["attachments"] if a["filename"].endswith(".txt"))
    assert text_file["content_type"] == "text/plain" and text_file["size"] == 14
    page = portal_page(system, case["case_id"])
    assert "Bitte sehen Sie den Anhang." in page and "TEST äöü" in page
    assert "winmail.dat" not in page

    # The raw-MIME hook does the same.
    message.replace_header("Message-ID", "<tnef-e2e-hook@example.com>")
    response = hook(system, message.as_bytes(policy=SMTP))
    assert response.status_code == 201, response.text
    hooked = staff_view(system, response.json()["case_id"])
    assert len(hooked["attachments"]) == 3
