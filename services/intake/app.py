"""Intake service wiring: the HTTP API, the portal, the email doors and the projections."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

import structlog

from services.intake.adapters.oidc import OidcClient
from services.intake.application import analytics
from services.intake.application.handlers import HANDLERS
from services.intake.config import EmailConfig, OidcConfig, dev_sign_in_wanted
from services.intake.entrypoints.case_page_http import router as case_page_router
from services.intake.entrypoints.documents_http import router as documents_router
from services.intake.entrypoints.email_http import router as email_router
from services.intake.entrypoints.email_smtp import IntakeSmtpHandler, start_smtp_server
from services.intake.entrypoints.http import router
from services.intake.entrypoints.http_analytics import router as analytics_router
from services.intake.entrypoints.http_conferences import router as conferences_router
from services.intake.entrypoints.http_investigations import router as investigations_router
from services.intake.entrypoints.http_legal_holds import router as legal_holds_router
from services.intake.entrypoints.http_mediation import router as mediation_router
from services.intake.entrypoints.http_privacy import router as privacy_router
from services.intake.entrypoints.http_processes import router as processes_router
from services.intake.entrypoints.http_statutory_clocks import router as statutory_clocks_router
from services.intake.entrypoints.http_tasks import router as tasks_router
from services.intake.entrypoints.portal.conference_links import router as conference_links_router
from services.intake.entrypoints.portal.conference_worker import router as conference_worker_router
from services.intake.entrypoints.portal.routes import router as portal_router
from services.intake.entrypoints.portal.sso import backchannel_router
from services.intake.entrypoints.subscriptions import SUBSCRIPTIONS
from services.intake.entrypoints.work_queue_http import router as work_queue_router
from shared.consumer import Handler
from shared.service import Runtime, ServiceSpec

log = structlog.get_logger()


async def _handlers(runtime: Runtime) -> Mapping[str, Handler]:
    return HANDLERS


async def start_email_intake(runtime: Runtime) -> None:
    """Start the SMTP listener with the service and stop it on shutdown."""
    config = EmailConfig.from_env(runtime.settings)
    runtime.state["email_config"] = config
    if not config.smtp_enabled:
        return
    handler = IntakeSmtpHandler(runtime.pool, config, on_commit=runtime.wake_relay)
    server = await start_smtp_server(handler, config)

    async def close() -> None:
        server.close()
        await server.wait_closed()

    runtime.closers.append(close)


async def start_intake(runtime: Runtime) -> None:
    """The SMTP listener, and the analytics fact rows of cases raised before they existed
    and the dashboard's replica loaded (in the background: the service is ready meanwhile).
    Single sign-on's client when configured (its settings are checked here: a bad
    OIDC_ROLE_MAP or DEV_SIGN_IN=1 outside development stops the start)."""
    oidc = OidcConfig.from_env(runtime.settings)
    dev_sign_in_wanted(runtime.settings)
    runtime.state["oidc"] = OidcClient(oidc) if oidc is not None else None
    await start_email_intake(runtime)
    task = asyncio.create_task(analytics.prepare_at_start(runtime))

    async def stop_backfill() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    runtime.closers.append(stop_backfill)


SPEC = ServiceSpec(
    name="intake",
    subscriptions=SUBSCRIPTIONS,
    handlers=_handlers,
    # Its projections only touch its database: several deliveries may share a transaction
    # (README "Consumer batches").
    batches_deliveries=True,
    routers=[
        router,
        work_queue_router,
        case_page_router,
        tasks_router,
        conferences_router,
        mediation_router,
        portal_router,
        documents_router,
        email_router,
        # The participant's signed-link page: no session resolved (not portal_router()).
        conference_links_router,
        conference_worker_router,
        statutory_clocks_router,
        investigations_router,
        processes_router,
        analytics_router,
        legal_holds_router,
        privacy_router,
        # The single sign-on provider's back-channel logout (server to server, no session).
        backchannel_router,
    ],
    # The SMTP listener and the analytics backfill; stopped through runtime.closers.
    on_startup=start_intake,
)
