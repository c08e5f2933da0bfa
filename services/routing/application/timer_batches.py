"""One batch of due timers, fired once across replicas (tasks, conference actions,
statutory clocks): claim the due rows under FOR UPDATE SKIP LOCKED, fire each, mark each
fired with the event it announced, and record those events, all in one transaction. A
replica that dies mid-batch rolls back: the timers stay due and another tick fires them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from uuid import UUID

import asyncpg

from shared.envelope import Envelope
from shared.uow import PostgresUnitOfWork

SERVICE = "routing"
Timer = TypeVar("Timer")


async def fire_batch(
    pool: asyncpg.Pool,
    *,
    claim: Callable[[asyncpg.Connection, int], Awaitable[Sequence[Timer]]],
    fire: Callable[[asyncpg.Connection, Timer], Awaitable[Envelope | None]],
    mark: Callable[[asyncpg.Connection, Timer, UUID | None], Awaitable[None]],
    on_commit: Callable[[], None] | None = None,
    batch_size: int = 100,
) -> int:
    """Fire one batch; return how many timers were claimed (`fire` returns None for a
    stale timer, which is marked fired without an event)."""
    uow = PostgresUnitOfWork(pool, SERVICE, on_commit=on_commit)
    async with uow:
        timers = await claim(uow.conn, batch_size)
        for timer in timers:
            event = await fire(uow.conn, timer)
            await mark(uow.conn, timer, event.event_id if event else None)
            if event is not None:
                await uow.emit(event)
    return len(timers)
