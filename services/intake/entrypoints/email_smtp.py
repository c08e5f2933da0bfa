"""The SMTP entrypoint: aiosmtpd on the service's own event loop, in front of `receive`.

RCPT refuses any address but the HR mailbox (550); SIZE is advertised and enforced by
aiosmtpd (552); the reply to DATA is sent only after `receive` has committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog
from aiosmtpd.smtp import SMTP

from services.intake.application.email_ingest import receive
from services.intake.config import EmailConfig
from shared.uow import PostgresUnitOfWork

log = structlog.get_logger(__name__)


class IntakeSmtpHandler:
    """aiosmtpd handler hooks (called by name: handle_RCPT, handle_DATA, ...)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        config: EmailConfig,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.pool = pool
        self.config = config
        self.on_commit = on_commit

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.strip().lower() not in self.config.mailboxes:
            return "550 5.1.1 Mailbox unavailable: this server only accepts mail for HR"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode("utf-8")
        outcome = await receive(
            PostgresUnitOfWork(self.pool, "intake", on_commit=self.on_commit),
            raw,
            config=self.config,
            envelope_sender=envelope.mail_from,
            entrypoint="smtp",
        )
        return outcome.smtp_reply

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd's default reply would echo the exception text to the client.
        log.error("smtp session failed", error=type(error).__name__)
        return "451 4.3.0 Temporary server error, try again later"


async def start_smtp_server(handler: IntakeSmtpHandler, config: EmailConfig) -> asyncio.Server:
    """Listen on the running loop (the handler shares the service's asyncpg pool)."""
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        return SMTP(
            handler,
            data_size_limit=config.limits.max_message_bytes,
            enable_SMTPUTF8=True,
            hostname=config.smtp_hostname,
            timeout=120,
            loop=loop,
        )

    # No reuse_port: a second intake on the same port (a second `make run`, a test system)
    # must fail to start, not silently take a share of another system's mail. Replicas on
    # one host each listen on their own INTAKE_SMTP_PORT behind the MX or a balancer.
    try:
        server = await loop.create_server(protocol, host=config.smtp_host, port=config.smtp_port)
    except OSError as exc:
        where = f"{config.smtp_host}:{config.smtp_port}"
        raise OSError(
            exc.errno,
            f"intake SMTP cannot listen on {where} ({exc.strerror}): is another hrcase"
            " running? Stop it or set INTAKE_SMTP_PORT",
        ) from exc
    log.info("smtp listening", host=config.smtp_host, port=config.smtp_port)
    return server
