"""Bootstrap shared by all services: pool, broker, outbox relay, consumer, health and metrics.

A service describes itself with a `ServiceSpec`; `create_app` returns an ASGI app whose
lifespan starts and stops everything, so `uvicorn` owns signals and graceful shutdown.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import structlog
import uvicorn
import yaml
from aio_pika.abc import AbstractRobustConnection
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from faststream.rabbit import RabbitBroker, RabbitQueue

from shared.auth import InsecureConfiguration, refuse_insecure_signing_key
from shared.bus import Publisher
from shared.case_holds import case_holds_probe
from shared.consumer import EventConsumer, Handler
from shared.db import create_pool
from shared.gc_pauses import freeze_startup_objects, observe_pauses
from shared.logging import configure_logging
from shared.metrics import MetricsRefresher, QueueProbe, outbox_probe
from shared.outbox import OutboxRelay, take_written
from shared.privacy.keys import KeyStore, key_store_url
from shared.privacy.sealing import register_key_store, unregister_key_store
from shared.settings import Settings, get_settings
from shared.stream import (
    DEAD_LETTER_EXCHANGE_DECL,
    EVENTS_EXCHANGE,
    EventPublishers,
    dead_letter_queue,
    make_broker,
    service_queue,
    service_queues,
)
from shared.topology import ServiceQueue, check_handlers, consumer_priority, declare_partitions
from shared.tracing import configure_tracing, flush_tracing, instrument_app
from shared.web import offline_docs_app, start_metrics_server

log = structlog.get_logger(__name__)


class Consumer(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    @property
    def running(self) -> bool: ...


@dataclass
class Runtime:
    """A running service's connections; handed to its handlers and HTTP routes."""

    name: str
    settings: Settings
    pool: asyncpg.Pool
    # The FastStream broker's own connection (one per process).
    connection: AbstractRobustConnection
    # aio-pika publisher on that connection, for audit's batching ingest (README
    # "FastStream and aio-pika"); EventConsumer and the relay use `publishers`.
    publisher: Publisher
    queue: RabbitQueue
    broker: RabbitBroker
    publishers: EventPublishers
    relay: OutboxRelay | None = None
    consumer: Consumer | None = None
    # Seals personal fields in the outbox and opens them for handlers (shared.privacy).
    keys: KeyStore | None = None
    state: dict[str, Any] = field(default_factory=dict)
    # Called on shutdown after the consumer stopped (close SMTP sessions, files...).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Background gauges (queue depth, outbox age, ...); a service adds its own probes in
    # its on_startup (shared.metrics.MetricsRefresher.add).
    metrics: MetricsRefresher | None = None
    # The queues it consumes: its partitions (README "Partitions by case"), or `queue`.
    queues: list[RabbitQueue] = field(default_factory=list)
    # Its declared subscriptions with the configured partition count.
    subscriptions: ServiceQueue | None = None

    def wake_relay(self) -> None:
        """After a commit: publish now what this task enqueued (nothing to do when the
        transaction wrote no event; the relay's poll catches anything else)."""
        if self.relay and take_written():
            self.relay.wake()

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(2):
                await self.pool.fetchval("SELECT 1")
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {exc}"
        checks["broker"] = "ok" if not self.connection.is_closed else "error: connection closed"
        if self.consumer is not None:
            checks["consumer"] = "ok" if self.consumer.running else "error: not consuming"
        return checks


@dataclass
class ServiceSpec:
    name: str
    # What the service consumes (services/<name>/entrypoints/subscriptions.py): its queue's
    # bindings and options; a handler map must cover exactly these event types.
    subscriptions: ServiceQueue
    # Builds the event handlers once the runtime exists (policy loaded, templates compiled...).
    handlers: Callable[[Runtime], Awaitable[Mapping[str, Handler]]] | None = None
    # A service with its own consuming loop (audit's batch writer) supplies this instead.
    consumer_factory: Callable[[Runtime], Awaitable[Consumer]] | None = None
    # Its handlers do nothing outside their transaction (no mail, no HTTP call, no file):
    # its EventConsumer may apply several deliveries in one (CONSUMER_BATCH_SIZE), and run a
    # handler again alone when the batch rolled back.
    batches_deliveries: bool = False
    uses_outbox: bool = True
    json_codecs: bool = True
    routers: Sequence[APIRouter] = ()
    on_startup: Callable[[Runtime], Awaitable[None]] | None = None


