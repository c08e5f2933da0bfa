"""The service in-process on the real broker and database, delivering to a real SMTP sink."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from typing import Any, TypeVar
from uuid import uuid4

import asyncpg
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection

from hrcase.mailsink import MailSink
from services.notifications.app import SPEC
from services.notifications.domain import notices as domain
from services.notifications.tests.factories import (
    SECRET_DESCRIPTION,
    SECRET_REASON,
    SECRET_SUBJECT,
    case_assigned,
    case_escalated,
    case_submitted,
    conference_required,
    reference,
    reporter_of,
    sla_event,
    staff,
)
from shared.envelope import Envelope
from shared.events import CaseAssigned, CaseSubmitted, Person, payload_as
from shared.mail import notification_id
from shared.service import Runtime, start_runtime, stop_runtime
from shared.settings import Settings
from shared.topology import EXCHANGE
from tests.support.bus import declare_topology, publish_envelope
from tests.support.infra import free_port

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 15.0, what: str = "condition"
) -> T:
    """Poll with a deadline: the system is asynchronous, a fixed sleep would be flaky."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: T | None = None
    while asyncio.get_running_loop().time() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


@pytest.fixture(scope="module")
def sink() -> Iterator[MailSink]:
    with MailSink(port=free_port()) as mail_sink:
        yield mail_sink


@pytest.fixture
async def topology(amqp: AbstractRobustConnection) -> None:
    await declare_topology(amqp)


@asynccontextmanager
async def running_service(
    database_url: str, rabbitmq_url: str, smtp_port: int
) -> AsyncIterator[Runtime]:
    settings = Settings(
        database_url=database_url,
        rabbitmq_url=rabbitmq_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        portal_base_url="https://hr.example.org",
    )
    runtime = await start_runtime(SPEC, settings)
    try:
        yield runtime
    finally:
        await stop_runtime(runtime)


@asynccontextmanager
async def notification_events(amqp: AbstractRobustConnection) -> AsyncIterator[AbstractQueue]:
    """A temporary queue that sees every notification.* event published."""
    async with amqp.channel() as channel:
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(EXCHANGE, routing_key="notification.*")
        yield queue


async def take_event(queue: AbstractQueue, source_event_id: str) -> Envelope:
    async def probe() -> Envelope | None:
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            envelope = Envelope.from_json_bytes(message.body)
            if envelope.payload.get("source_event_id") == source_event_id:
                return envelope
        return None

    return await eventually(probe, what=f"notification event for {source_event_id}")


async def delivery(pool: asyncpg.Pool, source_event_id: Any) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        "SELECT * FROM notifications.deliveries WHERE source_event_id = $1", source_event_id
    )
    return dict(row) if row else None


