"""Bus helpers for tests: publish envelopes or raw bodies, read a dead-letter queue."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from yarl import URL

from hrcase.services import QUEUES
from shared.bus import build_message
from shared.envelope import Envelope
from shared.privacy.keys import KeyStore, key_store_url
from shared.privacy.sealing import open_payload
from shared.settings import Settings, dev_rabbitmq_password
from shared.topology import EXCHANGE, declare_all


async def declare_topology(connection: AbstractRobustConnection) -> None:
    async with connection.channel() as channel:
        await declare_all(channel, QUEUES.values())


_AS_USER: dict[tuple[str, str], AbstractRobustConnection] = {}


def vhost_url(connection: AbstractRobustConnection) -> str:
    """RABBITMQ_URL-style URL (admin credentials) of the connection's vhost."""
    return str(connection.url)  # type: ignore[attr-defined]


async def connection_as(
    connection: AbstractRobustConnection, publisher: str
) -> AbstractRobustConnection:
    """A connection to the same vhost as `publisher`'s own broker user (kept for the run)."""
    url = Settings(rabbitmq_url=vhost_url(connection)).service_rabbitmq_url(publisher)
    key = (url, publisher)
    if key not in _AS_USER or _AS_USER[key].is_closed:
        _AS_USER[key] = await aio_pika.connect_robust(url)
    return _AS_USER[key]


async def impersonator(connection: AbstractRobustConnection) -> AbstractRobustConnection:
    """The run's test-only user that may set any user_id (tests.support.infra.IMPERSONATOR)."""
    from tests.support.infra import IMPERSONATOR

    url = URL(vhost_url(connection)).with_user(IMPERSONATOR)
    url = url.with_password(dev_rabbitmq_password(IMPERSONATOR))
    key = (str(url), IMPERSONATOR)
    if key not in _AS_USER or _AS_USER[key].is_closed:
        _AS_USER[key] = await aio_pika.connect_robust(url)
    return _AS_USER[key]


def user_of(publisher: str) -> str:
    """The broker user (the AMQP user_id) a publisher's messages carry."""
    return Settings().rabbitmq_user(publisher)


async def close_connections() -> None:
    for connection in _AS_USER.values():
        with contextlib.suppress(Exception):
            await connection.close()
    _AS_USER.clear()
    for store in _CAPTURE_STORES.values():
        with contextlib.suppress(Exception):
            await store.close()
    _CAPTURE_STORES.clear()


async def publish_envelope(connection: AbstractRobustConnection, envelope: Envelope) -> None:
    """Publish as the envelope's producer would: over its own broker user, with user_id set."""
    await publish_raw(
        connection,
        envelope.to_json_bytes(),
        routing_key=envelope.event_type,
        message_id=str(envelope.event_id),
        as_publisher=envelope.producer,
    )


async def publish_raw(
    connection: AbstractRobustConnection,
    body: bytes,
    *,
    routing_key: str,
    message_id: str,
    as_publisher: str | None = None,
) -> None:
    """Publish a body on hr.events: over `connection` itself (no user_id: an anonymous
    client, e.g. the guest account), or as `as_publisher`'s broker user with its user_id."""
    user_id = None
    if as_publisher is not None:
        connection = await connection_as(connection, as_publisher)
        user_id = Settings(rabbitmq_url=vhost_url(connection)).rabbitmq_user(as_publisher)
    async with connection.channel(publisher_confirms=True) as channel:
        exchange = await channel.get_exchange(EXCHANGE, ensure=False)
        await exchange.publish(
            build_message(
                body,
                event_id=message_id,
                event_type=routing_key,
                correlation_id=None,
                user_id=user_id,
            ),
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


# The key stores of the systems running now (tests.support.system.running_system pushes
# its database's): a capture opens personal fields with the newest, as a peer service
# with key-store access does (shared.consumer), so tests read what a consumer reads.
KEY_STORE_DATABASES: list[str] = []


async def _capture_key_store() -> KeyStore | None:
    if not KEY_STORE_DATABASES:
        return None
    url = key_store_url(Settings(database_url=KEY_STORE_DATABASES[-1]))
    store = _CAPTURE_STORES.get(url)
    if store is None:
        store = _CAPTURE_STORES[url] = await KeyStore.open(url, service="tests")
    return store


_CAPTURE_STORES: dict[str, KeyStore] = {}


class EventCapture:
    """Every event published on hr.events while it is open (an exclusive queue bound to #).

    `events`: as a consumer with key-store access reads them (personal fields opened,
    shared.privacy); `sealed`: as they travelled on the bus."""

    def __init__(self, queue: AbstractQueue, keys: KeyStore | None = None) -> None:
        self.queue = queue
        self.keys = keys
        self.events: list[dict[str, Any]] = []
        self.sealed: list[dict[str, Any]] = []

    async def _opened(self, event: dict[str, Any]) -> dict[str, Any]:
        payload = event.get("payload")
        if self.keys is None or not isinstance(payload, dict):
            return event
        case_id = event.get("case_id")
        opened = await open_payload(
            self.keys,
            str(event.get("event_type")),
            payload,
            UUID(case_id) if isinstance(case_id, str) else None,
            purpose="test capture",
        )
        return {**event, "payload": opened}

    async def wait(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        """The first captured event matching `predicate`, polled until the deadline."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            message = await self.queue.get(no_ack=True, fail=False)
            if message is not None:
                event = json.loads(message.body)
                self.sealed.append(event)
                self.events.append(await self._opened(event))
                continue
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("no matching event was published")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def capture_events(connection: AbstractRobustConnection) -> AsyncIterator[EventCapture]:
    channel = await connection.channel()
    try:
        exchange = await channel.get_exchange(EXCHANGE)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="#")
        yield EventCapture(queue, await _capture_key_store())
    finally:
        await channel.close()
