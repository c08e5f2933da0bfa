"""Consuming with an inbox: one transaction per event records its id with its effect.

Outcomes of one delivery:
- processed: effect + inbox row + any outgoing events committed, then ack;
- duplicate: the inbox already has the event_id with the same body digest, ack and do nothing;
- conflict: the inbox has the event_id with a different body: dead-lettered now
  (EventIdConflict), never applied and never silently dropped;
- not authenticated: the envelope's `producer` is not the service whose broker user
  published it (the AMQP `user_id` RabbitMQ validated), or that service may not publish
  this event type: dead-lettered now (ProducerNotAuthenticated), nothing applied;
- bad input (unparseable, unknown type, PermanentError): dead-lettered now, reason in headers;
- handler failure: requeued until `max_attempts`, then dead-lettered with the reason.
The broker's own delivery limit (shared.topology) catches a message that kills the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import aio_pika
import asyncpg
import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError

from shared.bus import Publisher
from shared.envelope import Actor, Envelope
from shared.errors import PermanentError
from shared.events import EventPayload, UnknownEventType, make_event
from shared.metrics import EVENT_HANDLE_SECONDS, EVENTS_CONSUMED
from shared.outbox import enqueue
from shared.settings import get_settings
from shared.topology import may_publish

log = structlog.get_logger(__name__)


class ProducerNotAuthenticated(PermanentError):
    """The envelope claims a producer the broker did not authenticate."""


class EventIdConflict(PermanentError):
    """An event_id already consumed arrived again with a different body."""


def producer_refusal(user_id: str | None, envelope: Envelope, *, user_prefix: str) -> str | None:
    """Why this event's producer is not trusted, or None when it is.

    Trusted: the message carries the AMQP `user_id` (RabbitMQ refuses a publish whose
    user_id is not the connection's user), that user is `<user_prefix><service>`, the
    envelope's `producer` is that service, and the service is declared to publish the
    event type (shared.topology.PUBLISHES).
    """
    if not user_id:
        return (
            f"producer {envelope.producer!r} not authenticated: the message has no"
            " broker-validated user_id"
        )
    service = user_id[len(user_prefix) :] if user_id.startswith(user_prefix) else None
    if not service:
        return (
            f"producer {envelope.producer!r} not authenticated: {user_id!r} is no"
            " service's broker user"
        )
    if envelope.producer != service:
        return (
            f"producer {envelope.producer!r} does not match the broker user {user_id!r}"
            f" that published it (service {service!r})"
        )
    if not may_publish(service, envelope.event_type):
        return f"{service!r} is not declared to publish {envelope.event_type!r}"
    return None


def envelope_digest(envelope: Envelope) -> bytes:
    """SHA-256 of the envelope's canonical JSON: equal for a true redelivery, whatever the
    body's whitespace or member order; different when any field differs."""
    canonical = json.dumps(
        envelope.model_dump(mode="json"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).digest()


@dataclass
class HandlerContext:
    """What a handler gets: the event, a connection inside the event's transaction, an emitter."""

    envelope: Envelope
    conn: asyncpg.Connection
    service: str
    schema: str

    async def emit(
        self,
        payload: EventPayload,
        *,
        case_id: UUID | None = None,
        actor: Actor | None = None,
    ) -> Envelope:
        """Queue an event caused by this one, committed with the handler's effect."""
        event = make_event(
            payload,
            producer=self.service,
            actor=actor or Actor(type="service", id=self.service),
            case_id=case_id if case_id is not None else self.envelope.case_id,
            caused_by=self.envelope,
        )
        await enqueue(self.conn, self.schema, event)
        return event


Handler = Callable[[HandlerContext], Awaitable[None]]


class _KeyedLocks:
    """One asyncio lock per case so a case's events are handled in delivery order."""

    def __init__(self) -> None:
        self._locks: dict[Any, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Any) -> Any:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def delivery_attempt(message: AbstractIncomingMessage) -> int:
    """1 for the first delivery; quorum queues count redeliveries in x-delivery-count."""
    count = (message.headers or {}).get("x-delivery-count", 0)
    try:
        return int(count) + 1  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1


async def dead_letter(
    publisher: Publisher,
    message: AbstractIncomingMessage,
    *,
    service: str,
    queue_name: str,
    reason: str,
    error_type: str,
    attempts: int,
) -> None:
    """Copy the message to the DLQ with why it failed, then ack the original.

    The copy is published by this service (its own user_id); the broker user that
    published the original, if any, travels in `x-original-user-id`.
    """
    headers = dict(message.headers or {})
    headers.update(
        {
            "x-error": reason[:2000],
            "x-error-type": error_type,
            "x-failed-service": service,
            "x-attempts": attempts,
            "x-original-routing-key": message.routing_key or "",
            "x-original-user-id": message.user_id or "",
            "x-failed-at": datetime.now(UTC).isoformat(),
        }
    )
    copy = aio_pika.Message(
        body=message.body,
        headers=headers,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        type=message.type,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    await publisher.dead_letter(copy, queue_name)
    await message.ack()


class EventConsumer:
    """Consumes `<service>.events` with per-event transactions and an inbox."""

    def __init__(
        self,
        *,
        service: str,
        schema: str,
        queue: AbstractQueue,
        pool: asyncpg.Pool,
        publisher: Publisher,
        handlers: Mapping[str, Handler],
        on_commit: Callable[[], None] | None = None,
        max_attempts: int = 5,
        retry_backoff: float = 0.2,
        user_prefix: str | None = None,
    ) -> None:
        self.service = service
        self.schema = schema
        self.queue = queue
        self.pool = pool
        self.publisher = publisher
        self.handlers = dict(handlers)
        self.on_commit = on_commit
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        # Broker users are `<user_prefix><service>` (shared.settings.rabbitmq_user).
        self.user_prefix = (
            user_prefix if user_prefix is not None else get_settings().rabbitmq_user_prefix
        )
        self._locks = _KeyedLocks()
        self._tasks: set[asyncio.Task[None]] = set()
        self._consumer_tag: str | None = None

    async def start(self) -> None:
        self._consumer_tag = await self.queue.consume(self._on_message, no_ack=False)

    async def stop(self) -> None:
        if self._consumer_tag:
            with contextlib.suppress(Exception):
                await self.queue.cancel(self._consumer_tag)
            self._consumer_tag = None
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=15)

    @property
    def running(self) -> bool:
        return self._consumer_tag is not None

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # Parse synchronously and take the case lock in delivery order.
        task = asyncio.create_task(self._handle_logged(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle_logged(self, message: AbstractIncomingMessage) -> None:
        try:
            await self._handle(message)
        except Exception as exc:
            # Ack/nack/dead-letter itself failed (broker gone): the message stays unacked
            # and the broker redelivers it when the channel closes; nothing is lost.
            log.error("delivery left unsettled", error=repr(exc), message_id=message.message_id)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        attempt = delivery_attempt(message)
        try:
            envelope = Envelope.from_json_bytes(message.body)
        except ValidationError as exc:
            await self._reject(message, "invalid envelope: " + _summary(exc), exc, attempt, "?")
            return
        event_type = envelope.event_type
        refusal = producer_refusal(message.user_id, envelope, user_prefix=self.user_prefix)
        if refusal is not None:
            await self._reject(
                message, refusal, ProducerNotAuthenticated(refusal), attempt, event_type
            )
            return
        handler = self.handlers.get(envelope.event_type)
        if handler is None:
            reason = f"{self.service} has no handler for {event_type}"
            await self._reject(message, reason, None, attempt, event_type)
            return
        with structlog.contextvars.bound_contextvars(
            event_id=str(envelope.event_id),
            correlation_id=str(envelope.correlation_id),
            case_id=str(envelope.case_id) if envelope.case_id else None,
            event_type=event_type,
        ):
            async with self._locks.hold(envelope.case_id or envelope.event_id):
                started = time.perf_counter()
                try:
                    outcome = await self._apply(envelope, handler)
                except (PermanentError, ValidationError, UnknownEventType) as exc:
                    await self._reject(message, _summary(exc), exc, attempt, event_type)
                    return
                except Exception as exc:
                    await self._retry_or_reject(message, exc, attempt, event_type)
                    return
                EVENT_HANDLE_SECONDS.labels(self.service, event_type).observe(
                    time.perf_counter() - started
                )
            await message.ack()
            EVENTS_CONSUMED.labels(self.service, event_type, outcome).inc()
            if outcome == "processed" and self.on_commit:
                self.on_commit()
            log.debug("event handled", outcome=outcome)

    async def _apply(self, envelope: Envelope, handler: Handler) -> str:
        digest = envelope_digest(envelope)
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(
                f"INSERT INTO {self.schema}.inbox (event_id, event_type, body_sha256)"
                " VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING RETURNING true",
                envelope.event_id,
                envelope.event_type,
                digest,
            )
            if not fresh:
                stored = await conn.fetchval(
                    f"SELECT body_sha256 FROM {self.schema}.inbox WHERE event_id = $1",
                    envelope.event_id,
                )
                # NULL: consumed before digests were kept; nothing to compare with.
                if stored is not None and bytes(stored) != digest:
                    raise EventIdConflict(
                        f"event_id {envelope.event_id} was already consumed with a different"
                        f" body (sha256 {bytes(stored).hex()[:16]}…, this one"
                        f" {digest.hex()[:16]}…): not applied"
                    )
                return "duplicate"
            await handler(HandlerContext(envelope, conn, self.service, self.schema))
        return "processed"

    async def _retry_or_reject(
        self, message: AbstractIncomingMessage, exc: Exception, attempt: int, event_type: str
    ) -> None:
        if attempt >= self.max_attempts:
            await self._reject(message, _summary(exc), exc, attempt, event_type)
            return
        log.warning("handler failed, will retry", attempt=attempt, error=_summary(exc))
        EVENTS_CONSUMED.labels(self.service, event_type, "retried").inc()
        # A short pause so a transient fault (DB failover) is not hammered.
        await asyncio.sleep(min(self.retry_backoff * 2 ** (attempt - 1), 5.0))
        await message.nack(requeue=True)

    async def _reject(
        self,
        message: AbstractIncomingMessage,
        reason: str,
        exc: BaseException | None,
        attempt: int,
        event_type: str,
    ) -> None:
        log.error("event dead-lettered", reason=reason, attempt=attempt)
        await dead_letter(
            self.publisher,
            message,
            service=self.service,
            queue_name=self.queue.name,
            reason=reason,
            error_type=type(exc).__name__ if exc else "Unhandled",
            attempts=attempt,
        )
        EVENTS_CONSUMED.labels(self.service, event_type, "dead_lettered").inc()


def _summary(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()[:10]
        )
    return f"{type(exc).__name__}: {exc}"
