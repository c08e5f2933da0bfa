"""The last mail-loop breaker: acknowledgements to one address are limited per hour.

The service in-process on the real broker and database, delivering to a real SMTP sink.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from aio_pika.abc import AbstractRobustConnection

from hrcase.mailsink import MailSink
from services.notifications.app import SPEC
from services.notifications.tests.factories import case_submitted
from services.notifications.tests.test_service import (
    delivery,
    eventually,
    notification_events,
    sink,
    take_event,
    topology,
)
from shared.envelope import Envelope
from shared.service import Runtime, start_runtime, stop_runtime
from shared.settings import Settings
from tests.support.bus import publish_envelope

__all__ = ["sink", "topology"]  # fixtures shared with test_service
LIMIT = 2


def by_email(email: str | None = None) -> Envelope:
    """A case.submitted of a case opened by email (the factory's default is the portal)."""
    envelope = case_submitted(email=email)
    return envelope.model_copy(update={"payload": {**envelope.payload, "channel": "email"}})


@asynccontextmanager
async def limited_service(
    database_url: str, rabbitmq_url: str, smtp_port: int
) -> AsyncIterator[Runtime]:
    settings = Settings(
        database_url=database_url,
        rabbitmq_url=rabbitmq_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        acknowledgements_per_address_per_hour=LIMIT,
    )
    runtime = await start_runtime(SPEC, settings)
    try:
        yield runtime
    finally:
        await stop_runtime(runtime)


async def test_acknowledgements_beyond_the_hourly_limit_are_recorded_not_sent(
    topology: None,
    sink: MailSink,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    looping = "Out.Of.Office@Example.com"  # addresses compare case-insensitively
    cases = [by_email(looping if i % 2 else looping.lower()) for i in range(LIMIT)]
    over = by_email(looping.lower())
    other = by_email()
    # The portal cannot loop with our mail: its acknowledgements are not limited.
    portal = case_submitted(email=looping)

    async with (
        notification_events(amqp) as events,
        limited_service(database_url, rabbitmq_url, sink.port),
    ):
        for envelope in cases:
            await publish_envelope(amqp, envelope)
            await take_event(events, str(envelope.event_id))  # one after the other
        await publish_envelope(amqp, over)
        failed = await take_event(events, str(over.event_id))
        await publish_envelope(amqp, other)
        assert (await take_event(events, str(other.event_id))).event_type == "notification.sent"
        await publish_envelope(amqp, portal)
        assert (await take_event(events, str(portal.event_id))).event_type == "notification.sent"

        async def looping_mail() -> list[Any]:
            return [m for m in sink.received() if looping.lower() in str(m["To"]).lower()]

        assert len(await eventually(looping_mail, what="acknowledgements")) == LIMIT + 1

        # An hour later the address is acknowledged again.
        await admin_pool.execute(
            "UPDATE notifications.deliveries SET created_at = created_at - interval '61 minutes'"
            " WHERE source_event_id = ANY($1::uuid[])",
            [e.event_id for e in (*cases, portal)],
        )
        later = by_email(looping)
        await publish_envelope(amqp, later)
        assert (await take_event(events, str(later.event_id))).event_type == "notification.sent"

    assert failed.event_type == "notification.failed"
    assert failed.payload["error"].startswith("suppressed:")
    assert failed.payload["attempts"] == 0
    assert looping.lower() not in str(failed.payload).lower()  # events carry ids, not addresses
    record = await delivery(admin_pool, over.event_id)
    assert record is not None
    assert record["status"] == "failed" and record["last_error"] == failed.payload["error"]
    sent = [m for m in sink.received() if looping.lower() in str(m["To"]).lower()]
    assert len(sent) == LIMIT + 2  # two by email, the portal case's, and one an hour later
