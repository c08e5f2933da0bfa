"""Routing service wiring: policy validated and announced on start, handlers, timer loop."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from services.routing.application.handlers import build_handlers
from services.routing.application.policy import announce_policy, publish_roster
from services.routing.application.retention import RetentionTimers
from services.routing.application.timers import TimerLoop, refresh_sla_timer_gauges
from services.routing.config import RoutingSettings
from services.routing.domain.policy import load_policy
from services.routing.entrypoints.subscriptions import SUBSCRIPTIONS
from shared.consumer import Handler
from shared.privacy.keys import KeyStore, key_store_url
from shared.service import Runtime, ServiceSpec
from shared.uow import unit_of_work

log = structlog.get_logger(__name__)


async def _startup(runtime: Runtime) -> None:
    config = RoutingSettings()
    source = config.policy_source
    policy = load_policy(source)
    runtime.state["policy"] = policy
    announced = await announce_policy(unit_of_work(runtime), policy, source)
    await publish_roster(unit_of_work(runtime), policy)
    log.info(
        "routing policy loaded",
        policy_hash=policy.source_hash,
        version=policy.version,
        announced=announced,
    )
    # Retention destroys keys in the key store (shared.privacy.keys), its own schema and role.
    keys = await KeyStore.open(key_store_url(runtime.settings), service="routing")
    timers = TimerLoop(
        pool=runtime.pool,
        policy=policy,
        on_commit=runtime.wake_relay,
        interval=config.timer_interval,
        extra_batches=(RetentionTimers(keys),),
    )
    timers.start()
    runtime.state["timers"] = timers
    runtime.closers.append(timers.stop)
    runtime.closers.append(keys.close)  # after the timer loop that uses it has stopped
    if runtime.metrics:
        pool = runtime.pool
        runtime.metrics.add("sla_timers", lambda: refresh_sla_timer_gauges(pool))


async def _handlers(runtime: Runtime) -> Mapping[str, Handler]:
    return build_handlers(runtime.state["policy"])


SPEC = ServiceSpec(
    name="routing",
    subscriptions=SUBSCRIPTIONS,
    handlers=_handlers,
    on_startup=_startup,
    # Its handlers only touch its database (and read the policy in memory): several
    # deliveries may share a transaction (README "Consumer batches").
    batches_deliveries=True,
)
