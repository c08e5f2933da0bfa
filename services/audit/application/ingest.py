"""The audit consumer: every event on the bus, appended to the chain in batches.

Per-event transactions cannot reach thousands of events a second when every append must
first take the chain's head, so deliveries are collected into batches (up to
`batch_size`, or whatever arrived within `linger` seconds of the first) and each batch is
one transaction (services.audit.adapters.sql.append_batch). Outcomes per delivery:

- appended or already in the log (duplicate): acked after the commit;
- refused (README "Timestamp bounds and refused events"): larger than
  AUDIT_MAX_ENVELOPE_BYTES, not a valid envelope (timestamps out of their window
  included), an event type no payload model knows, a payload off its schema, one of
  audit's own record types, or not storable. Audit would not be able to verify or show
  such an entry later, so it records `audit.event_refused` (the message's claimed ids,
  the reason and the body's SHA-256, never the body) in the same batch, and after the
  commit dead-letters the message with the reason;
- a producer the broker did not authenticate (shared.consumer.producer_refusal): refused
  the same way (the refusal recorded, the message dead-lettered), never recorded as if
  the claimed service had said it;
- an event_id already in the log with different content (EventIdConflict): dead-lettered
  after the commit; the recorded entry stays as it is;
- the write failed: if the failure is not the database being unreachable, the batch is
  retried one event per transaction so a single bad event cannot take the others down;
  what still fails is requeued (after a backoff) until `max_attempts` deliveries, then
  dead-lettered with the reason.

Audit checks every payload against its model in shared.events, because what it cannot
read back cannot be shown in a timeline or an export either.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

import asyncpg
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from opentelemetry.trace import Span
from prometheus_client import Gauge, Histogram
from pydantic import ValidationError

from services.audit.adapters.sql import AppendResult, append_batch
from services.audit.config import AuditSettings
from services.audit.domain.chain import InvalidEntry, PendingEntry, pending_from_envelope
from shared.bus import Publisher
from shared.consumer import (
    EventIdConflict,
    ProducerNotAuthenticated,
    dead_letter,
    delivery_attempt,
    producer_refusal,
)
from shared.db import UNREACHABLE_WAIT_SECONDS, database_unreachable, unreachable_pause
from shared.envelope import Actor, Envelope, utcnow
from shared.events import AuditEventRefused, UnknownEventType, make_event, parse_payload
from shared.metrics import EVENTS_CONSUMED
from shared.service import Runtime
from shared.settings import get_settings
from shared.tracing import delivery_span

log = structlog.get_logger(__name__)

SERVICE = "audit"
DEFAULT_BATCH_SIZE = 1000
DEFAULT_LINGER = 0.02
# Enough unacked deliveries in flight to fill the next batch while one is being written.
DEFAULT_PREFETCH = 2000

AUDIT_BATCH_SIZE = Histogram(
    "hrcase_audit_batch_size",
    "Events per audit append transaction",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000),
)
AUDIT_BATCH_SECONDS = Histogram(
    "hrcase_audit_batch_seconds",
    "Time to append one batch to the audit chain, commit included",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
AUDIT_HEAD_SEQ = Gauge("hrcase_audit_head_seq", "seq of the last entry this process appended")

AppendFn = Callable[[asyncpg.Connection, Sequence[PendingEntry], datetime], Awaitable[AppendResult]]

# Failures that say nothing about the events themselves: retry the batch as a whole.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
)


# Records only the audit service writes: a copy arriving over the bus is a forgery.
AUDIT_RECORD_TYPES = frozenset({"audit.event_refused", "audit.export_created"})
# Refusal records get a deterministic id (from the body's hash), so a redelivered refused
# message is recorded once.
REFUSAL_NAMESPACE = UUID("6f0d1c2e-6a55-4b8e-9a52-3f1e7c0a9d41")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why audit will not record a message: the dead letter's reason and error type."""

    reason: str
    error_type: str
    event_type: str = "?"  # metrics label; "?" unless the type is a known one


def _delivery_span(message: AbstractIncomingMessage) -> Span | None:
    return delivery_span(
        f"audit record {message.type or '?'}",
        message.headers,
        {
            "messaging.system": "rabbitmq",
            "messaging.message.id": message.message_id or "",
            "messaging.rabbitmq.destination.routing_key": message.routing_key or "",
            "hrcase.event_type": message.type or "",
        },
    )


