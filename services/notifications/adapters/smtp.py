"""Outbound email over SMTP (aiosmtplib), with a short bounded retry (tenacity).

The send runs inside the consumer's database transaction, so the whole retry budget is
kept to a few seconds; a longer outage is recorded as a failed delivery, not retried here.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib
import structlog
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

log = structlog.get_logger(__name__)

# What a failed send can raise: protocol errors, refused/reset connections, timeouts.
SEND_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError)


@dataclass(frozen=True)
class SendResult:
    ok: bool
    attempts: int
    error: str | None = None


class SmtpMailer:
    """Sends one message to `host:port`; never raises for a delivery failure.

    Keeps up to `connections` SMTP sessions open and reuses them: a session per mail
    (connect, EHLO, QUIT) costs more than the mail itself. A session that fails is
    dropped, and the retry opens a fresh one, which also covers servers that close
    idle connections.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        attempts: int = 3,
        attempt_timeout: float = 1.5,
        backoff: float = 0.2,
        budget: float = 4.5,
        connections: int = 4,
    ) -> None:
        self.host = host
        self.port = port
        self.attempts = attempts
        self.attempt_timeout = attempt_timeout
        self.backoff = backoff
        self.budget = budget
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(connections)

    async def _send_once(self, message: EmailMessage) -> None:
        async with self._slots:
            client = self._idle.get_nowait() if not self._idle.empty() else None
            if client is None or not client.is_connected:
                client = aiosmtplib.SMTP(
                    hostname=self.host, port=self.port, timeout=self.attempt_timeout
                )
                await client.connect()
            try:
                await client.send_message(message)
            except BaseException:
                # The session's state is unknown after a failure: never reuse it.
                client.close()
                raise
            self._idle.put_nowait(client)

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                try:
                    await client.quit()
                except SEND_ERRORS:
                    client.close()

    async def send(self, message: EmailMessage) -> SendResult:
        recipients = [a.addr_spec for a in getattr(message.get("To"), "addresses", ())]
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.budget * 0.6),
            wait=wait_exponential(multiplier=self.backoff, max=1.0),
            retry=retry_if_exception(is_transient),
            reraise=True,
        )
        attempts = 0
        try:
            # Hard cap on top of the retry policy: a server that accepts and then stalls
            # must not hold the event's transaction open for longer than the budget.
            async with asyncio.timeout(self.budget):
                async for attempt in retrying:
                    with attempt:
                        attempts = attempt.retry_state.attempt_number
                        await self._send_once(message)
        except SEND_ERRORS as exc:
            error = describe_error(exc, recipients)
            log.warning("email not delivered", attempts=attempts, error=error)
            return SendResult(ok=False, attempts=attempts, error=error)
        return SendResult(ok=True, attempts=attempts)


def is_transient(exc: BaseException) -> bool:
    """4xx replies and network trouble may pass; 5xx replies will not (no point retrying)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(400 <= r.code < 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 400 <= exc.code < 500
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return False
    return isinstance(exc, SEND_ERRORS)


def describe_error(exc: BaseException, recipients: list[str]) -> str:
    """A short reason for records and events, with the recipient's address removed."""
    name = type(exc).__name__
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        text = f"{name}: " + ", ".join(f"{r.code} {r.message}" for r in exc.recipients)
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{name}: {exc.code} {exc.message}"
    else:
        text = f"{name}: {exc}" if str(exc) else name
    for address in recipients:
        text = re.sub(re.escape(address), "<recipient>", text, flags=re.IGNORECASE)
    return text[:500]
