"""Reading and replaying a service's dead-letter queue (the operator's `hrcase dlq`).

A dead letter is replayed as its producer would publish it: on `hr.events` with its
original routing key, message id and body, stamped with the original producer's broker
user (`x-original-user-id`, which consumers authenticate), so it reaches the failed
service's queue (or partition) by the bindings in place. Every other queue bound to the
key receives a copy too; their inboxes drop it as a duplicate. A copy is acked from the
DLQ only after the broker confirmed the republish: a crash in between leaves it in the
DLQ (replaying it again is a duplicate), never loses it.

Order: the dead letters chosen are replayed in the order they sit in the DLQ (the order
they were dead-lettered), or by `order` (a case's hold positions, shared.case_holds)
when given, so a held case's events go out head first. Dead letters not chosen stay in
the DLQ in their order (taken unacknowledged, then returned with `nack`).

Never replayed: copies refused as forged or conflicting (ProducerNotAuthenticated,
EventIdConflict) and copies whose original publisher is no service's broker user.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
)

from shared.bus import persistent_copy
from shared.topology import EXCHANGE

NEVER_REPLAYED = frozenset({"ProducerNotAuthenticated", "EventIdConflict"})
# The dead-letter headers a replay drops: the replayed copy starts its attempts afresh.
_FAILURE_HEADERS = frozenset(
    {
        "x-error",
        "x-error-type",
        "x-failed-service",
        "x-attempts",
        "x-failed-at",
        "x-held-behind",
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-delivery-count",
    }
)


@dataclass(frozen=True)
class DeadLetter:
    """What an operator needs to know about one message in a DLQ (ids, never payloads)."""

    message_id: str | None
    event_type: str
    case_id: str | None
    error_type: str
    error: str
    failed_at: str
    held_behind: str | None
    original_user_id: str

    @property
    def event_id(self) -> str | None:
        return self.message_id

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> DeadLetter:
        headers = message.headers or {}
        case_id: str | None = None
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            raw = json.loads(message.body).get("case_id")
            case_id = str(raw) if raw else None
        return cls(
            message_id=message.message_id,
            event_type=str(headers.get("x-original-routing-key") or message.type or "?"),
            case_id=case_id,
            error_type=str(headers.get("x-error-type", "")),
            error=str(headers.get("x-error", "")),
            failed_at=str(headers.get("x-failed-at", "")),
            held_behind=str(headers["x-held-behind"]) if "x-held-behind" in headers else None,
            original_user_id=str(headers.get("x-original-user-id") or ""),
        )


@dataclass(frozen=True)
class Replayed:
    """One dead letter the replay handled: `refused` says why it stayed in the DLQ."""

    dead_letter: DeadLetter
    refused: str | None = None


async def _take_all(channel: AbstractChannel, dlq: str) -> list[AbstractIncomingMessage]:
    """Every message now in `dlq`, in order, unacknowledged (see _put_back)."""
    queue = await channel.get_queue(dlq, ensure=True)
    taken: list[AbstractIncomingMessage] = []
    while (message := await queue.get(no_ack=False, fail=False)) is not None:
        taken.append(message)
    return taken


async def _put_back(messages: list[AbstractIncomingMessage]) -> None:
    """Return what was taken and not acked, in its order: `nack`, which RabbitMQ 4.3
    quorum queues do not count toward a delivery limit (a DLQ declared without one gets
    the default of 20 there, and a message past it would be dropped)."""
    for message in messages:
        if not message.processed:
            await message.nack(requeue=True)


async def browse(connection: AbstractConnection, dlq: str) -> list[DeadLetter]:
    """The dead letters in `dlq`, in order; the queue is left as it was."""
    async with connection.channel() as channel:
        taken = await _take_all(channel, dlq)
        try:
            return [DeadLetter.of(message) for message in taken]
        finally:
            await _put_back(taken)


PublisherUrl = Callable[[str], str]


async def replay(
    connection: AbstractConnection,
    dlq: str,
    *,
    choose: Callable[[DeadLetter], bool],
    url_for_user: PublisherUrl,
    user_prefix: str,
    order: Mapping[str, int] | None = None,
    connect: Callable[[str], Awaitable[AbstractConnection]] | None = None,
) -> list[Replayed]:
    """Republish the dead letters of `dlq` that `choose` accepts, in order; ack each once
    confirmed. `url_for_user(user)` is the AMQP URL to publish as that broker user (its
    `user_id` is validated by the broker). `order` (message id -> rank) sorts the chosen
    ones first by rank (ranked before unranked), then by their place in the DLQ.

    Returns what was done with each chosen dead letter. Raises aio-pika's errors when the
    broker refuses a publish (nothing more is acked then; the rest is put back).
    """
    publishers = _Publishers(url_for_user, connect or _connect)
    try:
        async with connection.channel() as channel:
            taken = await _take_all(channel, dlq)
            try:
                return await _replay_chosen(taken, dlq, choose, user_prefix, order, publishers)
            finally:
                await _put_back(taken)
    finally:
        await publishers.close()


class _Publishers:
    """One confirming channel on `hr.events` per broker user replayed as, opened lazily."""

    def __init__(
        self,
        url_for_user: PublisherUrl,
        connect: Callable[[str], Awaitable[AbstractConnection]],
    ) -> None:
        self.url_for_user = url_for_user
        self.connect = connect
        self.connections: list[AbstractConnection] = []
        self.exchanges: dict[str, AbstractExchange] = {}

    async def exchange(self, user: str) -> AbstractExchange:
        if user not in self.exchanges:
            connection = await self.connect(self.url_for_user(user))
            self.connections.append(connection)
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            self.exchanges[user] = await channel.get_exchange(EXCHANGE, ensure=False)
        return self.exchanges[user]

    async def close(self) -> None:
        for connection in self.connections:
            with contextlib.suppress(Exception):
                await connection.close()


async def _replay_chosen(
    taken: list[AbstractIncomingMessage],
    dlq: str,
    choose: Callable[[DeadLetter], bool],
    user_prefix: str,
    order: Mapping[str, int] | None,
    publishers: _Publishers,
) -> list[Replayed]:
    ranks = order or {}
    chosen = [(i, m, DeadLetter.of(m)) for i, m in enumerate(taken)]
    chosen = [item for item in chosen if choose(item[2])]
    chosen.sort(
        key=lambda item: (
            0 if item[2].message_id in ranks else 1,
            ranks.get(item[2].message_id or "", 0),
            item[0],
        )
    )
    done: list[Replayed] = []
    for _, message, letter in chosen:
        refused = _refusal(letter, user_prefix)
        if refused is not None:
            done.append(Replayed(letter, refused))
            continue
        exchange = await publishers.exchange(letter.original_user_id)
        await _republish(exchange, message, letter, dlq)
        await message.ack()
        done.append(Replayed(letter))
    return done


def _refusal(letter: DeadLetter, user_prefix: str) -> str | None:
    if letter.error_type in NEVER_REPLAYED:
        return f"not replayed: {letter.error_type} (forged or conflicting copies stay)"
    if not letter.original_user_id.startswith(user_prefix):
        return (
            f"not replayed: its publisher {letter.original_user_id!r} is no service's broker user"
        )
    return None


async def _connect(url: str) -> AbstractConnection:
    return await aio_pika.connect(url, client_properties={"connection_name": "hrcase-dlq-replay"})


async def _republish(
    exchange: AbstractExchange,
    message: AbstractIncomingMessage,
    letter: DeadLetter,
    dlq: str,
) -> None:
    headers: dict[str, Any] = {
        key: value
        for key, value in (message.headers or {}).items()
        if key not in _FAILURE_HEADERS and not key.startswith("x-original-")
    }
    headers["x-replayed-from"] = dlq
    headers["x-replayed-at"] = datetime.now(UTC).isoformat()
    copy = persistent_copy(message, headers, user_id=letter.original_user_id)
    # Waits for the broker's confirm; an unroutable copy raises (mandatory).
    await exchange.publish(copy, routing_key=letter.event_type, mandatory=True)
