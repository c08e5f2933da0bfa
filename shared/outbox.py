"""Transactional outbox: events are written with the state change, then relayed with confirms.

A crash between commit and publish loses nothing (the row stays until confirmed);
a crash between publish and delete republishes the same event_id, which every
consumer's inbox turns into a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextvars import ContextVar
from typing import Protocol

import asyncpg
import structlog

from shared.envelope import Envelope
from shared.metrics import EVENTS_PUBLISHED, OUTBOX_FAILURES, OUTBOX_LAG_SECONDS
from shared.privacy.sealing import key_store_for, seal_envelope
from shared.topology import may_publish
from shared.tracing import decode_trace_context, encode_trace_context, restored, trace_headers

log = structlog.get_logger(__name__)


class EventSink(Protocol):
    """Where the relay sends rows: shared.stream.EventPublishers (FastStream publishers,
    persistent, mandatory, confirmed, stamped with the broker user)."""

    async def publish_event(
        self, body: bytes, *, event_id: str, event_type: str, correlation_id: str | None
    ) -> None: ...


# Set by `enqueue` in the task that writes outbox rows, taken when that task commits
# (`take_written`): a commit that wrote none (most events intake consumes) does not wake
# the relay for an empty pass (BEGIN, SELECT, COMMIT: three round trips each).
_WROTE_OUTBOX: ContextVar[bool] = ContextVar("hrcase_wrote_outbox", default=False)


def take_written() -> bool:
    """True when this task enqueued events since it last asked (then cleared). A rolled
    back transaction's rows leave it set: the next commit wakes the relay for nothing,
    which costs one empty pass, never a missed event. Rows enqueued in another task (or
    by another process) are found by the relay's poll (`poll_interval`)."""
    wrote = _WROTE_OUTBOX.get()
    if wrote:
        _WROTE_OUTBOX.set(False)
    return wrote


class UndeclaredEvent(ValueError):
    """A service tried to publish an event type it is not declared to publish."""


def check_publishable(schema: str, events: Sequence[Envelope]) -> None:
    """Raise UndeclaredEvent for an event whose type `schema` (the publishing service) is
    not declared to publish or whose producer is another: the broker would refuse it, and
    the row would stall the outbox."""
    for e in events:
        if e.producer != schema or not may_publish(schema, e.event_type):
            raise UndeclaredEvent(
                f"{schema} may not publish {e.event_type!r} as producer {e.producer!r}"
                " (declare it in shared.topology.PUBLISHES)"
            )


class OutboxBuffer:
    """The events one transaction emits, written by one statement just before its commit.

    `add` checks and keeps each event with the trace context of the span emitting it;
    `flush` writes them, in emit order, with one INSERT (one round trip, one write and
    about 100 µs of client CPU for any number of rows, against that much per event when
    each emit wrote its own row). While a buffer is `active()`, an `enqueue` on the same
    connection (a helper writing the outbox itself, intake's `open_case`) writes the
    buffered events first, so outbox id order stays emit order. A rolled back transaction
    drops its buffer with it.
    """

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema
        self._events: list[tuple[Envelope, str | None]] = []

    def add(self, *events: Envelope) -> None:
        """Keep `events` for the commit; UndeclaredEvent (nothing kept) as `enqueue`."""
        check_publishable(self.schema, events)
        trace_context = encode_trace_context(trace_headers())
        self._events.extend((e, trace_context) for e in events)

    def take(self) -> list[tuple[Envelope, str | None]]:
        taken, self._events = self._events, []
        return taken

    async def flush(self) -> None:
        """Write the buffered events (none: no statement)."""
        if self._events:
            await _insert(self.conn, self.schema, self.take())

    @contextlib.contextmanager
    def active(self) -> Iterator[OutboxBuffer]:
        """This task's buffer for `conn` while the block runs."""
        token = _BUFFER.set(self)
        try:
            yield self
        finally:
            _BUFFER.reset(token)


_BUFFER: ContextVar[OutboxBuffer | None] = ContextVar("hrcase_outbox_buffer", default=None)


def active_buffer(conn: asyncpg.Connection, schema: str) -> OutboxBuffer | None:
    """The task's active buffer for `conn` and `schema`, if any."""
    buffer = _BUFFER.get()
    if buffer is not None and buffer.conn is conn and buffer.schema == schema:
        return buffer
    return None


async def enqueue(conn: asyncpg.Connection, schema: str, *events: Envelope) -> None:
    """Record events to publish, inside the caller's transaction, now (one statement).

    `schema` is the publishing service. Raises UndeclaredEvent (check_publishable; the
    transaction rolls back). Events buffered on this connection by the task's active
    OutboxBuffer are written first, in the same statement.
    The active span's trace context (shared.tracing; None when tracing is off) is stored
    with each row, so the relay publishes it in the trace that recorded it.
    Personal fields (shared.privacy.fields) are sealed here, with the service's key store
    (shared.privacy.sealing.key_store_for), so no row holds them in clear; the key store
    is only reached for events that carry personal data.
    """
    check_publishable(schema, events)
    trace_context = encode_trace_context(trace_headers())
    rows = [(e, trace_context) for e in events]
    buffer = active_buffer(conn, schema)
    if buffer is not None:
        rows = buffer.take() + rows
    await _insert(conn, schema, rows)


