"""The messaging kernel on the real broker and database: FastStream's traps, one by one.

Each test runs in a vhost of its own (`<run vhost>_kernel`) holding only hr.events, hr.dlx
and a throwaway quorum queue declared exactly as shared.stream declares a service's, so
"unroutable" really is unroutable and `rabbitmqctl close_all_connections -p` drops only
this test's connections. Events are published as intake's broker user (the run's
impersonator connection stamps intake's user_id, as the broker would validate it) and
consumed by an EventConsumer for a scratch schema with intake's inbox/outbox tables.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aiormq.exceptions import DeliveryError
from faststream.rabbit import QueueType, RabbitBroker, RabbitQueue
from yarl import URL

from hrcase.services import QUEUES
from shared.consumer import EventConsumer, HandlerContext
from shared.envelope import Actor, Envelope
from shared.events import CaseNoteAdded, make_event
from shared.outbox import OutboxRelay
from shared.privacy.fields import is_sealed
from shared.privacy.keys import KeyStore, key_store_url
from shared.privacy.sealing import seal_envelope
from shared.service import Runtime, declare_service_queue
from shared.settings import Settings, dev_rabbitmq_password
from shared.stream import EventPublishers, make_broker
from shared.topology import (
    EXCHANGE,
    ServiceQueue,
    declare_exchanges,
    queue_arguments,
)
from tests.support.bus import vhost_url

pytestmark = pytest.mark.skipif(
    shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl for a vhost of its own"
)

CTL = shutil.which("rabbitmqctl") or "rabbitmqctl"
PRODUCER = "intake"
EVENT_TYPE = "case.note_added"  # intake may publish it; only the test queue binds it


def _ctl(*args: str) -> None:
    subprocess.run([CTL, "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def kernel_vhost(amqp: AbstractRobustConnection) -> Iterator[str]:
    """Admin URL of a vhost of this module's own (the run's users get full rights)."""
    from tests.support.infra import IMPERSONATOR

    base = URL(vhost_url(amqp))
    vhost = f"{base.path.lstrip('/')}_kernel"
    subprocess.run([CTL, "-q", "delete_vhost", vhost], capture_output=True)
    _ctl("add_vhost", vhost)
    for user in (base.user or "guest", IMPERSONATOR):
        _ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    yield str(base.with_path("/" + vhost))
    subprocess.run([CTL, "-q", "delete_vhost", vhost], capture_output=True)


def _as_impersonator(url: str) -> str:
    from tests.support.infra import IMPERSONATOR

    return str(URL(url).with_user(IMPERSONATOR).with_password(dev_rabbitmq_password(IMPERSONATOR)))


@dataclass
class Bench:
    """One test's queue, DLQ, scratch schema and FastStream broker."""

    url: str
    admin: AbstractRobustConnection
    pool: asyncpg.Pool
    schema: str
    spec: ServiceQueue
    queue: RabbitQueue
    broker: RabbitBroker
    publishers: EventPublishers
    seen: list[Envelope] = field(default_factory=list)

    @property
    def dlq(self) -> str:
        return self.spec.dead_letter_queue

    def consumer(
        self, handler: Callable[[HandlerContext], Awaitable[None]], **kwargs: Any
    ) -> EventConsumer:
        return EventConsumer(
            service="routing",
            schema=self.schema,
            broker=self.broker,
            pool=self.pool,
            publishers=self.publishers,
            handlers={EVENT_TYPE: handler},
            queue=self.queue,
            retry_backoff=0.01,
            **kwargs,
        )

    async def queue_depth(self, name: str | None = None) -> int:
        async with self.admin.channel() as channel:
            queue = await channel.declare_queue(name or self.spec.name, passive=True)
            return int(queue.declaration_result.message_count or 0)

    async def take(self, name: str, timeout: float = 30.0) -> list[AbstractIncomingMessage]:
        """Everything now in queue `name` (acked), waiting up to `timeout` for the first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        taken: list[AbstractIncomingMessage] = []
        async with self.admin.channel() as channel:
            queue = await channel.get_queue(name)
            while True:
                message = await queue.get(no_ack=True, fail=False)
                if message is not None:
                    taken.append(message)
                    continue
                if taken or loop.time() > deadline:
                    return taken
                await asyncio.sleep(0.1)


def note(case_id: uuid.UUID | None = None, body: str = "a note") -> Envelope:
    return make_event(
        CaseNoteAdded(reference="HR-2026-000001", note_id=uuid.uuid4(), body=body),
        producer=PRODUCER,
        actor=Actor(type="agent", id="agent-1"),
        case_id=case_id or uuid.uuid4(),
    )


async def wait_for(predicate: Callable[[], Any], timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.05)


@pytest.fixture
async def bench(
    kernel_vhost: str, database_url: str, admin_pool: asyncpg.Pool
) -> AsyncIterator[Bench]:
    tag = uuid.uuid4().hex[:8]
    spec = ServiceQueue(f"kernel{tag}", (EVENT_TYPE,))
    admin = await aio_pika.connect_robust(kernel_vhost)
    async with admin.channel() as channel:
        _events, dlx = await declare_exchanges(channel)
        dlq = await channel.declare_queue(
            spec.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dlq.bind(dlx, routing_key=spec.name)
    schema = f"kernel_{tag}"
    await admin_pool.execute(
        f"CREATE SCHEMA {schema};"
        f" CREATE TABLE {schema}.inbox (LIKE intake.inbox INCLUDING ALL);"
        f" CREATE TABLE {schema}.outbox (LIKE intake.outbox INCLUDING ALL);"
        f" CREATE TABLE {schema}.case_holds (LIKE intake.case_holds INCLUDING ALL);"
    )
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=3)
    assert pool is not None
    broker = make_broker(_as_impersonator(kernel_vhost), name=f"kernel-test-{tag}", prefetch=50)
    publishers = EventPublishers(broker, PRODUCER, user_id=Settings().rabbitmq_user(PRODUCER))
    arguments: Any = queue_arguments(spec)
    queue = RabbitQueue(spec.name, queue_type=QueueType.QUORUM, durable=True, arguments=arguments)
    await broker.connect()
    declared = await broker.declare_queue(queue)
    await declared.bind(EXCHANGE, routing_key=EVENT_TYPE)
    await broker.start()
    try:
        yield Bench(kernel_vhost, admin, pool, schema, spec, queue, broker, publishers)
    finally:
        await broker.stop()
        await pool.close()
        await admin_pool.execute(f"DROP SCHEMA {schema} CASCADE")
        async with admin.channel() as channel:
            await channel.queue_delete(spec.name)
            await channel.queue_delete(spec.dead_letter_queue)
        await admin.close()


async def publish(bench: Bench, envelope: Envelope, body: bytes | None = None) -> None:
    await bench.publishers.publish_event(
        body if body is not None else envelope.to_json_bytes(),
        event_id=str(envelope.event_id),
        event_type=envelope.event_type,
        correlation_id=str(envelope.correlation_id),
    )


# -- publishing -------------------------------------------------------------------------


async def test_every_publish_is_persistent_confirmed_and_stamped(bench: Bench) -> None:
    """FastStream's persist defaults to False: read the delivery mode back from the queue."""
    event = note()
    await publish(bench, event)  # returns after the broker's confirm
    [message] = await bench.take(bench.spec.name)
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.user_id == Settings().rabbitmq_user(PRODUCER)
    assert message.message_id == str(event.event_id)
    assert message.type == EVENT_TYPE
    assert message.content_type == "application/json"
    assert Envelope.from_json_bytes(message.body) == event


