"""Start the SMTP listener with the service and stop it on shutdown (ServiceSpec hooks)."""

from __future__ import annotations

from services.intake.email.config import EmailConfig
from services.intake.email.smtp import IntakeSmtpHandler, start_smtp_server
from shared.service import Runtime


async def start_email_intake(runtime: Runtime) -> None:
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