async def start_runtime(spec: ServiceSpec, settings: Settings) -> Runtime:
    """Connect, declare the service's queue from its subscriptions, start relay and consumer.

    Raises SubscriptionMismatch (shared.topology) when the handler map the service builds
    differs from its declared subscriptions, after closing what was started.
    """
    if spec.subscriptions.service != spec.name:
        raise ValueError(f"{spec.name}: subscriptions declared for {spec.subscriptions.service!r}")
    pool_size = settings.db_pool_size_for(spec.name)
    if spec.subscriptions.partitioned and spec.handlers and pool_size < 2:
        raise ValueError(
            f"{spec.name.upper()}_DB_POOL_SIZE / DB_POOL_SIZE is {pool_size}; a partitioned"
            " service needs at least 2 (one connection holds its partition leases)"
        )
    pool = await create_pool(
        settings.service_database_url(spec.name),
        size=pool_size,
        json_codecs=spec.json_codecs,
    )
    # Its own broker user: may publish only its declared event types, read only its queue.
    broker = make_broker(
        settings.service_rabbitmq_url(spec.name),
        name=f"hrcase-{spec.name}",
        prefetch=settings.consumer_prefetch,
        replica=settings.replica_index(),
    )
    user_id = settings.rabbitmq_user(spec.name)
    publishers = EventPublishers(broker, spec.name, user_id=user_id)
    connection = await broker.connect()
    subscriptions = spec.subscriptions.with_partitions(settings.bus_partitions_for(spec.name))
    queues = await declare_service_queues(broker, subscriptions)
    # `<service>.events`: the one queue, or (partitioned) the dead letters' routing key.
    queue = service_queue(subscriptions)
    # Starts the publishers only: the subscriber is declared later, once handlers exist.
    await broker.start()
    publisher = await Publisher.open(connection, user_id=user_id)
    runtime = Runtime(spec.name, settings, pool, connection, publisher, queue, broker, publishers)
    runtime.queues, runtime.subscriptions = queues, subscriptions
    runtime.keys = await KeyStore.open(key_store_url(settings), service=spec.name)
    register_key_store(spec.name, runtime.keys)
    refresher = runtime.metrics = kernel_metrics(spec, runtime)
    if spec.uses_outbox:
        runtime.relay = OutboxRelay(
            service=spec.name, schema=spec.name, pool=pool, publisher=publishers
        )
        runtime.relay.start()
    if spec.on_startup:
        await spec.on_startup(runtime)
    if spec.consumer_factory:
        runtime.consumer = await spec.consumer_factory(runtime)
    elif spec.handlers:
        handlers = await spec.handlers(runtime)
        try:
            check_handlers(spec.subscriptions, handlers)
        except Exception:
            await stop_runtime(runtime)
            raise
        replica = settings.replica_index()  # its consumers' priority rotation
        runtime.consumer = EventConsumer(
            service=spec.name,
            schema=spec.name,
            queue=queue,
            partitions=queues if subscriptions.partitioned else None,
            # Each replica prefers other partitions (shared.topology.consumer_priority).
            priorities=[consumer_priority(p, len(queues), replica) for p in range(len(queues))],
            broker=broker,
            pool=pool,
            publishers=publishers,
            handlers=handlers,
            on_commit=runtime.wake_relay,
            max_attempts=settings.consumer_max_attempts,
            user_prefix=settings.rabbitmq_user_prefix,
            keys=runtime.keys,
            batch_size=settings.consumer_batch_size_for(spec.name)
            if spec.batches_deliveries
            else 1,
            # Replicas share the partitions by leases (README "Partitions by case").
            leases=subscriptions.partitioned,
            lease_interval=settings.partition_lease_interval,
        )
    if runtime.consumer:
        await runtime.consumer.start()
    refresher.start()
    log.info("service started", queues=[q.name for q in queues])
    return runtime


def kernel_metrics(spec: ServiceSpec, runtime: Runtime) -> MetricsRefresher:
    """The refresher with every service's probes: its queue and dead-letter queue on the
    broker, and its outbox when it has one."""
    refresher = MetricsRefresher(spec.name, interval=runtime.settings.metrics_refresh_interval)
    subscriptions = runtime.subscriptions or spec.subscriptions
    # Each partition is a series of its own (label `queue`); sum by service for the total.
    watched = dict.fromkeys(subscriptions.queue_names, "events")
    queues = QueueProbe(
        spec.name,
        runtime.connection,
        {**watched, subscriptions.dead_letter_queue: "dead_letter"},
    )
    refresher.add("queues", queues)
    runtime.closers.append(queues.close)
    if spec.uses_outbox:
        refresher.add("outbox", outbox_probe(spec.name, spec.name, runtime.pool))
    if spec.handlers is not None:
        # Its EventConsumer holds cases behind their dead letters (shared.case_holds).
        refresher.add("case_holds", case_holds_probe(spec.name, spec.name, runtime.pool))
    return refresher


async def stop_runtime(runtime: Runtime) -> None:
    if runtime.metrics:
        await runtime.metrics.stop()
    if runtime.consumer:
        await runtime.consumer.stop()
    for close in runtime.closers:
        try:
            await close()
        except Exception as exc:
            log.warning("closing a resource failed", error=repr(exc))
    if runtime.relay:
        await runtime.relay.stop()
    await runtime.broker.stop()  # closes the channels and the connection
    if runtime.keys is not None:
        unregister_key_store(runtime.name, runtime.keys)
        await runtime.keys.close()
    await runtime.pool.close()
    log.info("service stopped")


