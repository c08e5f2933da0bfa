"""Intake service wiring: the HTTP API plus the read-model projections."""

from __future__ import annotations

from collections.abc import Mapping

from services.intake.api import router
from services.intake.email.http import router as email_router
from services.intake.email.wiring import start_email_intake
from services.intake.handlers import HANDLERS
from services.intake.portal.routes import router as portal_router
from shared.consumer import Handler
from shared.service import Runtime, ServiceSpec


async def _handlers(runtime: Runtime) -> Mapping[str, Handler]:
    return HANDLERS


SPEC = ServiceSpec(
    name="intake",
    handlers=_handlers,
    routers=[router, portal_router, email_router],
    on_startup=start_email_intake,  # the SMTP listener; stopped through runtime.closers
)