async def test_an_unroutable_publish_raises(bench: Bench) -> None:
    """mandatory alone is not enough in FastStream; the channel raises on the return."""
    async with bench.admin.channel() as channel:
        queue = await channel.get_queue(bench.spec.name)
        await queue.unbind(EXCHANGE, routing_key=EVENT_TYPE)
    with pytest.raises(DeliveryError) as raised:
        await publish(bench, note())
    assert "NO_ROUTE" in str(raised.value)


async def test_outbox_relay_deletes_only_confirmed_rows_and_keeps_unroutable_ones(
    bench: Bench,
) -> None:
    events = [note() for _ in range(30)]
    await insert_outbox(bench, events)
    relay = OutboxRelay(
        service=PRODUCER, schema=bench.schema, pool=bench.pool, publisher=bench.publishers
    )
    assert await relay.publish_pending() == 30
    assert await bench.pool.fetchval(f"SELECT count(*) FROM {bench.schema}.outbox") == 0
    taken = await bench.take(bench.spec.name)
    while len(taken) < 30:
        taken += await bench.take(bench.spec.name, timeout=5)
    assert sorted(m.message_id or "" for m in taken) == sorted(str(e.event_id) for e in events)
    assert {m.delivery_mode for m in taken} == {aio_pika.DeliveryMode.PERSISTENT}

    # Unroutable now: the relay raises and the row stays for the next attempt.
    async with bench.admin.channel() as channel:
        queue = await channel.get_queue(bench.spec.name)
        await queue.unbind(EXCHANGE, routing_key=EVENT_TYPE)
    stuck = note()
    await insert_outbox(bench, [stuck])
    with pytest.raises(DeliveryError):
        await relay.publish_pending()
    rows = await bench.pool.fetch(f"SELECT event_id FROM {bench.schema}.outbox")
    assert [r["event_id"] for r in rows] == [stuck.event_id]