async def _insert(
    conn: asyncpg.Connection, schema: str, rows: Sequence[tuple[Envelope, str | None]]
) -> None:
    sealed = [(await _sealed(schema, e), trace_context) for e, trace_context in rows]
    if not sealed:
        return
    # One INSERT over arrays, not executemany: asyncpg sends executemany's rows as one
    # write each (one round trip, but a system call per row); this is one Bind for any
    # number of rows, at the same client CPU. ORDER BY the ordinality: ids in emit order.
    await conn.execute(
        f"INSERT INTO {schema}.outbox (event_id, event_type, correlation_id, body, trace_context)"
        " SELECT e.event_id, e.event_type, e.correlation_id, e.body, e.trace_context::jsonb"
        " FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[])"
        " WITH ORDINALITY AS e(event_id, event_type, correlation_id, body, trace_context, n)"
        " ORDER BY e.n",
        [e.event_id for e, _ in sealed],
        [e.event_type for e, _ in sealed],
        [e.correlation_id for e, _ in sealed],
        [e.to_json_bytes().decode("utf-8") for e, _ in sealed],
        [trace_context for _, trace_context in sealed],
    )
    _WROTE_OUTBOX.set(True)


async def _sealed(service: str, event: Envelope) -> Envelope:
    from shared.events import EVENT_TYPES
    from shared.privacy.sealing import has_personal_fields

    model = EVENT_TYPES.get(event.event_type)
    if model is None or not has_personal_fields(model):
        return event
    return await seal_envelope(await key_store_for(service), event)


class OutboxRelay:
    """Publishes a service's outbox in id order; with several replicas one relays at a time
    (a transaction-scoped advisory lock per outbox), so a case's events leave in order."""

    def __init__(
        self,
        *,
        service: str,
        schema: str,
        pool: asyncpg.Pool,
        publisher: EventSink,
        batch_size: int = 500,
        poll_interval: float = 1.0,
    ) -> None:
        self.service = service
        self.schema = schema
        self.pool = pool
        self.publisher = publisher
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        """Publish now rather than at the next poll (called after a commit)."""
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-outbox-relay")

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        if self._task:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=10)

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            self._wakeup.clear()
            try:
                published = await self.publish_pending()
                failures = 0
            except Exception as exc:  # broker or database down: keep the rows, back off
                failures += 1
                OUTBOX_FAILURES.labels(self.service).inc()
                log.warning("outbox publish failed", error=str(exc), attempt=failures)
                await asyncio.sleep(min(0.2 * 2**failures, 10.0))
                continue
            if published >= self.batch_size:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.poll_interval)

    async def publish_pending(self) -> int:
        """Publish one batch; return how many events were confirmed."""
        async with self.pool.acquire() as conn, conn.transaction():
            # One relay of this outbox at a time (README "Partitions by case"): two
            # replicas' batches, confirmed independently, could put a later event of a
            # case on the bus before an earlier one. Another replica's relay waits here for
            # the batch in flight (it ends with its transaction, or its connection), then
            # reads what is left; a replica that dies mid-batch leaves its rows in place.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                relay_lock_name(self.schema),
            )
            rows = await conn.fetch(
                f"SELECT id, event_id, event_type, correlation_id, body, created_at,"
                f" trace_context::text AS trace_context"
                f" FROM {self.schema}.outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch_size,
            )
            if not rows:
                return 0
            # Publishes are pipelined on one confirm channel; gather waits for every confirm
            # (and raises if any was returned unroutable or nacked: the rows stay).
            await asyncio.gather(*(self._publish(row) for row in rows))
            await conn.execute(
                f"DELETE FROM {self.schema}.outbox WHERE id = ANY($1::bigint[])",
                [row["id"] for row in rows],
            )
        now = time.time()
        for row in rows:
            OUTBOX_LAG_SECONDS.labels(self.service).observe(now - row["created_at"].timestamp())
        EVENTS_PUBLISHED.labels(self.service).inc(len(rows))
        return len(rows)

    async def _publish(self, row: asyncpg.Record) -> None:
        # Inside the trace that recorded the row: the broker's telemetry middleware makes
        # the publish span there and puts its `traceparent` in the message headers.
        with restored(decode_trace_context(row["trace_context"])):
            await self.publisher.publish_event(
                row["body"].encode("utf-8"),
                event_id=str(row["event_id"]),
                event_type=row["event_type"],
                correlation_id=str(row["correlation_id"]),
            )


def relay_lock_name(schema: str) -> str:
    """The advisory lock (hashtextextended of this text) a relay of `schema` holds per batch."""
    return f"hrcase outbox relay {schema}"


@contextlib.asynccontextmanager
async def relays_paused(conn: asyncpg.Connection, schemas: Iterable[str]) -> AsyncIterator[None]:
    """Pause the relays of these outboxes while the block runs (`hrcase relays pause`,
    README "Runbook"): holds their advisory locks on `conn`'s session, so every relay waits
    at its next batch and events stay in the outboxes, in order. Entering waits for a
    batch in flight. Closing the connection (a killed process) resumes them too."""
    names = [relay_lock_name(schema) for schema in schemas]
    for name in names:
        await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", name)
    try:
        yield
    finally:
        for name in names:
            await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", name)
