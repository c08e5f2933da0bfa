"""The outbox refuses, when written, an event its service may not publish (real database)."""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

import pytest

from shared.envelope import Actor, Envelope, new_envelope
from shared.outbox import UndeclaredEvent, enqueue


def _event(event_type: str, producer: str, payload: dict[str, Any] | None = None) -> Envelope:
    return new_envelope(
        event_type=event_type,
        schema_version=1,
        payload=payload or {},
        producer=producer,
        actor=Actor(type="service", id=producer),
        case_id=uuid4(),
    )


async def test_a_service_cannot_enqueue_an_event_it_may_not_publish(admin_pool: Any) -> None:
    """Caught when written (the transaction rolls back), not as a stalled outbox row the
    broker refuses forever."""
    routed_by_intake = _event("case.routed", "intake")
    as_other_producer = _event("case.submitted", "routing")
    declared = _event("case.note_added", "intake")
    async with admin_pool.acquire() as conn:
        for event in (routed_by_intake, as_other_producer):
            with pytest.raises(UndeclaredEvent, match=re.escape("shared.topology.PUBLISHES")):
                async with conn.transaction():
                    await enqueue(conn, "intake", declared, event)
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM intake.outbox WHERE event_id = ANY($1::uuid[])",
                    [declared.event_id, event.event_id],
                )
                == 0
            )
