"""Mail to internationalised addresses, from the bus to a real SMTP server.

A non-ASCII local part (the api-reporter-non-ascii-local-part field case) goes out with
SMTPUTF8 when the relay offers it, and is otherwise a recorded `notification.failed`
with the reason, never a dead letter. An IDN domain with an ASCII local part needs no
SMTPUTF8: it goes out as its A-label. The relay without SMTPUTF8 is a real aiosmtpd
server started here with `enable_SMTPUTF8=False`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection
from aiosmtpd.controller import Controller

from hrcase.mailsink import MailSink
from services.notifications.domain import notices as domain
from services.notifications.tests.factories import case_submitted
from services.notifications.tests.test_service import (
    delivery,
    eventually,
    notification_events,
    running_service,
    take_event,
)
from tests.support.bus import declare_topology, find_dead_letter, publish_envelope
from tests.support.infra import free_port

FIELD_CASES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "field_cases"
NON_ASCII = json.loads(
    (FIELD_CASES / "api-reporter-non-ascii-local-part.json").read_text(encoding="utf-8")
)["reporter"]["email"]


class _Recorder:
    """aiosmtpd handler that keeps each envelope (an ASCII-only relay's mailbox)."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture(scope="module")
def ascii_relay() -> Iterator[tuple[int, _Recorder]]:
    recorder = _Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, enable_SMTPUTF8=False)
    controller.start()
    try:
        yield port, recorder
    finally:
        controller.stop()


@pytest.fixture
async def topology(amqp: AbstractRobustConnection) -> None:
    await declare_topology(amqp)


async def _status(pool: asyncpg.Pool, event_id: Any, wanted: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        record = await delivery(pool, event_id)
        return record if record and record["status"] == wanted else None

    return await eventually(probe, what=f"{wanted} delivery record")


async def test_non_ascii_local_part_is_delivered_with_smtputf8(
    topology: None,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    assert NON_ASCII == "jürgen.groß@example.com"
    submitted = case_submitted(email=NON_ASCII)
    with MailSink(port=free_port()) as sink:
        async with (
            notification_events(amqp) as events,
            running_service(database_url, rabbitmq_url, sink.port),
        ):
            await publish_envelope(amqp, submitted)
            await _status(admin_pool, submitted.event_id, "sent")
            event = await take_event(events, str(submitted.event_id))

        [mail] = sink.messages_to(NON_ASCII)
    assert event.event_type == "notification.sent"
    assert [a.addr_spec for a in mail["To"].addresses] == [NON_ASCII]
    assert str(mail["To"]) == NON_ASCII


async def test_relay_without_smtputf8_is_a_recorded_failure_not_a_dead_letter(
    topology: None,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
    ascii_relay: tuple[int, _Recorder],
) -> None:
    port, relay = ascii_relay
    submitted = case_submitted(email=NON_ASCII)
    async with (
        notification_events(amqp) as events,
        running_service(database_url, rabbitmq_url, port),
    ):
        await publish_envelope(amqp, submitted)
        record = await _status(admin_pool, submitted.event_id, "failed")
        event = await take_event(events, str(submitted.event_id))

    assert event.event_type == "notification.failed"
    assert "SMTPUTF8" in event.payload["error"]
    assert event.payload["error"] == record["last_error"]
    assert NON_ASCII not in json.dumps(event.payload, ensure_ascii=False)
    assert record["attempts"] == 1  # permanent: not retried
    assert relay.envelopes == []
    assert await admin_pool.fetchval(
        "SELECT count(*) FROM notifications.inbox WHERE event_id = $1", submitted.event_id
    )
    dead = await find_dead_letter(
        amqp, "notifications.events.dlq", str(submitted.event_id), timeout=1.0
    )
    assert dead is None


@pytest.mark.parametrize(
    ("address", "envelope_to"),
    [
        ("marie@bücher.de", "marie@xn--bcher-kva.de"),
        ("priya.nair@corp.local", "priya.nair@corp.local"),
        ("ops@hr.internal", "ops@hr.internal"),
    ],
)
async def test_idn_and_internal_domains_reach_an_ascii_only_relay(
    topology: None,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
    ascii_relay: tuple[int, _Recorder],
    address: str,
    envelope_to: str,
) -> None:
    port, relay = ascii_relay
    submitted = case_submitted(email=address)
    async with running_service(database_url, rabbitmq_url, port):
        await publish_envelope(amqp, submitted)
        await _status(admin_pool, submitted.event_id, "sent")

    [envelope] = [e for e in relay.envelopes if e.rcpt_tos == [envelope_to]]
    assert not envelope.smtp_utf8


def test_the_to_header_is_ascii_where_it_can_be_and_utf8_where_it_must() -> None:
    assert str(domain.recipient_address("marie@bücher.de")) == "marie@xn--bcher-kva.de"
    utf8 = domain.recipient_address(NON_ASCII)
    assert (utf8.username, utf8.domain) == ("jürgen.groß", "example.com")
    with pytest.raises(domain.UnsendableAddress):  # recorded as failed by the handler
        domain.recipient_address("not an address")
