"""The reporter's update mails, in-process on the real broker, database and an SMTP sink:
one mail per event however often it is delivered, none for an internal note or a move
caused by a message, and a failed delivery on record (with its event) when SMTP is down."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from aio_pika.abc import AbstractRobustConnection

from hrcase.mailsink import MailSink
from services.notifications.tests.factories import (
    SECRET_NOTE,
    case_routed,
    case_submitted,
    message_received,
    note_added,
    reporter_of,
    status_changed,
)
from services.notifications.tests.test_service import (
    delivery,
    eventually,
    notification_events,
    running_service,
    sink,
    take_event,
    topology,
)
from shared.events import CaseSubmitted, payload_as
from tests.support.bus import publish_envelope
from tests.support.infra import free_port

__all__ = ["sink", "topology"]  # fixtures, shared with test_service


async def test_one_mail_per_event_even_when_delivered_twice(
    topology: None,
    sink: MailSink,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    submitted = case_submitted()
    payload = payload_as(submitted, CaseSubmitted)
    address = str(reporter_of(payload).email)
    case_id, ref = submitted.case_id, payload.reference
    assert case_id is not None
    internal = note_added(case_id=case_id, ref=ref, internal=True)
    shared = note_added(case_id=case_id, ref=ref, internal=False)
    staff_message = message_received(case_id=case_id, ref=ref)
    # Routing's automatic move on that message: the message's own mail covers it.
    automatic = status_changed(
        case_id=case_id, ref=ref, to_status="in_progress", caused_by=staff_message
    )
    waiting = status_changed(
        case_id=case_id,
        ref=ref,
        from_status="in_progress",
        to_status="waiting_on_employee",
        reason="Please send the signed form.",
    )

    async with running_service(database_url, rabbitmq_url, sink.port):
        for envelope in (
            submitted,
            case_routed(case_id=case_id, ref=ref),
            internal,
            shared,
            shared,  # redelivered
            staff_message,
            automatic,
            waiting,
            waiting,  # redelivered
        ):
            await publish_envelope(amqp, envelope)

        async def four() -> list[Any] | None:
            mails = sink.messages_to(address)
            return mails if len(mails) >= 4 else None

        mails = await eventually(four, what="four mails to the reporter")
        subjects = [str(m["Subject"]).split("] ", 1)[1] for m in mails]
        assert subjects == [
            "We have received your case",
            "HR has shared an update on your case",
            "HR has written to you about your case",
            "We need something from you",
        ]
        assert "Please send the signed form." in mails[3].get_content()
        for mail in mails:
            assert SECRET_NOTE not in mail.as_string() and "NOTE-MARKER" not in mail.as_string()
        # The duplicates were consumed (inbox) without a second mail or record.
        assert await delivery(admin_pool, internal.event_id) is None
        assert await delivery(admin_pool, automatic.event_id) is None
        record = await delivery(admin_pool, shared.event_id)
        assert record is not None and record["status"] == "sent" and record["attempts"] == 1
    assert len(sink.messages_to(address)) == 4


async def test_smtp_down_is_a_failed_reporter_delivery(
    topology: None,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    submitted = case_submitted()
    payload = payload_as(submitted, CaseSubmitted)
    assert submitted.case_id is not None
    shared = note_added(case_id=submitted.case_id, ref=payload.reference, internal=False)

    async with (
        notification_events(amqp) as events,
        running_service(database_url, rabbitmq_url, smtp_port=free_port()),
    ):
        await publish_envelope(amqp, submitted)
        await publish_envelope(amqp, shared)

        async def failed() -> dict[str, Any] | None:
            record = await delivery(admin_pool, shared.event_id)
            return record if record and record["status"] == "failed" else None

        record = await eventually(failed, what="failed reporter delivery", timeout=60)
        event = await take_event(events, str(shared.event_id))

    assert record["template"] == "reporter_note" and record["last_error"]
    assert event.event_type == "notification.failed"
    assert event.payload["recipient_id"] == reporter_of(payload).employee_id
    assert str(reporter_of(payload).email) not in json.dumps(event.payload)