async def insert_outbox(bench: Bench, events: list[Envelope]) -> None:
    await bench.pool.executemany(
        f"INSERT INTO {bench.schema}.outbox (event_id, event_type, correlation_id, body)"
        " VALUES ($1, $2, $3, $4)",
        [(e.event_id, e.event_type, e.correlation_id, e.to_json_bytes().decode()) for e in events],
    )


# -- consuming --------------------------------------------------------------------------


async def test_manual_ack_settles_every_delivery_exactly_once(bench: Bench) -> None:
    """AckPolicy.MANUAL installs no ack middleware: nothing may stay unacked or come back."""
    handled: list[uuid.UUID] = []

    async def handler(ctx: HandlerContext) -> None:
        handled.append(ctx.envelope.event_id)

    consumer = bench.consumer(handler)
    await consumer.start()
    events = [note() for _ in range(40)]
    for event in events:
        await publish(bench, event)
    await wait_for(lambda: len(handled) >= len(events))
    await asyncio.sleep(0.5)  # room for a wrong redelivery to show up
    await consumer.stop()
    await bench.broker.stop()  # an unacked delivery would now return to the queue
    assert sorted(handled) == sorted(e.event_id for e in events)
    assert await bench.queue_depth() == 0
    assert await bench.queue_depth(bench.dlq) == 0
    inbox = await bench.pool.fetchval(f"SELECT count(*) FROM {bench.schema}.inbox")
    assert inbox == len(events)


async def test_a_duplicate_is_a_no_op_and_a_conflict_is_dead_lettered(bench: Bench) -> None:
    handled: list[uuid.UUID] = []

    async def handler(ctx: HandlerContext) -> None:
        handled.append(ctx.envelope.event_id)

    consumer = bench.consumer(handler)
    await consumer.start()
    event = note()
    await publish(bench, event)
    await wait_for(lambda: handled == [event.event_id])
    await publish(bench, event)  # a redelivery of the same event
    twin = event.model_copy(update={"payload": {**event.payload, "body": "forged"}})
    await publish(bench, twin)
    [dead] = await bench.take(bench.dlq)
    assert dead.headers["x-error-type"] == "EventIdConflict"
    assert "different body" in str(dead.headers["x-error"])
    assert dead.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    # Same case, so the duplicate was settled (under the case lock) before the conflict.
    await consumer.stop()
    assert handled == [event.event_id]
    assert await bench.queue_depth() == 0


async def test_a_poison_message_is_retried_in_process_then_dead_lettered_with_reason(
    bench: Bench,
) -> None:
    """Retried under the case's lock (not requeued), then dead-lettered with the attempts
    made; its case is held behind it."""
    attempts: list[int] = []

    async def handler(ctx: HandlerContext) -> None:
        attempts.append(1)
        raise RuntimeError("the handler always fails")

    consumer = bench.consumer(handler, max_attempts=3)
    await consumer.start()
    event = note()
    await publish(bench, event)
    [dead] = await bench.take(bench.dlq, timeout=60)
    await consumer.stop()
    assert dead.message_id == str(event.event_id)
    assert dead.headers["x-error-type"] == "RuntimeError"
    assert "the handler always fails" in str(dead.headers["x-error"])
    assert dead.headers["x-attempts"] == 3
    assert dead.headers["x-failed-service"] == "routing"
    assert dead.headers["x-original-routing-key"] == EVENT_TYPE
    assert dead.headers["x-original-user-id"] == Settings().rabbitmq_user(PRODUCER)
    assert len(attempts) == 3
    assert await bench.queue_depth() == 0
    held = await bench.pool.fetch(f"SELECT event_id FROM {bench.schema}.case_holds")
    assert [row["event_id"] for row in held] == [event.event_id]


