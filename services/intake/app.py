"""Intake service wiring: the HTTP API plus the read-model projections."""

from __future__ import annotations

from collections.abc import Mapping

from services.intake.api import router
from services.intake.handlers import HANDLERS
from shared.consumer import Handler
from shared.service import Runtime, ServiceSpec


async def _handlers(runtime: Runtime) -> Mapping[str, Handler]:
    return HANDLERS


SPEC = ServiceSpec(name="intake", handlers=_handlers, routers=[router])