def admit(
    body: bytes, *, max_bytes: int, user_id: str | None, user_prefix: str
) -> PendingEntry | Refusal:
    """The log entry for a message body, or why audit refuses it.

    `user_id`: the broker-validated AMQP user_id the message arrived with; the envelope's
    producer must be that user's service (shared.consumer.producer_refusal), and the entry
    records it as `producer_user`."""
    if len(body) > max_bytes:
        return Refusal(
            f"envelope of {len(body)} bytes exceeds AUDIT_MAX_ENVELOPE_BYTES ({max_bytes})",
            "EnvelopeTooLarge",
        )
    try:
        envelope = Envelope.from_json_bytes(body)
    except Exception as exc:  # ValidationError, but also e.g. a recursion limit
        return Refusal("invalid envelope: " + _describe(exc), type(exc).__name__)
    event_type = envelope.event_type
    if event_type in AUDIT_RECORD_TYPES:
        return Refusal(
            f"{event_type} is written by the audit service only", "ForgedRecord", event_type
        )
    try:
        entry = pending_from_envelope(envelope, producer_user=user_id)
    except InvalidEntry as exc:
        return Refusal(f"invalid envelope: {exc}", type(exc).__name__, "?")
    try:
        parse_payload(envelope)
    except UnknownEventType as exc:
        return Refusal(f"not recordable: {exc}", type(exc).__name__)
    except ValidationError as exc:
        return Refusal(
            f"{event_type} payload off its schema: {_describe(exc)}",
            type(exc).__name__,
            event_type,
        )
    # Last, so a refusal names what is wrong with the event itself before who sent it.
    refusal = producer_refusal(user_id, envelope, user_prefix=user_prefix)
    if refusal is not None:
        return Refusal(refusal, ProducerNotAuthenticated.__name__, event_type)
    return entry


