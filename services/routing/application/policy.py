"""Announcing the routing policy a process loaded (once per distinct content)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.routing.adapters import sql
from services.routing.domain.policy import Policy
from shared.envelope import Actor
from shared.events import RoutingPolicyLoaded, make_event
from shared.uow import UnitOfWork

# (connection, policy_hash, version, source) -> True the first time this content is loaded.
RecordPolicyLoad = Callable[[Any, str, int, str], Awaitable[bool]]


async def announce_policy(
    uow: UnitOfWork,
    policy: Policy,
    source: str,
    *,
    record_load: RecordPolicyLoad = sql.record_policy_load,
) -> bool:
    """Record `routing.policy_loaded` once per distinct policy content; restarts stay
    quiet. Returns whether the event was emitted."""
    async with uow:
        if not await record_load(uow.conn, policy.source_hash, policy.version, source):
            return False
        await uow.emit(
            make_event(
                RoutingPolicyLoaded(
                    policy_hash=policy.source_hash, version=policy.version, source=source
                ),
                producer="routing",
                actor=Actor(type="service", id="routing"),
                case_id=None,
            )
        )
    return True
