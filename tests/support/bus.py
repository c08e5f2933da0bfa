"""Bus helpers for tests: publish envelopes or raw bodies, read a dead-letter queue."""

from __future__ import annotations

import asyncio

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from shared.bus import build_message
from shared.envelope import Envelope
from shared.topology import EXCHANGE, declare_all


async def declare_topology(connection: AbstractRobustConnection) -> None:
    async with connection.channel() as channel:
        await declare_all(channel)


async def publish_envelope(connection: AbstractRobustConnection, envelope: Envelope) -> None:
    await publish_raw(
        connection,
        envelope.to_json_bytes(),
        routing_key=envelope.event_type,
        message_id=str(envelope.event_id),
    )


async def publish_raw(
    connection: AbstractRobustConnection, body: bytes, *, routing_key: str, message_id: str
) -> None:
    async with connection.channel(publisher_confirms=True) as channel:
        exchange = await channel.get_exchange(EXCHANGE)
        await exchange.publish(
            build_message(body, event_id=message_id, event_type=routing_key, correlation_id=None),
            routing_key=routing_key,
            mandatory=True,
        )


async def find_dead_letter(
    connection: AbstractRobustConnection, dlq: str, message_id: str, *, timeout: float = 20.0
) -> AbstractIncomingMessage | None:
    """Take the dead letter with `message_id` from a DLQ; others are put back untouched."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        async with connection.channel() as channel:
            queue = await channel.get_queue(dlq)
            others: list[AbstractIncomingMessage] = []
            try:
                while (message := await queue.get(no_ack=False, fail=False)) is not None:
                    if message.message_id == message_id:
                        await message.ack()
                        return message
                    others.append(message)
            finally:
                for other in others:
                    await other.nack(requeue=True)
        await asyncio.sleep(0.2)
    return None


async def purge(connection: AbstractRobustConnection, queue_name: str) -> None:
    async with connection.channel() as channel:
        queue = await channel.get_queue(queue_name)
        await queue.purge()


__all__ = ["aio_pika", "declare_topology", "find_dead_letter", "publish_envelope", "publish_raw"]
