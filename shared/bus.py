"""The AMQP adapter: a robust connection and a publisher with confirms and mandatory routing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)

from shared.topology import DEAD_LETTER_EXCHANGE, EXCHANGE, SLOT_HEADER, slot_headers


async def connect(url: str, name: str = "hrcase") -> AbstractRobustConnection:
    """A robust connection; `name` shows in the broker's connection list."""
    return await aio_pika.connect_robust(url, client_properties={"connection_name": name})


def persistent_copy(
    message: AbstractIncomingMessage, headers: Mapping[str, Any], *, user_id: str | None = None
) -> aio_pika.Message:
    """A persistent copy of a received message (body, ids, type, content headers) with
    `headers` in place of its own: a dead letter's copy, or a replayed dead letter's
    (`user_id`: the broker user it must be published as)."""
    return aio_pika.Message(
        body=message.body,
        headers=dict(headers),
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        type=message.type,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        user_id=user_id,
    )


def build_message(
    body: bytes,
    *,
    event_id: str,
    event_type: str,
    correlation_id: str | None,
    headers: Mapping[str, Any] | None = None,
    user_id: str | None = None,
) -> aio_pika.Message:
    """A persistent JSON message. `user_id` must be the connection's broker user: RabbitMQ
    refuses any other value (PRECONDITION_FAILED), so consumers can trust it."""
    return aio_pika.Message(
        body=body,
        message_id=event_id,
        type=event_type,
        correlation_id=correlation_id,
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers=dict(headers or {}),
        user_id=user_id,
    )


class Publisher:
    """Publishes persistent messages and waits for the broker's confirm.

    `mandatory=True` makes an unroutable event raise (aio-pika's DeliveryError)
    instead of vanishing; the outbox then keeps the event and retries.
    `user_id` (the connection's broker user) is stamped on every message it sends, so
    the broker validates who published it.
    """

    def __init__(
        self,
        channel: AbstractChannel,
        events: AbstractExchange,
        dlx: AbstractExchange,
        user_id: str | None = None,
    ):
        self.channel = channel
        self.events = events
        self.dlx = dlx
        self.user_id = user_id

    @classmethod
    async def open(
        cls, connection: AbstractRobustConnection, *, user_id: str | None = None
    ) -> Publisher:
        channel = await connection.channel(publisher_confirms=True)
        events = await channel.get_exchange(EXCHANGE, ensure=True)
        dlx = await channel.get_exchange(DEAD_LETTER_EXCHANGE, ensure=True)
        return cls(channel, events, dlx, user_id)

    async def publish(self, message: aio_pika.Message, routing_key: str) -> None:
        """Publish an event; stamps its routing slot (`hrcase-slot`, shared.topology) from
        the envelope body unless the message carries one."""
        if self.user_id is not None:
            message.user_id = self.user_id
        if SLOT_HEADER not in (message.headers or {}):
            message.headers = {**(message.headers or {}), **slot_headers(message.body)}
        await self.events.publish(message, routing_key=routing_key, mandatory=True)

    async def dead_letter(self, message: aio_pika.Message, queue_name: str) -> None:
        if self.user_id is not None:
            message.user_id = self.user_id
        await self.dlx.publish(message, routing_key=queue_name, mandatory=True)
