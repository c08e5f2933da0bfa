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


async def get_dead_letters(
    connection: AbstractRobustConnection, dlq: str, *, expect: int = 1, timeout: float = 20.0
) -> list[AbstractIncomingMessage]:
    """Take (and ack) messages from a DLQ until `expect` arrived or the deadline passes."""
    found: list[AbstractIncomingMessage] = []
    async with connection.channel() as channel:
        queue = await channel.get_queue(dlq)
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found) < expect and asyncio.get_running_loop().time() < deadline:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                await asyncio.sleep(0.1)
                continue
            await message.ack()
            found.append(message)
    return found


async def purge(connection: AbstractRobustConnection, queue_name: str) -> None:
    async with connection.channel() as channel:
        queue = await channel.get_queue(queue_name)
        await queue.purge()


__all__ = ["aio_pika", "declare_topology", "get_dead_letters", "publish_envelope", "publish_raw"]
