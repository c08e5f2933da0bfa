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
- handler failure: retried in this process, holding the case's lock (so no later event of
  the case overtakes it), with backoff until `max_attempts`, then dead-lettered;
- case held: an authenticated event of a case dead-lettered for any reason above (but an
  id conflict) holds its case (shared.case_holds): the case's later events are
  dead-lettered behind it (CaseHeld, naming it) until the held ones are replayed in order.
With a key store (`keys`), the handler sees the payload's personal fields opened
(shared.privacy.sealing; ERASED where the key was destroyed); the inbox digest is the
sealed body's. A sealed value that does not open is bad input (SealedDataError).
A message redelivered more than `max_attempts` times (its consumers died handling it) is
dead-lettered with a hold (RedeliveredUnsettled); the broker's own delivery limit
(shared.topology) stays the last backstop.

Group commit (`batch_size` > 1, CONSUMER_BATCH_SIZE; README "Consumer batches"): the
deliveries being handled at one moment (each of another case: a case's events wait on its
lock) are applied in ONE transaction: one inbox INSERT for all of them (the held check in
the same statement), their handlers in turn on the one connection, one outbox INSERT, one
COMMIT. No batch waits to fill: up to `batches_in_flight` batches run at once, and a batch
is whatever queued while they were all busy (one event at low load). An event the batch
does not apply (a duplicate, an id conflict, a held case, a twin) and every event of a
batch that failed anywhere (a handler, the outbox write, the commit: rolled back whole) is
then applied alone exactly as without batching, so its outcome, retries and dead letter
are its own. Safe because the inbox row commits with the
effects: an event is acked only once its transaction committed, and one applied by a batch
whose commit went unanswered is a duplicate when applied alone. Only for services whose
handlers do nothing outside the transaction (a batch may run a handler once more alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Union
from uuid import UUID

import asyncpg
import structlog
from aio_pika.abc import AbstractIncomingMessage
from faststream import AckPolicy
from faststream._internal.endpoint.subscriber.utils import MultiLock
from faststream.rabbit import RabbitBroker, RabbitQueue
from faststream.rabbit.message import RabbitMessage
from faststream.rabbit.subscriber import RabbitSubscriber
from opentelemetry.trace import Span, StatusCode
from pydantic import ValidationError

from shared.bus import Publisher, persistent_copy
from shared.case_holds import CaseHeld, check_hold, record_hold
from shared.db import UNREACHABLE_WAIT_SECONDS, database_unreachable, unreachable_pause
from shared.envelope import Actor, Envelope
from shared.errors import PermanentError
from shared.events import EVENT_TYPES, EventPayload, UnknownEventType, make_event
from shared.metrics import (
    CONSUMER_BATCH_EVENTS,
    CONSUMER_BATCH_FALLBACKS,
    EVENT_HANDLE_SECONDS,
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
)
from shared.outbox import OutboxBuffer, active_buffer, enqueue
from shared.partition_leases import PartitionLeases
from shared.privacy.keys import KeyStore
from shared.privacy.sealing import open_envelope
from shared.settings import get_settings
from shared.stream import EventPublishers, envelope_model
from shared.topology import may_publish
from shared.tracing import span_when_tracing

log = structlog.get_logger(__name__)


class ProducerNotAuthenticated(PermanentError):
    """The envelope claims a producer the broker did not authenticate."""


class EventIdConflict(PermanentError):
    """An event_id already consumed arrived again with a different body."""


class RedeliveredUnsettled(PermanentError):
    """Delivered more than max_attempts times without being settled (consumers died)."""


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
    # The transaction's outbox buffer (written before the commit); None: the task's active
    # buffer on this connection (a context a handler made around `ctx`), else at once.
    outbox: OutboxBuffer | None = None

    async def emit(
        self,
        payload: EventPayload,
        *,
        case_id: UUID | None = None,
        actor: Actor | None = None,
    ) -> Envelope:
        """Queue an event caused by this one, committed with the handler's effect (its
        outbox row is written with the transaction's others just before the commit;
        UndeclaredEvent at once for a type this service may not publish)."""
        event = make_event(
            payload,
            producer=self.service,
            actor=actor or Actor(type="service", id=self.service),
            case_id=case_id if case_id is not None else self.envelope.case_id,
            caused_by=self.envelope,
        )
        outbox = self.outbox or active_buffer(self.conn, self.schema)
        if outbox is not None:
            outbox.add(event)
        else:
            await enqueue(self.conn, self.schema, event)
        return event


Handler = Callable[[HandlerContext], Awaitable[None]]


@dataclass(eq=False)
class _Queued:
    """A delivery waiting for the next batch (EventConsumer._apply)."""

    envelope: Envelope
    handler: Handler
    digest: bytes
    # The delivery's context (its span, its log fields): its handler runs in a copy.
    context: contextvars.Context
    # "processed" once its batch committed; None: to be applied alone (`_apply_one`).
    outcome: asyncio.Future[str | None]


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


def dead_letter_headers(
    message: AbstractIncomingMessage,
    *,
    service: str,
    reason: str,
    error_type: str,
    attempts: int,
) -> dict[str, Any]:
    """The failed delivery's headers plus why it failed (x-error, x-error-type, ...)."""
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
    return headers


async def dead_letter(
    publisher: Publisher,
    message: AbstractIncomingMessage,
    *,
    service: str,
    queue_name: str,
    reason: str,
    error_type: str,
    attempts: int,
    event_type: str = "?",
) -> None:
    """Copy the message to the DLQ with why it failed, then ack the original.

    The copy is published by this service (its own user_id); the broker user that
    published the original, if any, travels in `x-original-user-id`. (The aio-pika path,
    used by audit's batching ingest; EventConsumer sends through EventPublishers.)
    """
    headers = dead_letter_headers(
        message, service=service, reason=reason, error_type=error_type, attempts=attempts
    )
    await publisher.dead_letter(persistent_copy(message, headers), queue_name)
    await message.ack()
    EVENTS_DEAD_LETTERED.labels(service, event_type, error_type).inc()


class EventConsumer:
    """Consumes `<service>.events` through a FastStream subscriber, with per-event
    transactions and an inbox.

    The subscriber is declared on `broker` when the consumer is built (so the AsyncAPI
    document lists it) with `AckPolicy.MANUAL`: FastStream installs no ack middleware, and
    every delivery is settled here explicitly (ack, a reasoned copy to the DLQ then ack, or
    `reject(requeue=True)` when a case's hold cannot be recorded). Payloads are parsed
    here, not by FastStream's argument validation, so a bad one is dead-lettered with its
    reason.
    """

    def __init__(
        self,
        *,
        service: str,
        schema: str,
        broker: RabbitBroker,
        pool: asyncpg.Pool,
        publishers: EventPublishers,
        handlers: Mapping[str, Handler],
        on_commit: Callable[[], None] | None = None,
        max_attempts: int = 5,
        retry_backoff: float = 0.2,
        user_prefix: str | None = None,
        queue: RabbitQueue,
        keys: KeyStore | None = None,
        partitions: Sequence[RabbitQueue] | None = None,
        priorities: Sequence[int] | None = None,
        batch_size: int = 1,
        batches_in_flight: int = 4,
        leases: bool = False,
        lease_interval: float = 2.0,
        drain_timeout: float = 10.0,
    ) -> None:
        """`batch_size`: most events applied in one transaction (group commit, see the
        module docstring); 1 (default): one transaction per event. `batches_in_flight`:
        most batch transactions at once (each on a connection of `pool`). ValueError
        below 1. `leases` (with `partitions`): the replicas share the partitions by partition
        leases (shared.partition_leases, on one connection of `pool`, looked at every
        `lease_interval` seconds); this one consumes only those it holds, and one it gives
        up is released once its deliveries are settled (waiting up to `drain_timeout`
        seconds at a time). Without: every partition is consumed."""
        if batch_size < 1 or batches_in_flight < 1:
            raise ValueError(
                f"batch_size must be at least 1, not {batch_size}; batches_in_flight"
                f" at least 1, not {batches_in_flight}"
            )
        self.service = service
        # Opens personal fields before the handler; None: handlers see sealed tokens.
        self.keys = keys
        self.schema = schema
        # The service's declared queue (shared.stream.service_queue of its subscriptions).
        self.queue = queue
        self.broker = broker
        self.pool = pool
        self.publishers = publishers
        self.handlers = dict(handlers)
        self.on_commit = on_commit
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        # Broker users are `<user_prefix><service>` (shared.settings.rabbitmq_user).
        self.user_prefix = (
            user_prefix if user_prefix is not None else get_settings().rabbitmq_user_prefix
        )
        self._locks = _KeyedLocks()
        self._started = False
        self.batch_size = batch_size
        self.batches_in_flight = batches_in_flight
        self._queued: list[_Queued] = []
        # Each runs batches while deliveries are queued (`_run_batches`), then ends.
        self._batchers: set[asyncio.Task[None]] = set()
        # Partitioned (README "Partitions by case"): one subscriber per partition, each
        # queue with a single active consumer; `queue` only names the dead letters' key.
        consumed = list(partitions) if partitions else [self.queue]
        ranks = list(priorities or [])
        self.subscribers = [
            declare_subscriber(
                broker,
                service,
                partition,
                sorted(self.handlers),
                self._on_delivery,
                priority=ranks[index] if index < len(ranks) else None,
                dead_letters=f"{self.queue.name}.dlq",
            )
            for index, partition in enumerate(consumed)
        ]
        self.subscriber = self.subscribers[0]
        self.drain_timeout = drain_timeout
        self.leases: PartitionLeases | None = None
        if leases and partitions:
            self.leases = PartitionLeases(
                service=service,
                partitions=len(self.subscribers),
                connect=pool.acquire,
                disconnect=pool.release,
                take=self._take_partition,
                give_up=self._give_up_partition,
                interval=lease_interval,
            )

    async def start(self) -> None:
        self._started = True
        if self.leases is not None:
            await self.leases.start()
            return
        for subscriber in self.subscribers:
            await subscriber.start()

    async def _take_partition(self, partition: int) -> None:
        await self.subscribers[partition].start()

    async def _give_up_partition(self, partition: int) -> bool:
        """Cancel the partition's consumer at the broker (no delivery comes after the
        broker's cancel-ok), then wait for the deliveries it already received to be
        settled. True when none is left; False keeps the partition's lease (its queue's
        other consumers must not see a case's later event while an earlier one is
        still being handled here)."""
        subscriber = self.subscribers[partition]
        queue, tag = subscriber._queue_obj, subscriber._consumer_tag
        if queue is not None and tag is not None and not queue.channel.is_closed:
            await queue.cancel(tag)
        subscriber._consumer_tag = None  # FastStream's stop must not cancel it again
        await asyncio.sleep(0)  # deliveries read before the cancel-ok enter the handler
        in_flight = subscriber.lock
        if isinstance(in_flight, MultiLock):
            await in_flight.wait_release(self.drain_timeout)
            if not in_flight.empty:
                return False
        await subscriber.stop()
        return True

    async def stop(self) -> None:
        self._started = False
        if self.leases is not None:
            await self.leases.halt()  # no partition taken or given up from here on
        # FastStream cancels the consumer and waits (graceful_timeout) for deliveries
        # being handled; anything unsettled returns to the queue when the channel closes.
        for subscriber in self.subscribers:
            with contextlib.suppress(Exception):
                await subscriber.stop()
        if self.leases is not None:
            await self.leases.close()
        # Still batching past FastStream's grace: cut it (rolled back; its deliveries are
        # unsettled and return to the queue, an applied one comes back a duplicate).
        for batcher in list(self._batchers):
            batcher.cancel()
            with contextlib.suppress(BaseException):
                await batcher

    @property
    def running(self) -> bool:
        """Consuming now: started, connection up and, on every queue (each partition),
        the consumer's channel open and the consumer known to the broker (a dropped
        connection makes this False until the robust connection restored it)."""
        connection = self.broker._connection
        if not self._started or connection is None or connection.is_closed:
            return False
        consumed = self.subscribers
        if self.leases is not None:
            # Only the partitions this replica holds; none is a replica standing by.
            if not self.leases.healthy:
                return False
            consumed = [self.subscribers[p] for p in sorted(self.leases.held)]
        for subscriber in consumed:
            queue = subscriber._queue_obj
            tag = subscriber._consumer_tag
            if tag is None or queue is None or queue.channel.is_closed:
                return False
            if not _broker_knows_consumer(queue.channel, tag):
                return False
        return True

    async def _on_delivery(self, body: bytes) -> None:
        message: RabbitMessage = self.broker.context.get_local("message")
        try:
            await self._handle(message.raw_message)
        except Exception as exc:
            # Ack/reject/dead-letter itself failed (broker gone): the message stays unacked
            # and the broker redelivers it when the channel closes; nothing is lost.
            log.error(
                "delivery left unsettled",
                error=repr(exc),
                message_id=message.raw_message.message_id,
            )

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
        # The handler's span: the child of the broker middleware's "process" span (whose
        # parent came in the message's `traceparent`); none when tracing is off.
        with (
            span_when_tracing(
                f"{self.service} handle {event_type}", lambda: _span_attributes(envelope)
            ) as span,
            structlog.contextvars.bound_contextvars(
                event_id=str(envelope.event_id),
                correlation_id=str(envelope.correlation_id),
                case_id=str(envelope.case_id) if envelope.case_id else None,
                event_type=event_type,
            ),
        ):
            async with self._locks.hold(envelope.case_id or envelope.event_id):
                # Retried here, under the case's lock, so no later event of the case
                # overtakes a failing one; None: the delivery is settled (dead-lettered).
                outcome = await self._apply_with_retries(message, envelope, handler, attempt, span)
                if outcome is None:
                    return
            await message.ack()
            span.set_attribute("hrcase.outcome", outcome)
            EVENTS_CONSUMED.labels(self.service, event_type, outcome).inc()
            if outcome == "processed" and self.on_commit:
                self.on_commit()
            log.debug("event handled", outcome=outcome)

    def _observe(self, event_type: str, outcome: str, started: float) -> None:
        EVENT_HANDLE_SECONDS.labels(self.service, event_type, outcome).observe(
            time.perf_counter() - started
        )

    async def _apply_with_retries(
        self,
        message: AbstractIncomingMessage,
        envelope: Envelope,
        handler: Handler,
        attempt: int,
        span: Span,
    ) -> str | None:
        """The outcome once applied; None once dead-lettered (the delivery is settled)."""
        event_type = envelope.event_type
        if attempt > self.max_attempts and not await self._consumed(envelope):
            # Delivered again and again without being settled: a consumer died while handling
            # it. Dead-lettered (and its case held) here, before the broker's own delivery
            # limit would dead-letter it without a hold. (One already applied, its ack lost,
            # goes on to the inbox and is acked as a duplicate.)
            reason = (
                f"delivered {attempt} times without being settled (a consumer stopped"
                f" while handling it); max attempts {self.max_attempts}"
            )
            await self._reject(
                message, reason, RedeliveredUnsettled(reason), attempt, event_type, envelope
            )
            return None
        alone = False
        while True:
            started = time.perf_counter()
            try:
                outcome = await self._apply_when_reachable(envelope, handler, alone=alone)
            except (PermanentError, ValidationError, UnknownEventType) as exc:
                self._observe(event_type, "dead_lettered", started)
                _failed(span, exc)
                holds = not isinstance(exc, EventIdConflict)
                await self._reject(
                    message, _summary(exc), exc, attempt, event_type, envelope if holds else None
                )
                return None
            except Exception as exc:
                failed = "dead_lettered" if attempt >= self.max_attempts else "retried"
                self._observe(event_type, failed, started)
                _failed(span, exc)
                if not await self._retry_or_reject(message, envelope, exc, attempt):
                    return None
                attempt += 1
                # Retried alone: a failing event rolls back no other event's batch again.
                alone = True
                continue
            self._observe(event_type, outcome, started)
            return outcome

    async def _consumed(self, envelope: Envelope) -> bool:
        """The inbox has this event (False when the database cannot tell: the hold that
        follows then fails too, and the delivery is requeued)."""
        try:
            found = await self.pool.fetchval(
                f"SELECT true FROM {self.schema}.inbox WHERE event_id = $1", envelope.event_id
            )
        except Exception as exc:
            log.warning("inbox not readable", error=repr(exc))
            return False
        return bool(found)

    async def _apply_when_reachable(
        self, envelope: Envelope, handler: Handler, *, alone: bool = False
    ) -> str:
        """`_apply`, waiting in place while the database cannot be reached (a restart, a
        failover): the delivery stays unsettled, so the outage spends none of the event's
        attempts and no requeue counts toward the broker's delivery limit. After
        UNREACHABLE_WAIT_SECONDS the error takes the usual retry path."""
        waited, attempt = 0.0, 0
        while True:
            try:
                return await self._apply(envelope, handler, alone=alone)
            except Exception as exc:
                if not database_unreachable(exc) or waited >= UNREACHABLE_WAIT_SECONDS:
                    raise
                attempt += 1
                pause = unreachable_pause(attempt)
                log.warning("database unreachable, waiting", error=_summary(exc), pause=pause)
                await asyncio.sleep(pause)
                waited += pause

    async def _apply(self, envelope: Envelope, handler: Handler, *, alone: bool = False) -> str:
        """Apply the event: in the next batch (batch_size > 1, not `alone`), else in a
        transaction of its own. "processed" or "duplicate"; raises as `_apply_one`."""
        if self.batch_size == 1 or alone:
            return await self._apply_one(envelope, handler)
        loop = asyncio.get_running_loop()
        queued = _Queued(
            envelope,
            handler,
            envelope_digest(envelope),
            contextvars.copy_context(),
            loop.create_future(),
        )
        self._queued.append(queued)
        if len(self._batchers) < self.batches_in_flight:
            # In a context of its own: not the first delivery's span and log fields.
            batcher = asyncio.create_task(
                self._run_batches(),
                name=f"{self.service}-consumer-batches",
                context=contextvars.Context(),
            )
            self._batchers.add(batcher)
        # Cancelled here (stop): a batch not yet begun skips it; one under way may commit
        # it, and the unsettled delivery comes back as a duplicate.
        outcome = await queued.outcome
        if outcome is None:
            return await self._apply_one(envelope, handler)
        return outcome

    async def _run_batches(self) -> None:
        """While deliveries are queued, apply up to batch_size of them per transaction, in
        submission order; returns when none is left (the next `_apply` starts one again).
        Up to `batches_in_flight` run at once: a batch forms while they are all busy."""
        try:
            while self._queued:
                taken = self._queued[: self.batch_size]
                del self._queued[: self.batch_size]
                await self._run_batch([q for q in taken if not q.outcome.done()])
        except BaseException:
            # Cancelled (stop): what is still queued is applied alone.
            left, self._queued = self._queued, []
            for queued in left:
                if not queued.outcome.done():
                    queued.outcome.set_result(None)
            raise
        finally:
            # At once, not in a done callback: an `_apply` right after must see it gone.
            self._batchers.discard(asyncio.current_task())

    async def _run_batch(self, batch: list[_Queued]) -> None:
        """Apply `batch` in one transaction and settle each one's outcome: "processed" when
        the batch committed it, else None (apply it alone)."""
        if not batch:
            return
        applied: list[_Queued] = []
        try:
            applied = await self._apply_batch(batch)
        except Exception as exc:
            CONSUMER_BATCH_FALLBACKS.labels(self.service).inc()
            log.warning(
                "batch rolled back, its events are applied one by one",
                events=len(batch),
                error=_summary(exc),
            )
        finally:
            committed = {id(q) for q in applied}
            for queued in batch:
                if not queued.outcome.done():
                    queued.outcome.set_result("processed" if id(queued) in committed else None)

    async def _apply_batch(self, batch: list[_Queued]) -> list[_Queued]:
        """One transaction: the inbox rows of the events that are new and whose case is
        not held, their handlers in batch order, one outbox INSERT, the commit. Returns
        the events it applied; raises (all rolled back) when any step fails."""
        ids: set[UUID] = set()
        unique: list[_Queued] = []
        for queued in batch:
            # Twins (never together under the case lock, but cheap to refuse): the first.
            if queued.envelope.event_id not in ids:
                ids.add(queued.envelope.event_id)
                unique.append(queued)
        async with self.pool.acquire() as conn, conn.transaction():
            # One round trip. A held case's events get no row: alone, `check_hold` decides.
            # Rows in event_id order: two batches meeting on the same ids wait, not deadlock.
            rows = await conn.fetch(
                f"INSERT INTO {self.schema}.inbox (event_id, event_type, body_sha256)"
                " SELECT e.event_id, e.event_type, e.body_sha256"
                " FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::uuid[])"
                " AS e(event_id, event_type, body_sha256, case_id)"
                f" WHERE NOT EXISTS (SELECT 1 FROM {self.schema}.case_holds h"
                " WHERE h.case_id = e.case_id)"
                " ORDER BY e.event_id"
                " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                [q.envelope.event_id for q in unique],
                [q.envelope.event_type for q in unique],
                [q.digest for q in unique],
                [q.envelope.case_id for q in unique],
            )
            fresh = {row["event_id"] for row in rows}
            applied = [q for q in unique if q.envelope.event_id in fresh]
            if not applied:
                return []
            outbox = OutboxBuffer(conn, self.schema)
            for queued in applied:
                # In (a copy of) the delivery's context: its span is the parent, its log
                # fields are bound, and what the handler sets there stays apart.
                await asyncio.create_task(
                    self._handle_in_batch(queued, conn, outbox), context=queued.context
                )
            await outbox.flush()
        CONSUMER_BATCH_EVENTS.labels(self.service).observe(len(applied))
        if self.on_commit:
            # The outbox flush was written here; a handler's own `enqueue` in its context.
            self.on_commit()
            for queued in applied:
                queued.context.run(self.on_commit)
        return applied

    async def _handle_in_batch(
        self, queued: _Queued, conn: asyncpg.Connection, outbox: OutboxBuffer
    ) -> None:
        envelope = queued.envelope
        if self.keys is not None:
            envelope = await open_envelope(
                self.keys, envelope, purpose=f"consume {envelope.event_type}"
            )
        with outbox.active():
            await queued.handler(HandlerContext(envelope, conn, self.service, self.schema, outbox))

    async def _apply_one(self, envelope: Envelope, handler: Handler) -> str:
        """The event in a transaction of its own: "processed", "duplicate"; raises
        EventIdConflict, CaseHeld, or what the handler raised (all rolled back)."""
        digest = envelope_digest(envelope)
        async with self.pool.acquire() as conn, conn.transaction():
            # One round trip: the inbox row, and whether the case is held at all.
            row = await conn.fetchrow(
                f"WITH fresh AS (INSERT INTO {self.schema}.inbox"
                " (event_id, event_type, body_sha256) VALUES ($1, $2, $3)"
                " ON CONFLICT (event_id) DO NOTHING RETURNING true AS fresh)"
                " SELECT (SELECT fresh FROM fresh) AS fresh, EXISTS"
                f" (SELECT 1 FROM {self.schema}.case_holds WHERE case_id = $4) AS held",
                envelope.event_id,
                envelope.event_type,
                digest,
                envelope.case_id,
            )
            assert row is not None
            if not row["fresh"]:
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
                if envelope.case_id is not None:
                    # Applied already: it holds its case no longer (a hold recorded after
                    # its commit, its ack lost, would otherwise never lift).
                    await conn.execute(
                        f"DELETE FROM {self.schema}.case_holds"
                        " WHERE case_id = $1 AND event_id = $2",
                        envelope.case_id,
                        envelope.event_id,
                    )
                return "duplicate"
            if row["held"]:
                # Raises CaseHeld unless this event is the one its case waits for.
                await check_hold(conn, self.schema, self.service, envelope)
            if self.keys is not None:
                envelope = await open_envelope(
                    self.keys, envelope, purpose=f"consume {envelope.event_type}"
                )
            # The events the handler emits: one outbox INSERT just before the commit.
            outbox = OutboxBuffer(conn, self.schema)
            with outbox.active():
                await handler(HandlerContext(envelope, conn, self.service, self.schema, outbox))
                await outbox.flush()
        return "processed"

    async def _retry_or_reject(
        self, message: AbstractIncomingMessage, envelope: Envelope, exc: Exception, attempt: int
    ) -> bool:
        """After a handler failure: True once it is time to try again (in this process,
        the case's lock still held); False when `attempt` was the last (dead-lettered, the
        case held behind it)."""
        event_type = envelope.event_type
        if attempt >= self.max_attempts:
            await self._reject(message, _summary(exc), exc, attempt, event_type, envelope)
            return False
        log.warning("handler failed, will retry", attempt=attempt, error=_summary(exc))
        EVENTS_CONSUMED.labels(self.service, event_type, "retried").inc()
        # A pause so a transient fault (DB failover) is not hammered. No requeue: the
        # case's later deliveries wait on its lock instead of overtaking this one. A crash
        # meanwhile returns the message to the queue (x-delivery-count + 1, counted here
        # as an attempt; the broker's delivery limit is the last backstop).
        await asyncio.sleep(min(self.retry_backoff * 2 ** (attempt - 1), 5.0))
        return True

    async def _hold_case(self, envelope: Envelope, error_type: str, reason: str) -> bool:
        """Record the case's hold behind `envelope`, retrying like a handler; False when
        the database refused it every time."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                await record_hold(
                    self.pool, self.schema, envelope, error_type=error_type, reason=reason
                )
                return True
            except Exception as exc:
                log.error("case hold not recorded", attempt=attempt, error=repr(exc))
                if attempt < self.max_attempts:
                    await asyncio.sleep(min(self.retry_backoff * 2 ** (attempt - 1), 5.0))
        return False

    async def _reject(
        self,
        message: AbstractIncomingMessage,
        reason: str,
        exc: BaseException | None,
        attempt: int,
        event_type: str,
        holds: Envelope | None = None,
    ) -> None:
        """Copy the delivery to the DLQ with its reason, then ack it. With `holds` (an
        authenticated event of a case), its case is first held behind it
        (shared.case_holds); when that cannot be recorded, the delivery is requeued
        instead, never dead-lettered without its hold."""
        log.error("event dead-lettered", reason=reason, attempt=attempt)
        error_type = type(exc).__name__ if exc else "Unhandled"
        if (
            holds is not None
            and holds.case_id is not None
            and not await self._hold_case(holds, error_type, reason)
        ):
            await message.reject(requeue=True)
            return
        headers = dead_letter_headers(
            message,
            service=self.service,
            reason=reason,
            error_type=error_type,
            attempts=attempt,
        )
        if isinstance(exc, CaseHeld):
            headers["x-held-behind"] = str(exc.head.event_id)
        await self.publishers.dead_letter(
            message.body,
            queue_name=self.queue.name,
            headers=headers,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            message_type=message.type,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
        )
        await message.ack()
        EVENTS_CONSUMED.labels(self.service, event_type, "dead_lettered").inc()
        # A type nobody declared stays "?": a sender cannot mint label values.
        EVENTS_DEAD_LETTERED.labels(
            self.service,
            event_type if event_type in EVENT_TYPES else "?",
            type(exc).__name__ if exc else "Unhandled",
        ).inc()


def _span_attributes(envelope: Envelope) -> dict[str, str]:
    """Ids only (never payload values): enough to find a case's or an event's trace."""
    attributes = {
        "hrcase.event_type": envelope.event_type,
        "hrcase.event_id": str(envelope.event_id),
        "hrcase.correlation_id": str(envelope.correlation_id),
    }
    if envelope.case_id is not None:
        attributes["hrcase.case_id"] = str(envelope.case_id)
    return attributes


def _failed(span: Span, exc: Exception) -> None:
    span.record_exception(exc)
    span.set_status(StatusCode.ERROR, _summary(exc))


def _broker_knows_consumer(channel: Any, consumer_tag: str) -> bool:
    """False once the broker cancelled the consumer (Basic.Cancel: its queue was deleted),
    which leaves the channel open and FastStream's consumer tag set. aiormq drops a
    cancelled consumer from its channel's `consumers`; when that is not reachable (another
    aio-pika layout), assume it still consumes rather than report a false outage."""
    underlay = getattr(channel, "_channel", None)
    consumers = getattr(getattr(underlay, "channel", None), "consumers", None)
    return not isinstance(consumers, dict) or consumer_tag in consumers


def declare_subscriber(
    broker: RabbitBroker,
    service: str,
    queue: RabbitQueue,
    event_types: Sequence[str],
    on_delivery: Callable[[bytes], Awaitable[None]],
    *,
    priority: int | None = None,
    dead_letters: str | None = None,
) -> RabbitSubscriber:
    """Declare `service`'s subscriber on `queue` (manual settling, no replies), with
    consumer priority `priority` (`x-priority`) when given; `dead_letters`: its DLQ
    (default `<queue>.dlq`; a partition's is its service's).

    The handler's annotation is the union of the typed envelopes it accepts: FastStream
    documents it in AsyncAPI; it is not used to validate (the consumer parses itself).
    """
    models = [envelope_model(t) for t in event_types if t in EVENT_TYPES]

    async def handle(body: bytes) -> None:
        await on_delivery(body)

    handle.__annotations__ = {
        "body": Union[tuple(models)] if models else bytes,  # noqa: UP007
        "return": None,
    }
    subscriber: RabbitSubscriber = broker.subscriber(
        queue,
        consume_args={"x-priority": priority} if priority is not None else None,
        ack_policy=AckPolicy.MANUAL,
        no_reply=True,
        title=f"{queue.name}:{service}",
        description=(
            f"{service} consumes {queue.name}; failures go via hr.dlx to"
            f" {dead_letters or queue.name + '.dlq'} with x-error headers"
        ),
    )
    subscriber(handle)
    return subscriber


def _summary(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()[:10]
        )
    return f"{type(exc).__name__}: {exc}"