async def declare_service_queue(broker: RabbitBroker, spec: ServiceQueue) -> RabbitQueue:
    """Declare a service's queues (declare_service_queues); returns the first."""
    return (await declare_service_queues(broker, spec))[0]


async def declare_service_queues(broker: RabbitBroker, spec: ServiceQueue) -> list[RabbitQueue]:
    """Declare a service's quorum queue(s) and dead-letter queue as FastStream RabbitQueues
    (same arguments as shared.topology) and bind them; hr.events and hr.dlx are only
    checked (passive: the service's broker user may not configure them). A partitioned
    service declares its own headers exchange and partitions, bound as
    shared.topology.declare_partitions does. Returns the queues it consumes, in partition
    order. Raises aio-pika's ChannelClosed (NOT_FOUND / ACCESS_REFUSED /
    PRECONDITION_FAILED) otherwise."""
    events = await broker.declare_exchange(EVENTS_EXCHANGE)
    dlx = await broker.declare_exchange(DEAD_LETTER_EXCHANGE_DECL)
    dlq = await broker.declare_queue(dead_letter_queue(spec))
    await dlq.bind(dlx, routing_key=spec.name)
    queues = service_queues(spec)
    if spec.partitioned:
        # Through aio-pika: FastStream's RabbitExchange cannot declare an internal exchange.
        connection: Any = broker._connection
        async with connection.channel() as channel:
            passive = await channel.get_exchange(EVENTS_EXCHANGE.name, ensure=True)
            await declare_partitions(channel, spec, passive)
        return queues
    declared = await broker.declare_queue(queues[0])
    for key in spec.binding_keys:
        await declared.bind(events, routing_key=key)
    return queues


def create_app(spec: ServiceSpec, settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        refuse_insecure_signing_key(settings)  # also when embedded rather than run()
        configure_logging(spec.name, fmt=settings.log_format, level=settings.log_level)
        stop_metrics = start_metrics_server(spec.name, settings)
        observe_pauses(spec.name)
        runtime = await start_runtime(spec, settings)
        app.state.runtime = runtime
        if settings.gc_freeze_at_start:
            frozen = freeze_startup_objects(spec.name)
            log.info("start-up objects frozen out of garbage collection", objects=frozen)
        try:
            yield
        finally:
            await stop_runtime(runtime)
            if stop_metrics:
                stop_metrics()
            flush_tracing()

    # Before the broker exists (start_runtime): it takes the telemetry middleware then.
    configure_tracing(spec.name, settings.otel_traces_exporter)
    # Security headers on every response, /docs without a CDN (shared.web).
    app = offline_docs_app(f"hrcase {spec.name}", lifespan=lifespan)
    instrument_app(app)
    app.include_router(ops_router())
    app.include_router(asyncapi_router(spec.subscriptions))
    for router in spec.routers:
        app.include_router(router)
    return app


def asyncapi_router(subscriptions: ServiceQueue) -> APIRouter:
    """GET /asyncapi.json, /asyncapi.yaml and /asyncapi (HTML, no external assets): this
    service's own channels (its publishers and its subscriber), shared.asyncapi."""
    from shared.asyncapi import asyncapi_html, bus_document

    service = subscriptions.service
    document = bus_document({service: subscriptions}, [service])
    text = yaml.safe_dump(document, sort_keys=True, allow_unicode=True, width=100)
    page = asyncapi_html(document)
    router = APIRouter(tags=["operations"])

    @router.get("/asyncapi.json")
    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(document)

    @router.get("/asyncapi.yaml")
    async def asyncapi_yaml() -> Response:
        return Response(text, media_type="application/yaml")

    @router.get("/asyncapi")
    async def asyncapi_page() -> HTMLResponse:
        return HTMLResponse(page)

    return router


def ops_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @router.get("/health/ready")
    async def ready(request: Request) -> JSONResponse:
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is None:
            return JSONResponse({"ready": False, "checks": {}}, status_code=503)
        checks = await runtime.readiness()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    # /metrics is not here: it is served on its own port (shared.web.start_metrics_server).
    return router


def run(spec: ServiceSpec) -> None:
    """Entry point of `python -m services.<name>`; exits 2 with a message on stderr when
    the configuration is unsafe (shared.auth.refuse_insecure_signing_key)."""
    settings = get_settings()
    try:
        refuse_insecure_signing_key(settings)
    except InsecureConfiguration as exc:
        print(f"hrcase {spec.name}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    configure_logging(spec.name, fmt=settings.log_format, level=settings.log_level)
    uvicorn.run(
        create_app(spec, settings),
        host=settings.http_host,
        port=settings.http_port(spec.name),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        proxy_headers=bool(settings.trusted_proxies.strip()),
        forwarded_allow_ips=settings.trusted_proxies,
    )
