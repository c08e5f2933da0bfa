"""Routing service wiring: policy validated and announced on start, handlers, timer loop."""

from __future__ import annotations

import os
from collections.abc import Mapping

import structlog

from services.routing.adapters import sql
from services.routing.domain.policy import DEFAULT_POLICY_FILE, Policy, load_policy
from services.routing.handlers import build_handlers
from services.routing.timers import TimerLoop
from shared.consumer import Handler
from shared.envelope import Actor
from shared.events import RoutingPolicyLoaded, make_event
from shared.outbox import enqueue
from shared.service import Runtime, ServiceSpec

log = structlog.get_logger(__name__)


async def announce_policy(runtime: Runtime, policy: Policy, source: str) -> bool:
    """Record `routing.policy_loaded` once per distinct policy content (restarts stay quiet)."""
    async with runtime.pool.acquire() as conn, conn.transaction():
        if not await sql.record_policy_load(conn, policy.source_hash, policy.version, source):
            return False
        event = make_event(
            RoutingPolicyLoaded(
                policy_hash=policy.source_hash, version=policy.version, source=source
            ),
            producer="routing",
            actor=Actor(type="service", id="routing"),
            case_id=None,
        )
        await enqueue(conn, "routing", event)
    runtime.wake_relay()
    return True


async def _startup(runtime: Runtime) -> None:
    source = runtime.settings.routing_policy_file or str(DEFAULT_POLICY_FILE)
    policy = load_policy(source)
    runtime.state["policy"] = policy
    announced = await announce_policy(runtime, policy, source)
    log.info(
        "routing policy loaded",
        policy_hash=policy.source_hash,
        version=policy.version,
        announced=announced,
    )
    timers = TimerLoop(
        pool=runtime.pool,
        policy=policy,
        on_commit=runtime.wake_relay,
        interval=float(os.environ.get("ROUTING_TIMER_INTERVAL", "1.0")),
    )
    timers.start()
    runtime.state["timers"] = timers
    runtime.closers.append(timers.stop)


async def _handlers(runtime: Runtime) -> Mapping[str, Handler]:
    return build_handlers(runtime.state["policy"])


SPEC = ServiceSpec(name="routing", handlers=_handlers, on_startup=_startup)
