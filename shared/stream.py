"""The FastStream side of the bus: one RabbitBroker per process, declared queues and publishers.

What FastStream declares here (README "Delivery guarantees", "FastStream and aio-pika"):
- `service_queue`/`dead_letter_queue`: the `RabbitQueue`s of a service's declared
  subscriptions (shared.topology.ServiceQueue), quorum, with
  exactly the arguments of `shared.topology.queue_arguments` (a broker that already holds
  the queue sees the same declaration, no PRECONDITION_FAILED);
- `EventPublishers`: one documented publisher per event type a service may publish
  (`persist=True`, `mandatory=True`, confirms, `user_id` = the service's broker user) and
  one for dead letters on `hr.dlx`; the channel raises on a returned (unroutable) message;
- `envelope_model`: the typed envelope of each event type, the payload schema of the
  AsyncAPI document (shared.asyncapi).

FastStream's own traps are closed here once: `persist` defaults to False (every publish
below passes it), `mandatory` only raises with `Channel(on_return_raises=True)` (the
broker's default channel), and a raw `aio_pika.Message` handed to a FastStream publisher
is sent as it is, so the publishers only take bytes and set every property themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Literal

from faststream.rabbit import (
    Channel,
    ExchangeType,
    QueueType,
    RabbitBroker,
    RabbitExchange,
    RabbitQueue,
)
from faststream.rabbit.publisher import RabbitPublisher
from pydantic import Field, create_model
from yarl import URL

from shared.envelope import Envelope
from shared.events import EVENT_TYPES
from shared.topology import (
    DEAD_LETTER_EXCHANGE,
    EXCHANGE,
    PUBLISHES,
    SLOT_HEADER,
    ServiceQueue,
    queue_arguments,
    slot_headers,
    slot_of,
)
from shared.tracing import broker_middlewares

# Passive (`declare=False`): a service's broker user may not configure the exchanges;
# `hrcase topology` declares them. Starting against a broker without them fails (NOT_FOUND).
EVENTS_EXCHANGE = RabbitExchange(EXCHANGE, type=ExchangeType.TOPIC, durable=True, declare=False)
DEAD_LETTER_EXCHANGE_DECL = RabbitExchange(
    DEAD_LETTER_EXCHANGE, type=ExchangeType.DIRECT, durable=True, declare=False
)


def service_queue(spec: ServiceQueue, name: str | None = None) -> RabbitQueue:
    """`<service>.events` (or one of its partitions, `name`): quorum, delivery limit,
    dead-lettering to hr.dlx (topology)."""
    arguments: Any = queue_arguments(spec)
    queue: RabbitQueue = RabbitQueue(
        name or spec.name, queue_type=QueueType.QUORUM, durable=True, arguments=arguments
    )
    return queue


def service_queues(spec: ServiceQueue) -> list[RabbitQueue]:
    """The queues a service consumes: its partitions in order, or its one queue."""
    return [service_queue(spec, name) for name in spec.queue_names]


def dead_letter_queue(spec: ServiceQueue) -> RabbitQueue:
    arguments: Any = {"x-queue-type": "quorum"}
    queue: RabbitQueue = RabbitQueue(
        spec.dead_letter_queue, queue_type=QueueType.QUORUM, durable=True, arguments=arguments
    )
    return queue


def make_broker(
    url: str,
    *,
    name: str,
    prefetch: int,
    apply_types: bool = False,
    replica: int | None = None,
) -> RabbitBroker:
    """A RabbitBroker whose default channel confirms every publish and raises on a returned
    (unroutable) mandatory message; `name` shows as the connection's name in the broker's
    connection list (`rabbitmqctl list_connections client_properties`), followed by
    ` replica <n>` when `replica` (Settings.replica_index: BUS_REPLICA_INDEX, else a number
    of host name and pid) is given, as every service does."""
    label = name if replica is None else f"{name} replica {replica}"
    # aiormq takes the connection's name from the URL's `name` query parameter; FastStream
    # 0.7 turns `client_properties` into URL query parameters, which aiormq ignores.
    return RabbitBroker(
        str(URL(url).update_query(name=label)),
        default_channel=Channel(
            prefetch_count=prefetch, publisher_confirms=True, on_return_raises=True
        ),
        app_id=name,
        # The consumer parses envelopes itself, so a bad one is dead-lettered with its
        # reason instead of failing inside FastStream's argument validation.
        apply_types=apply_types,
        decoder=_raw_body,
        logger=None,
        graceful_timeout=15.0,
        # Traces (shared.tracing): publish/process spans and `traceparent` in the headers
        # when tracing is on; none otherwise.
        middlewares=broker_middlewares(),
    )


async def _raw_body(message: Any) -> bytes:
    body: bytes = message.body
    return body


@cache
def envelope_model(event_type: str) -> type[Envelope]:
    """The envelope of one event type with its typed payload (documentation schema)."""
    payload_cls = EVENT_TYPES[event_type]
    name = "".join(part.title() for part in event_type.replace("_", ".").split(".")) + "Event"
    fields: dict[str, Any] = {
        "event_type": (Literal[event_type], Field(description="routing key on hr.events")),
        "schema_version": (Literal[payload_cls.schema_version], ...),
        "payload": (payload_cls, ...),
    }
    model: type[Envelope] = create_model(
        name,
        __base__=Envelope,
        __doc__=(payload_cls.__doc__ or event_type).strip(),
        **fields,
    )
    return model


class EventPublishers:
    """The documented FastStream publishers of one publisher (service or outside feed).

    `publish_event` sends one outbox row: persistent, mandatory, confirmed, stamped with
    the broker user (`user_id`, validated by RabbitMQ). Raises aiormq's DeliveryError
    (PublishError) for an unroutable event, ChannelInvalidStateError/AMQPError when the
    broker is gone; the outbox keeps the row either way.
    """

    def __init__(self, broker: RabbitBroker, publisher: str, *, user_id: str | None) -> None:
        self.user_id = user_id
        self._by_type: dict[str, RabbitPublisher] = {
            event_type: broker.publisher(
                exchange=EVENTS_EXCHANGE,
                routing_key=event_type,
                persist=True,
                mandatory=True,
                user_id=user_id,
                content_type="application/json",
                content_encoding="utf-8",
                message_type=event_type,
                schema=envelope_model(event_type),
                title=f"{event_type}:{publisher}",
                description=f"{event_type}, published by {publisher} through its outbox",
            )
            for event_type in PUBLISHES.get(publisher, ())
        }
        self._dead_letters = broker.publisher(
            exchange=DEAD_LETTER_EXCHANGE_DECL,
            persist=True,
            mandatory=True,
            user_id=user_id,
            include_in_schema=False,
        )

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self._by_type)

    async def publish_event(
        self,
        body: bytes,
        *,
        event_id: str,
        event_type: str,
        correlation_id: str | None,
        case_id: str | None = None,
    ) -> None:
        """`case_id` (optional) saves parsing `body` for the routing slot (`hrcase-slot`,
        shared.topology: the case's partition in every partitioned consumer)."""
        publisher = self._by_type.get(event_type)
        if publisher is None:
            raise KeyError(f"no publisher declared for {event_type!r}")
        slot: dict[str, Any] = (
            {SLOT_HEADER: str(slot_of(case_id))} if case_id else slot_headers(body)
        )
        await publisher.publish(
            body,
            message_id=event_id,
            correlation_id=correlation_id,
            headers=slot,
            # Repeated per call: FastStream's defaults would send a transient message.
            persist=True,
            mandatory=True,
            user_id=self.user_id,
        )

    async def dead_letter(
        self,
        body: bytes,
        *,
        queue_name: str,
        headers: Mapping[str, Any],
        message_id: str | None,
        correlation_id: str | None,
        message_type: str | None,
        content_type: str | None,
        content_encoding: str | None,
    ) -> None:
        """Copy a failed delivery to `<queue_name>.dlq` via hr.dlx (routing key = queue)."""
        await self._dead_letters.publish(
            body,
            routing_key=queue_name,
            headers=dict(headers),
            message_id=message_id,
            correlation_id=correlation_id,
            message_type=message_type,
            content_type=content_type,
            content_encoding=content_encoding,
            persist=True,
            mandatory=True,
            user_id=self.user_id,
        )
