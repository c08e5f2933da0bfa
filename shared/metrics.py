"""Prometheus metrics every service exposes on /metrics.

Event counters and latencies are updated where the work happens; gauges that need the
broker or the database (queue depth, outbox age, and each service's own) are set by a
`MetricsRefresher` every METRICS_REFRESH_INTERVAL seconds, never during a scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping

import asyncpg
import structlog
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from prometheus_client import Counter, Gauge, Histogram

log = structlog.get_logger(__name__)

EVENTS_CONSUMED = Counter(
    "hrcase_events_consumed_total",
    "Events taken from the service queue, by outcome",
    ["service", "event_type", "outcome"],
)
EVENT_HANDLE_SECONDS = Histogram(
    "hrcase_event_handle_seconds",
    "Time to handle one event, transaction included, by event type and outcome"
    " (processed, duplicate, retried, dead_lettered)",
    ["service", "event_type", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CONSUMER_BATCH_EVENTS = Histogram(
    "hrcase_consumer_batch_events",
    "Events applied by one committed consumer transaction (group commit,"
    " CONSUMER_BATCH_SIZE; only services that batch their deliveries)",
    ["service"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
CONSUMER_BATCH_FALLBACKS = Counter(
    "hrcase_consumer_batch_fallbacks_total",
    "Consumer batches rolled back (a handler, the outbox write or the commit failed):"
    " each of their events was then applied in a transaction of its own",
    ["service"],
)
PARTITIONS_HELD = Gauge(
    "hrcase_partitions_held",
    "Partitions of its queue this process holds the lease of and consumes (partitioned"
    " services; shared.partition_leases)",
    ["service"],
)
EVENTS_PUBLISHED = Counter(
    "hrcase_events_published_total", "Events published (confirmed) from the outbox", ["service"]
)
OUTBOX_LAG_SECONDS = Histogram(
    "hrcase_outbox_lag_seconds",
    "Time from an event entering the outbox to its publisher confirm",
    ["service"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OUTBOX_FAILURES = Counter(
    "hrcase_outbox_publish_failures_total", "Outbox batches that failed to publish", ["service"]
)

# --- Operations metrics (issue #13): what a person watching the system acts on. ---------
EVENTS_DEAD_LETTERED = Counter(
    "hrcase_events_dead_lettered_total",
    "Deliveries this service copied to its dead-letter queue, by event type and reason class",
    ["service", "event_type", "error_type"],
)
QUEUE_MESSAGES = Gauge(
    "hrcase_queue_messages",
    "Messages ready in a service's queue, not yet delivered to a consumer (kind: events or"
    " dead_letter); read from the broker every METRICS_REFRESH_INTERVAL seconds",
    ["service", "queue", "kind"],
)
QUEUE_CONSUMERS = Gauge(
    "hrcase_queue_consumers",
    "Consumers the broker has on a service's queue (all replicas)",
    ["service", "queue", "kind"],
)
OUTBOX_DEPTH = Gauge(
    "hrcase_outbox_depth",
    "Events in the service's outbox not yet confirmed by the broker",
    ["service"],
)
OUTBOX_OLDEST_AGE_SECONDS = Gauge(
    "hrcase_outbox_oldest_age_seconds",
    "Age of the oldest unpublished outbox row (0 when the outbox is empty)",
    ["service"],
)
METRICS_REFRESH_FAILURES = Counter(
    "hrcase_metrics_refresh_failures_total",
    "Background metric probes that failed (broker or database unreachable)",
    ["service", "probe"],
)
METRICS_REFRESHED_AT = Gauge(
    "hrcase_metrics_refreshed_timestamp_seconds",
    "Unix time the background probes last completed a round",
    ["service"],
)

Probe = Callable[[], Awaitable[None]]


class MetricsRefresher:
    """Runs probes (async callables that set gauges) every `interval` seconds in one
    background task, so a scrape reads the last values and never waits on the broker or
    the database. A probe that fails or overruns `timeout` seconds is logged and counted
    (hrcase_metrics_refresh_failures_total); the others still run."""

    def __init__(self, service: str, *, interval: float, timeout: float = 10.0) -> None:
        self.service = service
        self.interval = interval
        self.timeout = timeout
        self.probes: dict[str, Probe] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, name: str, probe: Probe) -> None:
        self.probes[name] = probe

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-metrics-refresher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> None:
        """One round of every probe."""
        for name, probe in list(self.probes.items()):
            try:
                async with asyncio.timeout(self.timeout):
                    await probe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                METRICS_REFRESH_FAILURES.labels(self.service, name).inc()
                log.warning("metrics probe failed", probe=name, error=repr(exc))
        METRICS_REFRESHED_AT.labels(self.service).set(time.time())

    async def _run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)


class QueueProbe:
    """Reads a service's queue and dead-letter queue from the broker with a passive
    queue.declare on a channel of its own (message_count: ready messages; consumer_count).
    RabbitMQ's management API is not needed (it is not enabled everywhere)."""

    def __init__(
        self, service: str, connection: AbstractRobustConnection, queues: Mapping[str, str]
    ) -> None:
        """`queues`: queue name -> kind ("events" or "dead_letter")."""
        self.service = service
        self.connection = connection
        self.queues = dict(queues)
        self._channel: AbstractChannel | None = None
        self._doubtful = False

    async def __call__(self) -> None:
        if self._channel is not None and self._doubtful:
            await self.close()
        if self._channel is None or self._channel.is_closed:
            self._channel = await self.connection.channel()
            self._doubtful = False
        try:
            # On the underlying AMQP channel: aio-pika's robust channel would answer a
            # repeated passive declare from its cache of declared queues.
            underlay = await self._channel.get_underlay_channel()
            for name, kind in self.queues.items():
                result = await underlay.queue_declare(name, passive=True)
                QUEUE_MESSAGES.labels(self.service, name, kind).set(result.message_count or 0)
                QUEUE_CONSUMERS.labels(self.service, name, kind).set(result.consumer_count or 0)
        except BaseException:
            # A missing queue closes the channel (NOT_FOUND); a timeout (the refresher
            # cancels the probe) leaves it in doubt: either way a fresh one next round.
            self._doubtful = True
            raise

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()
        self._channel = None


def outbox_probe(service: str, schema: str, pool: asyncpg.Pool) -> Probe:
    """Depth of `<schema>.outbox` and the age in seconds of its oldest row."""

    async def probe() -> None:
        row = await pool.fetchrow(
            f"SELECT count(*) AS depth,"
            f" coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0) AS age"
            f" FROM {schema}.outbox"
        )
        assert row is not None
        OUTBOX_DEPTH.labels(service).set(row["depth"])
        OUTBOX_OLDEST_AGE_SECONDS.labels(service).set(max(float(row["age"]), 0.0))

    return probe
