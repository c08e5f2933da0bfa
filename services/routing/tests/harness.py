"""Helpers for routing tests on the real broker: a tap on the exchange, fast policies, events."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from hrcase.services import QUEUES
from services.routing.domain.policy import DEFAULT_POLICY_FILE
from shared.bus import build_message
from shared.envelope import Actor, Envelope, utcnow
from shared.events import CaseSubmitted, EventPayload, Reporter, make_event
from shared.privacy.sealing import key_store_for, open_envelope
from shared.topology import EXCHANGE, PUBLISHES
from tests.support.bus import connection_as, user_of

ALL_WEEK = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def fast_policy(path: Path, *, first_response_hours: float = 0.001, **changes: Any) -> Path:
    """The shipped policy with round-the-clock calendars and a first response due in seconds."""
    raw = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    raw = copy.deepcopy(raw)
    for calendar in raw["calendars"].values():
        calendar["hours"] = ALL_WEEK
    raw["sla"]["warn_at"] = 0.5
    for target in raw["sla"]["targets"].values():
        target["first_response_hours"] = first_response_hours
        target["resolution_hours"] = 2
    for ladder in raw["escalation_ladders"].values():
        for index, level in enumerate(ladder):
            level["after_breach_hours"] = index * first_response_hours / 2
    raw.update(changes)
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


class Tap:
    """Every event published on hr.events, for assertions (its own exclusive queue)."""

    def __init__(self) -> None:
        # In delivery order; None while that event's personal fields are being opened,
        # False for a body that is no envelope (skipped, as before).
        self._slots: list[Envelope | bool | None] = []

    @property
    def events(self) -> list[Envelope]:
        """The events received so far, in delivery order, each opened (the prefix whose
        every event is ready, so the order never changes under a reader)."""
        ready: list[Envelope] = []
        for envelope in self._slots:
            if envelope is None:
                break
            if isinstance(envelope, Envelope):
                ready.append(envelope)
        return ready

    def _reserve(self) -> int:
        self._slots.append(None)
        return len(self._slots) - 1

    def _fill(self, slot: int, envelope: Envelope | bool) -> None:
        self._slots[slot] = envelope

    def of(self, case_id: uuid.UUID | None, event_type: str | None = None) -> list[Envelope]:
        return [
            e
            for e in self.events
            if e.case_id == case_id and (event_type is None or e.event_type == event_type)
        ]

    def distinct(self, case_id: uuid.UUID | None) -> Counter[str]:
        seen: dict[uuid.UUID, str] = {e.event_id: e.event_type for e in self.of(case_id)}
        return Counter(seen.values())

    async def wait(self, predicate: Any, timeout: float = 20.0, what: str = "events") -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            result = predicate()
            if result:
                return result
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")


@asynccontextmanager
async def tapped(connection: AbstractRobustConnection) -> AsyncIterator[Tap]:
    tap = Tap()
    channel = await connection.channel()
    exchange = await channel.get_exchange(EXCHANGE)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(exchange, routing_key="#")

    # Read as a consumer with key-store access reads (shared.privacy): personal fields
    # opened, with the test database's key store (conftest: use_key_store_url).
    keys = await key_store_for("tests")

    async def on_message(message: AbstractIncomingMessage) -> None:
        slot = tap._reserve()  # before any await: deliveries are handled concurrently
        try:
            async with message.process():
                envelope = Envelope.from_json_bytes(message.body)
                tap._fill(slot, await open_envelope(keys, envelope, purpose="test tap"))
        finally:
            if tap._slots[slot] is None:
                tap._fill(slot, False)

    await queue.consume(on_message)
    try:
        yield tap
    finally:
        await channel.close()


def event(payload: EventPayload, case_id: uuid.UUID | None, actor: Actor | None = None) -> Envelope:
    # Produced by whoever is declared to publish the type (intake, or the directory feed).
    (producer,) = (p for p, types in PUBLISHES.items() if payload.event_type in types)
    return make_event(
        payload,
        producer=producer,
        actor=actor or Actor(type="agent", id="u-hr-manager"),
        case_id=case_id,
    )


def submission(
    subject: str = "My payslip is missing overtime",
    *,
    respondents: tuple[str, ...] = (),
    **fields: Any,
) -> tuple[uuid.UUID, Envelope]:
    case_id = uuid.uuid4()
    payload = CaseSubmitted(
        reference=f"HR-T-{case_id.hex[:8]}",
        channel=fields.pop("channel", "portal"),
        subject=subject,
        description=fields.pop("description", "Please look into it."),
        reporter=Reporter(employee_id="E-500", name="Rae Kim", email="rae.kim@example.com"),
        submitted_at=fields.pop("submitted_at", utcnow()),
        respondent_employee_ids=list(respondents),
        **fields,
    )
    return case_id, event(payload, case_id, Actor(type="employee", id="E-500"))


async def publish(connection: AbstractRobustConnection, *envelopes: Envelope) -> None:
    """Publish in order (each confirmed before the next), as the producer's own broker user."""
    for envelope in envelopes:
        # One channel per event: each producer has its own connection (user_id validated).
        own = await connection_as(connection, envelope.producer)
        async with own.channel(publisher_confirms=True) as channel:
            exchange = await channel.get_exchange(EXCHANGE, ensure=False)
            await exchange.publish(
                build_message(
                    envelope.to_json_bytes(),
                    event_id=str(envelope.event_id),
                    event_type=envelope.event_type,
                    correlation_id=str(envelope.correlation_id),
                    user_id=user_of(envelope.producer),
                ),
                routing_key=envelope.event_type,
                mandatory=True,
            )


async def purge_other_queues(connection: AbstractRobustConnection) -> None:
    """Drop what routing published into other services' queues (no such service runs here)."""
    async with connection.channel() as channel:
        for name in (
            *QUEUES["intake"].queue_names,
            *QUEUES["notifications"].queue_names,
            *QUEUES["audit"].queue_names,
        ):
            queue = await channel.get_queue(name, ensure=False)
            await queue.purge()
