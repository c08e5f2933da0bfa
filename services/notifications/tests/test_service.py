"""The service in-process on the real broker and database, delivering to a real SMTP sink."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection

from hrcase.mailsink import MailSink
from services.notifications import domain
from services.notifications.app import SPEC
from services.notifications.tests.factories import (
    SECRET_DESCRIPTION,
    SECRET_SUBJECT,
    case_assigned,
    case_submitted,
    reporter_of,
)
from shared.envelope import Envelope
from shared.events import CaseAssigned, CaseSubmitted, payload_as
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
        assert f"https://hr.example.org/cases/{submitted.case_id}" in body
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
        assert f"https://hr.example.org/console/cases/{submitted.case_id}" in owner_body
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