async def test_acknowledges_once_and_tells_the_owner(
    topology: None,
    sink: MailSink,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    submitted = case_submitted()
    payload = payload_as(submitted, CaseSubmitted)
    reporter = str(reporter_of(payload).email)
    assigned = case_assigned(case_id=submitted.case_id, ref=payload.reference)
    owner = str(payload_as(assigned, CaseAssigned).owner.email)

    async with (
        notification_events(amqp) as events,
        running_service(database_url, rabbitmq_url, sink.port) as runtime,
    ):
        await publish_envelope(amqp, submitted)

        async def reporter_mail() -> list[Any]:
            return sink.messages_to(reporter)

        [mail] = await eventually(reporter_mail, what="acknowledgement email")
        expected_id = domain.message_id(
            notification_id(submitted.event_id, "reporter"),
            domain.MailConfig("https://hr.example.org", runtime.settings.mail_from),
        )
        assert mail["Subject"] == f"[{payload.reference}] We have received your case"
        assert mail["From"] == runtime.settings.mail_from
        assert mail["Message-ID"] == expected_id
        assert mail["Auto-Submitted"] == "auto-generated"
        assert mail.get_content_type() == "text/plain"
        assert mail.get_content_charset() == "utf-8"
        body = mail.get_content()
        assert payload.reference in body
        assert f"https://hr.example.org/portal/cases/{submitted.case_id}" in body
        assert "DESC-MARKER" not in mail.as_string()
        assert "SUBJ-MARKER" not in mail.as_string()

        sent = await take_event(events, str(submitted.event_id))
        assert sent.event_type == "notification.sent"
        assert sent.causation_id == submitted.event_id
        assert sent.case_id == submitted.case_id
        assert sent.payload["recipient_id"] == reporter_of(payload).employee_id
        assert sent.payload["message_id"] == expected_id
        assert reporter not in json.dumps(sent.payload)

        # The same event again, then the assignment of the same case: the consumer handles a
        # case's events in order, so once the owner has mail the duplicate has been seen.
        await publish_envelope(amqp, submitted)
        await publish_envelope(amqp, assigned)

        async def owner_mail() -> list[Any]:
            return sink.messages_to(owner)

        [owner_msg] = await eventually(owner_mail, what="assignment email")
        assert len(sink.messages_to(reporter)) == 1
        assert payload.reference in str(owner_msg["Subject"])
        owner_body = owner_msg.get_content()
        assert "P2" in owner_body
        assert f"https://hr.example.org/portal/cases/{submitted.case_id}" in owner_body
        for secret in (SECRET_DESCRIPTION, SECRET_SUBJECT):
            assert secret not in owner_msg.as_string()

    record = await delivery(admin_pool, submitted.event_id)
    assert record is not None
    assert record["status"] == "sent"
    assert record["attempts"] == 1
    assert record["message_id"] == expected_id
    assert record["recipient_id"] == reporter_of(payload).employee_id
    contact = await admin_pool.fetchrow(
        "SELECT * FROM notifications.case_contacts WHERE case_id = $1", submitted.case_id
    )
    assert contact is not None
    assert contact["reporter_email"] == reporter
    assert contact["reference"] == payload.reference


async def test_smtp_down_records_a_failed_delivery(
    topology: None,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    submitted = case_submitted()
    payload = payload_as(submitted, CaseSubmitted)

    async with (
        notification_events(amqp) as events,
        running_service(database_url, rabbitmq_url, smtp_port=free_port()),
    ):
        await publish_envelope(amqp, submitted)

        async def failed() -> dict[str, Any] | None:
            record = await delivery(admin_pool, submitted.event_id)
            return record if record and record["status"] == "failed" else None

        record = await eventually(failed, what="failed delivery record")
        event = await take_event(events, str(submitted.event_id))

    assert record["attempts"] >= 2  # retried, but boundedly
    assert record["last_error"]
    assert record["sent_at"] is None
    assert event.event_type == "notification.failed"
    assert event.payload["recipient_id"] == reporter_of(payload).employee_id
    assert event.payload["attempts"] == record["attempts"]
    assert str(reporter_of(payload).email) not in json.dumps(event.payload)
    # A recorded outcome, not a poison message: the event was consumed, not dead-lettered.
    assert await admin_pool.fetchval(
        "SELECT count(*) FROM notifications.inbox WHERE event_id = $1", submitted.event_id
    )


def mails_to(
    sink: MailSink, person: Person, count: int
) -> Callable[[], Awaitable[list[EmailMessage] | None]]:
    async def probe() -> list[EmailMessage] | None:
        mails = sink.messages_to(str(person.email))
        return mails if len(mails) >= count else None

    return probe


async def test_owner_hears_of_a_breach_once_and_of_a_conference(
    topology: None,
    sink: MailSink,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    owner = staff()
    assigned = case_assigned(owner=owner, sensitivity="restricted", category="injury")
    case_id, ref = assigned.case_id, payload_as(assigned, CaseAssigned).reference
    assert case_id is not None
    breached = sla_event(case_id=case_id, ref=ref, owner_id=owner.id)
    conference = conference_required(case_id=case_id, ref=ref)

    async with (
        notification_events(amqp) as events,
        running_service(database_url, rabbitmq_url, sink.port),
    ):
        await publish_envelope(amqp, assigned)
        await eventually(mails_to(sink, owner, 1), what="assignment email")
        # The breach twice, then the conference: a case's events are handled in order, so
        # once the conference mail is in, the duplicate breach has been seen too.
        for event in (breached, breached, conference):
            await publish_envelope(amqp, event)
        mails = await eventually(mails_to(sink, owner, 3), what="breach and conference emails")
        sent = await take_event(events, str(breached.event_id))

    assert len(sink.messages_to(str(owner.email))) == 3
    [breach_mail] = [m for m in mails if "deadline missed" in str(m["Subject"])]
    [conference_mail] = [m for m in mails if "conference" in str(m["Subject"])]
    assert str(breach_mail["Subject"]) == f"[{ref}] First response deadline missed (P2)"
    breach_body = breach_mail.get_content()
    assert "First response due at Tue 24 Nov 2026, 16:00 UTC." in breach_body
    assert f"https://hr.example.org/portal/cases/{case_id}" in breach_body
    conference_body = conference_mail.get_content()
    assert "A case conference is required" in conference_body
    assert "by Tue 24 Nov 2026, 16:00 UTC" in conference_body
    for mail in (breach_mail, conference_mail):
        for secret in (SECRET_REASON, "serious injury", "injury", "no suitable employment"):
            assert secret not in mail.as_string()

    assert sent.event_type == "notification.sent"
    assert sent.payload["template"] == "sla_breached"
    assert sent.payload["recipient_id"] == owner.id
    assert str(owner.email) not in json.dumps(sent.payload)
    records = await admin_pool.fetch(
        "SELECT * FROM notifications.deliveries WHERE source_event_id = $1", breached.event_id
    )
    assert [(r["status"], r["attempts"], r["recipient_id"]) for r in records] == [
        ("sent", 1, owner.id)
    ]


async def test_reassignment_and_escalation_reach_the_right_people(
    topology: None,
    sink: MailSink,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    first, second, lead = staff("Pat Previous"), staff("Nina Newowner"), staff("Lee Lead")
    assigned = case_assigned(owner=first)
    case_id, ref = assigned.case_id, payload_as(assigned, CaseAssigned).reference
    assert case_id is not None
    reassigned = case_assigned(case_id=case_id, ref=ref, owner=second, previous_owner_id=first.id)
    escalated = case_escalated(case_id=case_id, ref=ref, to=lead)
    # The timer names no owner: notifications falls back to the owner it learned last.
    warning = sla_event(case_id=case_id, ref=ref, owner_id=None, breached=False)

    async with running_service(database_url, rabbitmq_url, sink.port):
        for event in (assigned, reassigned, escalated, warning):
            await publish_envelope(amqp, event)
        first_mails = await eventually(mails_to(sink, first, 2), what="previous owner emails")
        await eventually(mails_to(sink, second, 2), what="new owner emails")
        [escalation_mail] = await eventually(mails_to(sink, lead, 1), what="escalation email")

    [moved] = [m for m in first_mails if "reassigned" in str(m["Subject"])]
    assert str(moved["Subject"]) == f"[{ref}] Case reassigned"
    for detail in ("Nina", second.id, str(second.email)):
        assert detail not in moved.as_string()
    second_subjects = sorted(str(m["Subject"]) for m in sink.messages_to(str(second.email)))
    assert second_subjects == [
        f"[{ref}] Case assigned to you (P2)",
        f"[{ref}] First response due soon (P2)",
    ]
    assert str(escalation_mail["Subject"]) == f"[{ref}] Case escalated to you (level 1)"
    body = escalation_mail.get_content()
    assert "first response SLA breached" in body
    assert f"https://hr.example.org/portal/cases/{case_id}" in body
    assert len(sink.messages_to(str(first.email))) == 2  # nothing after the reassignment

    owner_row = await admin_pool.fetchrow(
        "SELECT owner_id, priority FROM notifications.case_owners WHERE case_id = $1", case_id
    )
    assert owner_row is not None
    assert (owner_row["owner_id"], owner_row["priority"]) == (second.id, "P2")
    contact = await admin_pool.fetchrow(
        "SELECT name, email FROM notifications.staff_contacts WHERE staff_id = $1", lead.id
    )
    assert contact is not None
    assert (contact["name"], contact["email"]) == (lead.name, str(lead.email))


async def test_owner_without_contact_is_a_recorded_failure(
    topology: None,
    sink: MailSink,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    # A case notifications never saw assigned: nobody to write to, but never a silent drop.
    case_id = uuid4()
    breached = sla_event(case_id=case_id, ref=reference(), owner_id="S-never-seen")
    before = len(sink.received())

    async with (
        notification_events(amqp) as events,
        running_service(database_url, rabbitmq_url, sink.port),
    ):
        await publish_envelope(amqp, breached)
        failed = await take_event(events, str(breached.event_id))

    assert failed.event_type == "notification.failed"
    assert failed.payload["error"] == "no contact for recipient"
    assert failed.payload["recipient_id"] == "S-never-seen"
    assert failed.payload["template"] == "sla_breached"
    assert failed.payload["attempts"] == 0
    assert failed.case_id == case_id
    record = await delivery(admin_pool, breached.event_id)
    assert record is not None
    assert (record["status"], record["last_error"], record["attempts"]) == (
        "failed",
        "no contact for recipient",
        0,
    )
    assert record["sent_at"] is None
    assert len(sink.received()) == before
    assert await admin_pool.fetchval(
        "SELECT count(*) FROM notifications.inbox WHERE event_id = $1", breached.event_id
    )