def _clean(value: object, limit: int) -> str | None:
    """A claimed value as storable text (lone surrogates replaced), or None."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    return str(value)[:limit].encode("utf-8", "replace").decode("utf-8")


def _claims(body: bytes, max_bytes: int) -> dict[str, Any]:
    if len(body) > max_bytes:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def refusal_entry(
    message: AbstractIncomingMessage, refusal: Refusal, *, max_bytes: int
) -> PendingEntry:
    """The `audit.event_refused` record of a refused message (never its body)."""
    body = message.body
    digest = hashlib.sha256(body).hexdigest()
    claims = _claims(body, max_bytes)
    payload = AuditEventRefused(
        refused_event_id=_clean(claims.get("event_id") or message.message_id, 100),
        refused_event_type=_clean(claims.get("event_type"), 100),
        refused_producer=_clean(claims.get("producer"), 100),
        refused_case_id=_clean(claims.get("case_id"), 100),
        routing_key=_clean(message.routing_key or "", 255) or "",
        reason=_clean(refusal.reason, 2000) or "",
        body_bytes=len(body),
        body_sha256=digest,
    )
    envelope = make_event(
        payload,
        producer=SERVICE,
        actor=Actor(type="system", id=SERVICE),
        case_id=None,  # a refused message's claimed case is not trusted with its timeline
        event_id=uuid5(REFUSAL_NAMESPACE, digest),
    )
    return pending_from_envelope(envelope)


@dataclass(frozen=True, slots=True)
class _Item:
    message: AbstractIncomingMessage
    entry: PendingEntry
    # Set when `entry` is the refusal record: the message is dead-lettered after the commit.
    refusal: Refusal | None = None


class AuditIngest:
    """Batching consumer of the audit queue (implements shared.service.Consumer)."""

    def __init__(
        self,
        *,
        connection: AbstractRobustConnection,
        queue_name: str,
        pool: asyncpg.Pool,
        publisher: Publisher,
        max_attempts: int = 5,
        batch_size: int = DEFAULT_BATCH_SIZE,
        linger: float = DEFAULT_LINGER,
        prefetch: int = DEFAULT_PREFETCH,
        retry_backoff: float = 0.2,
        append: AppendFn = append_batch,
        user_prefix: str | None = None,
        max_envelope_bytes: int = 1024 * 1024,
    ) -> None:
        self.connection = connection
        self.queue_name = queue_name
        self.pool = pool
        self.publisher = publisher
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self.linger = linger
        self.prefetch = prefetch
        self.retry_backoff = retry_backoff
        self._append = append
        self.user_prefix = (
            user_prefix if user_prefix is not None else get_settings().rabbitmq_user_prefix
        )
        self.max_envelope_bytes = max_envelope_bytes
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._inbox: asyncio.Queue[AbstractIncomingMessage | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        # ids of this batch's deliveries already acked/nacked/dead-lettered
        self._settled: set[int] = set()
        self._multiple_acks = True

    async def start(self) -> None:
        # Own channel: the runtime's channel has the per-event prefetch of other services.
        self._channel = await self.connection.channel()
        await self._channel.set_qos(prefetch_count=self.prefetch)
        self._queue = await self._channel.get_queue(self.queue_name, ensure=True)
        self._writer = asyncio.create_task(self._write_loop(), name="audit-writer")
        self._consumer_tag = await self._queue.consume(self._on_message, no_ack=False)
        log.info("audit ingest started", queue=self.queue_name, batch_size=self.batch_size)

    async def stop(self) -> None:
        if self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._consumer_tag)
        self._consumer_tag = None
        if self._writer is not None:
            # Let deliveries already handed to us be written; the sentinel ends the loop.
            await asyncio.sleep(0)
            self._inbox.put_nowait(None)
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), timeout=15)
            except TimeoutError:
                self._writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._writer
            self._writer = None
        if self._channel is not None:
            # Closing returns anything still unacked to the queue.
            with contextlib.suppress(Exception):
                await self._channel.close()
            self._channel = None

    @property
    def running(self) -> bool:
        return (
            self._consumer_tag is not None
            and self._writer is not None
            and not self._writer.done()
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._inbox.put_nowait(message)

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._inbox.get()
            if first is None:
                return
            batch = [first]
            deadline = loop.time() + self.linger
            while len(batch) < self.batch_size:
                try:
                    message = self._inbox.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        message = await asyncio.wait_for(self._inbox.get(), remaining)
                    except TimeoutError:
                        break
                if message is None:
                    stopping = True
                    break
                batch.append(message)
            try:
                await self.process(batch)
            except Exception as exc:
                # Settling failed (e.g. a dead-letter publish refused). Keep the writer alive.
                log.error("audit batch left unsettled", error=repr(exc), size=len(batch))
                await self._release(batch)

    async def _release(self, batch: Sequence[AbstractIncomingMessage]) -> None:
        """Requeue what a failed batch left unsettled, so a later `multiple` ack of a
        higher delivery tag cannot ack it unseen."""
        for message in batch:
            if id(message) in self._settled:
                continue
            try:
                await message.nack(requeue=True)
            except Exception as exc:
                # Channel gone: the broker requeues its deliveries itself. Otherwise an
                # unsettled delivery remains on this channel: stop using `multiple` acks.
                if not self._channel_closed(message):
                    self._multiple_acks = False
                log.warning("requeue failed", error=repr(exc), message_id=message.message_id)

    async def process(self, batch: Sequence[AbstractIncomingMessage]) -> None:
        """Write one batch of deliveries and settle every one of them."""
        outcomes: Counter[tuple[str, str]] = Counter()
        items: list[_Item] = []
        self._settled = set()
        # One span per delivery, in the trace its `traceparent` names, open until the
        # batch is settled (shared.tracing; none when tracing is off).
        spans = [span for message in batch if (span := _delivery_span(message)) is not None]
        try:
            for message in batch:
                item = await self._parse(message, outcomes)
                if item is not None:
                    items.append(item)
            if items:
                failures = await self._commit_when_reachable(items, outcomes)
                if failures:
                    await self._retry_or_dead_letter(failures, outcomes)
        finally:
            for span in spans:
                span.set_attribute("hrcase.audit_batch_size", len(batch))
                span.end()
        for (event_type, outcome), count in outcomes.items():
            EVENTS_CONSUMED.labels(SERVICE, event_type, outcome).inc(count)

    async def _commit_when_reachable(
        self, items: list[_Item], outcomes: Counter[tuple[str, str]]
    ) -> list[tuple[_Item, Exception]]:
        """`_commit`, writing again in place while the database cannot be reached (a
        restart, a failover): the deliveries stay unsettled, so the outage spends none of
        their attempts and no requeue counts toward the broker's delivery limit. After
        UNREACHABLE_WAIT_SECONDS the failures take the usual retry path."""
        failures = await self._commit(items, outcomes)
        waited, attempt = 0.0, 0
        while (
            failures
            and waited < UNREACHABLE_WAIT_SECONDS
            and all(database_unreachable(exc) for _, exc in failures)
        ):
            attempt += 1
            pause = unreachable_pause(attempt)
            log.warning(
                "database unreachable, waiting",
                error=_describe(failures[0][1]),
                pause=pause,
                size=len(failures),
            )
            await asyncio.sleep(pause)
            waited += pause
            failures = await self._commit([item for item, _ in failures], outcomes)
        return failures

    async def _parse(
        self, message: AbstractIncomingMessage, outcomes: Counter[tuple[str, str]]
    ) -> _Item | None:
        admitted = admit(
            message.body,
            max_bytes=self.max_envelope_bytes,
            user_id=message.user_id,
            user_prefix=self.user_prefix,
        )
        if isinstance(admitted, PendingEntry):
            return _Item(message, admitted)
        log.warning("event refused", reason=admitted.reason, message_id=message.message_id)
        try:
            entry = refusal_entry(message, admitted, max_bytes=self.max_envelope_bytes)
        except Exception as exc:  # never expected: the record is built from cleaned values
            await self._dead_letter(
                message, admitted.reason, admitted.error_type, admitted.event_type
            )
            outcomes[admitted.event_type, "dead_lettered"] += 1
            log.error("refusal not recordable", error=_describe(exc))
            return None
        return _Item(message, entry, admitted)

    async def _commit(
        self, items: list[_Item], outcomes: Counter[tuple[str, str]]
    ) -> list[tuple[_Item, Exception]]:
        """Append and ack; returns the items that could not be written, with why."""
        started = time.perf_counter()
        try:
            async with self.pool.acquire() as conn:
                result = await self._append(conn, [i.entry for i in items], utcnow())
        except Exception as exc:
            if len(items) > 1 and not isinstance(exc, _UNAVAILABLE):
                log.warning(
                    "audit batch failed, writing its events one by one",
                    error=_describe(exc),
                    size=len(items),
                )
                failures: list[tuple[_Item, Exception]] = []
                for item in items:
                    failures.extend(await self._commit([item], outcomes))
                return failures
            return [(item, exc) for item in items]
        AUDIT_BATCH_SECONDS.observe(time.perf_counter() - started)
        AUDIT_BATCH_SIZE.observe(len(items))
        if result.appended:
            AUDIT_HEAD_SEQ.set(result.appended[-1].seq)
            log.debug(
                "audit batch appended",
                size=len(result.appended),
                first_seq=result.appended[0].seq,
                last_seq=result.appended[-1].seq,
            )
        # Refused messages and event_id conflicts first: each is settled alone, so the
        # `multiple` ack of the accepted ones that follows never covers an unsettled delivery.
        conflicts = {id(items[i]) for i in result.conflicts}
        for item in items:
            if item.refusal is not None:
                await self._dead_letter(
                    item.message,
                    item.refusal.reason,
                    item.refusal.error_type,
                    item.refusal.event_type,
                )
                outcomes[item.refusal.event_type, "dead_lettered"] += 1
            elif id(item) in conflicts:
                reason = (
                    f"event_id {item.entry.event_id} is already in the audit log with"
                    " different content: not recorded"
                )
                with _bound_item(item):
                    await self._dead_letter(
                        item.message, reason, EventIdConflict.__name__, item.entry.event_type
                    )
                outcomes[item.entry.event_type, "dead_lettered"] += 1
        accepted = [i for i in items if i.refusal is None and id(i) not in conflicts]
        if accepted:
            await self._ack_all([item.message for item in accepted])
        duplicates = set(result.duplicates)
        for item in accepted:
            outcome = "duplicate" if item.entry.event_id in duplicates else "processed"
            outcomes[item.entry.event_type, outcome] += 1
            if outcome == "duplicate":
                log.debug("duplicate event ignored", event_id=str(item.entry.event_id))
        return []

    async def _retry_or_dead_letter(
        self, failures: list[tuple[_Item, Exception]], outcomes: Counter[tuple[str, str]]
    ) -> None:
        attempts = [delivery_attempt(item.message) for item, _ in failures]
        if any(a < self.max_attempts for a in attempts):
            # One pause per failed batch so a database failover is not hammered.
            await asyncio.sleep(min(self.retry_backoff * 2 ** (min(attempts) - 1), 5.0))
        for (item, exc), attempt in zip(failures, attempts, strict=True):
            with _bound_item(item):
                if attempt >= self.max_attempts:
                    reason, event_type = _describe(exc), item.entry.event_type
                    if item.refusal is not None:
                        reason = f"{item.refusal.reason} (refusal not recorded: {reason})"
                        event_type = item.refusal.event_type
                    await self._dead_letter(
                        item.message, reason, type(exc).__name__, event_type, attempt
                    )
                    outcomes[event_type, "dead_lettered"] += 1
                else:
                    log.warning(
                        "audit write failed, will retry", attempt=attempt, error=_describe(exc)
                    )
                    await item.message.nack(requeue=True)
                    self._settled.add(id(item.message))
                    outcomes[item.entry.event_type, "retried"] += 1

    async def _ack_all(self, messages: list[AbstractIncomingMessage]) -> None:
        """Ack committed deliveries: one `multiple` ack when they share a channel.

        Safe because deliveries are batched in delivery-tag order by a single writer:
        every lower tag on the channel was settled earlier (previous batches, or dead-
        lettered while this batch was parsed), and failed items are only settled after
        this, one by one, via a separate single-item commit (never a multi-item ack).
        """
        self._settled.update(id(m) for m in messages)
        last = messages[-1]
        if len(messages) > 1 and self._multiple_acks and self._same_channel(messages):
            await self._ack(last, multiple=True)
            return
        for message in messages:
            await self._ack(message)

    @staticmethod
    def _same_channel(messages: Sequence[AbstractIncomingMessage]) -> bool:
        try:
            channel = messages[-1].channel
            return all(m.channel is channel for m in messages)
        except Exception:  # aio-pika raises for a closed channel
            return False

    @staticmethod
    def _channel_closed(message: AbstractIncomingMessage) -> bool:
        try:
            return bool(message.channel.is_closed)
        except Exception:
            return True

    async def _ack(self, message: AbstractIncomingMessage, *, multiple: bool = False) -> None:
        try:
            await message.ack(multiple=multiple)
        except Exception as exc:
            # Channel lost after the commit: the redelivery will be a duplicate no-op.
            log.warning("ack failed", error=repr(exc), message_id=message.message_id)

    async def _dead_letter(
        self,
        message: AbstractIncomingMessage,
        reason: str,
        error_type: str,
        event_type: str,
        attempt: int | None = None,
    ) -> None:
        attempt = attempt if attempt is not None else delivery_attempt(message)
        log.error(
            "event dead-lettered",
            reason=reason,
            attempt=attempt,
            message_id=message.message_id,
            event_type=event_type,
        )
        await dead_letter(
            self.publisher,
            message,
            service=SERVICE,
            queue_name=self.queue_name,
            reason=reason,
            error_type=error_type,
            attempts=attempt,
            event_type=event_type,
        )
        self._settled.add(id(message))


def _bound_item(item: _Item) -> contextlib.AbstractContextManager[object]:
    return structlog.contextvars.bound_contextvars(
        event_id=str(item.entry.event_id),
        correlation_id=str(item.entry.correlation_id),
        case_id=str(item.entry.case_id) if item.entry.case_id else None,
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()[:10]
        )
    return f"{type(exc).__name__}: {exc}"


async def consumer_factory(runtime: Runtime) -> AuditIngest:
    settings = runtime.settings
    return AuditIngest(
        connection=runtime.connection,
        queue_name=runtime.queue.name,
        pool=runtime.pool,
        publisher=runtime.publisher,
        max_attempts=settings.consumer_max_attempts,
        prefetch=max(settings.consumer_prefetch, DEFAULT_PREFETCH),
        user_prefix=settings.rabbitmq_user_prefix,
        max_envelope_bytes=AuditSettings().max_envelope_bytes,
    )
