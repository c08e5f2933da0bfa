"""Recording a case's history as intake writes and consumes its events, and reading it.

Intake's own writes (a case raised, a message, a note, a staff request) call
`record_written` in their transaction with the writer's display name. Every event intake
consumes is recorded by `with_history`, which wraps the projection handlers: the entry is
written first (it needs the values the projection is about to overwrite, e.g. the previous
owner's name), in the same transaction and under the same case lock, and its event_id makes
a redelivery a no-op. Staff read it through `case_page.case_history`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from services.intake.adapters import history as store
from services.intake.application import analytics_projection
from services.intake.domain.history import Actor, HistoryEntry, consumed_entry
from shared.consumer import Handler, HandlerContext
from shared.envelope import Envelope
from shared.events import parse_payload


async def record_written(
    conn: asyncpg.Connection,
    event: Envelope,
    kind: str,
    *,
    actor_name: str | None,
    **summary: Any,
) -> None:
    """Record an event intake itself wrote (in the transaction that writes it)."""
    assert event.case_id is not None
    await store.insert_entry(
        conn,
        HistoryEntry(
            event_id=event.event_id,
            case_id=event.case_id,
            occurred_at=event.occurred_at,
            event_type=event.event_type,
            kind=kind,
            actor=Actor(event.actor.type, event.actor.id, actor_name),
            summary=summary,
            causation_id=event.causation_id,
        ),
    )
    # The case's analytics fact row follows intake's own writes in the same transaction.
    await analytics_projection.refresh_case(conn, event.case_id)


async def record_consumed(ctx: HandlerContext) -> None:
    """Record an event intake consumed; the case must be known (else retried, then DLQ).

    The payload is checked against its schema first, so a malformed event is dead-lettered
    for what is wrong with it, not for what recording it ran into."""
    parse_payload(ctx.envelope)
    case_id = ctx.envelope.case_id
    if case_id is None:
        return  # not about a case: nothing to keep in a case's history
    before, cause = await store.case_before(ctx.conn, case_id, ctx.envelope.causation_id)
    if before is None:
        raise LookupError(f"case {case_id} is not known to intake")
    await store.insert_entry(ctx.conn, consumed_entry(ctx.envelope, before, cause))


def with_history(handlers: Mapping[str, Handler]) -> dict[str, Handler]:
    """The same handlers, each recording its event in the case's history first."""

    def wrap(handler: Handler) -> Handler:
        async def recorded(ctx: HandlerContext) -> None:
            await record_consumed(ctx)
            await handler(ctx)

        recorded.__name__ = getattr(handler, "__name__", "handler")
        recorded.__doc__ = handler.__doc__
        return recorded

    return {event_type: wrap(handler) for event_type, handler in handlers.items()}


async def history_only(ctx: HandlerContext) -> None:
    """For events intake keeps in a case's history and projects nowhere else (SLA clocks,
    escalations): `with_history` records them."""