async def test_an_unreachable_database_spends_no_attempt(bench: Bench) -> None:
    # A Postgres restart as the handler meets it (refused, starting up, a connection
    # closed under the transaction), longer than max_attempts=2 allows: the consumer
    # waits in place with the delivery unsettled, then applies the event once.
    outage: list[Exception] = [
        ConnectionRefusedError(111, "Connection refused"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    ]
    handled: list[uuid.UUID] = []

    async def handler(ctx: HandlerContext) -> None:
        if outage:
            raise outage.pop(0)
        handled.append(ctx.envelope.event_id)

    consumer = bench.consumer(handler, max_attempts=2)
    await consumer.start()
    event = note()
    await publish(bench, event)
    await wait_for(lambda: handled == [event.event_id])
    await consumer.stop()
    assert not outage
    assert await bench.queue_depth() == 0
    assert await bench.queue_depth(bench.dlq) == 0


async def test_bad_input_is_dead_lettered_at_once(bench: Bench) -> None:
    async def handler(ctx: HandlerContext) -> None:
        raise AssertionError("never called")

    consumer = bench.consumer(handler)
    await consumer.start()
    await publish(bench, note(), body=b'{"not": "an envelope"}')
    [dead] = await bench.take(bench.dlq)
    await consumer.stop()
    assert dead.headers["x-attempts"] == 1
    assert "event_id" in str(dead.headers["x-error"])


async def test_personal_fields_reach_the_handler_opened_and_a_moved_token_is_dead_lettered(
    bench: Bench, database_url: str
) -> None:
    """With a key store the consumer opens sealed fields before the handler (the inbox
    digest stays the sealed body's); a token moved to another case does not open."""
    keys = await KeyStore.open(
        key_store_url(Settings(database_url=database_url)), service="routing"
    )
    seen: list[str] = []

    async def handler(ctx: HandlerContext) -> None:
        seen.append(ctx.envelope.payload["body"])

    consumer = bench.consumer(handler, keys=keys)
    await consumer.start()
    try:
        sealed = await seal_envelope(keys, note(body="Maria called about her payslip"))
        assert is_sealed(sealed.payload["body"])
        await publish(bench, sealed)
        await wait_for(lambda: seen == ["Maria called about her payslip"])
        moved = note().model_copy(
            update={"payload": {**note().payload, "body": sealed.payload["body"]}}
        )
        await publish(bench, moved)
        [dead] = await bench.take(bench.dlq)
        assert dead.headers["x-error-type"] == "SealedDataError"
        assert "body" in str(dead.headers["x-error"])
    finally:
        await consumer.stop()
        await keys.close()
    assert seen == ["Maria called about her payslip"]


async def test_reject_with_requeue_counts_toward_the_broker_delivery_limit(bench: Bench) -> None:
    """The broker's backstop: a message rejected (requeue) past x-delivery-limit is
    dead-lettered by RabbitMQ itself (a consumer that keeps dying never acks)."""
    await publish(bench, note())
    limit = queue_arguments(bench.spec)["x-delivery-limit"]
    async with bench.admin.channel() as channel:
        queue = await channel.get_queue(bench.spec.name)
        rejects = 0
        for _ in range(limit + 5):
            message = await queue.get(no_ack=False, fail=False, timeout=10)
            if message is None:
                break
            await message.reject(requeue=True)
            rejects += 1
    [dead] = await bench.take(bench.dlq, timeout=30)
    assert rejects == limit + 1
    deaths: Any = dead.headers["x-death"]
    assert deaths[0]["reason"] == "delivery_limit"


async def test_events_of_one_case_are_handled_in_publish_order(bench: Bench) -> None:
    case_id = uuid.uuid4()
    order: list[uuid.UUID] = []

    async def handler(ctx: HandlerContext) -> None:
        # Uneven work: without the case lock later events would overtake earlier ones.
        await asyncio.sleep(random.uniform(0, 0.01))
        order.append(ctx.envelope.event_id)

    consumer = bench.consumer(handler)
    events = [note(case_id) for _ in range(60)]
    for event in events:
        await publish(bench, event)
    await consumer.start()
    await wait_for(lambda: len(order) >= len(events))
    await consumer.stop()
    assert order == [e.event_id for e in events]


async def test_consumer_and_relay_come_back_after_the_broker_drops_the_connection(
    bench: Bench,
) -> None:
    handled: list[uuid.UUID] = []

    async def handler(ctx: HandlerContext) -> None:
        handled.append(ctx.envelope.event_id)

    consumer = bench.consumer(handler)
    await consumer.start()
    runtime = Runtime(
        name="kernel",
        settings=Settings(),
        pool=bench.pool,
        connection=await bench.broker.connect(),
        publisher=None,  # type: ignore[arg-type]
        queue=bench.queue,
        broker=bench.broker,
        publishers=bench.publishers,
        consumer=consumer,
    )
    relay = OutboxRelay(
        service=PRODUCER, schema=bench.schema, pool=bench.pool, publisher=bench.publishers
    )
    relay.start()
    try:
        first = note()
        await insert_outbox(bench, [first])
        relay.wake()
        await wait_for(lambda: handled == [first.event_id])
        assert await runtime.readiness() == {"database": "ok", "broker": "ok", "consumer": "ok"}

        vhost = URL(bench.url).path.lstrip("/")
        _ctl("close_all_connections", "-p", vhost, "kernel test: broker restart")
        seen_down: list[dict[str, str]] = []

        async def readiness_down() -> None:
            while True:
                checks = await runtime.readiness()
                if checks["consumer"] != "ok":
                    seen_down.append(checks)
                    return
                await asyncio.sleep(0.02)

        await asyncio.wait_for(readiness_down(), timeout=30)
        assert seen_down and seen_down[0]["consumer"] == "error: not consuming"

        # Written while the connection is gone: the relay retries until it is back.
        second = note()
        await insert_outbox(bench, [second])
        relay.wake()

        ready: list[bool] = []

        async def probe() -> None:
            checks = await runtime.readiness()
            ready.append(all(v == "ok" for v in checks.values()))

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not (ready and ready[-1]):  # polls the real readiness until it is back
            assert loop.time() < deadline, "consumer did not come back"
            await probe()
            await asyncio.sleep(0.1)
        await wait_for(lambda: handled == [first.event_id, second.event_id], timeout=60)
        third = note()
        await publish(bench, third)
        await wait_for(lambda: handled[-1:] == [third.event_id], timeout=30)
    finally:
        await relay.stop()
        await consumer.stop()
    assert await bench.pool.fetchval(f"SELECT count(*) FROM {bench.schema}.outbox") == 0


async def test_readiness_says_so_when_the_broker_cancels_the_consumer(bench: Bench) -> None:
    """A deleted queue cancels its consumer (Basic.Cancel) with the channel still open:
    the consumer is gone for good and readiness must not claim otherwise."""

    async def handler(ctx: HandlerContext) -> None:
        return None

    consumer = bench.consumer(handler)
    await consumer.start()
    assert consumer.running
    async with bench.admin.channel() as channel:
        await channel.queue_delete(bench.spec.name)
    await wait_for(lambda: not consumer.running, timeout=30)
    await consumer.stop()


@pytest.mark.parametrize("service", sorted(QUEUES))
async def test_faststream_declarations_match_the_deployed_topology(
    amqp: AbstractRobustConnection, service: str
) -> None:
    """The run's vhost was given its queues by the definitions `hrcase topology` applies;
    each service's own broker user re-declares them through FastStream with no
    PRECONDITION_FAILED (same arguments) and no ACCESS_REFUSED (its permissions)."""
    settings = Settings(rabbitmq_url=vhost_url(amqp))
    broker = make_broker(
        settings.service_rabbitmq_url(service), name=f"kernel-decl-{service}", prefetch=1
    )
    await broker.connect()
    try:
        queue = await declare_service_queue(broker, QUEUES[service])
        # The first of its queues: partition 0 of a partitioned service.
        assert queue.name == QUEUES[service].queue_names[0]
        async with amqp.channel() as channel:
            declared = await channel.declare_queue(queue.name, passive=True)
            assert declared.name == queue.name
    finally:
        await broker.stop()
