"""Routing service wiring: policy loaded and validated on start."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from services.routing.domain.policy import load_policy
from services.routing.handlers import build_handlers
from shared.consumer import Handler
from shared.service import Runtime, ServiceSpec

log = structlog.get_logger(__name__)


async def _handlers(runtime: Runtime) -> Mapping[str, Handler]:
    policy = load_policy(runtime.settings.routing_policy_file)
    runtime.state["policy"] = policy
    log.info("routing policy loaded", policy_hash=policy.source_hash, version=policy.version)
    return build_handlers(policy)


SPEC = ServiceSpec(name="routing", handlers=_handlers)
