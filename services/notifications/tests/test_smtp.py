"""The SMTP adapter against real SMTP servers: success, server down, permanent refusal."""

from __future__ import annotations

import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from hrcase.mailsink import MailSink
from services.notifications.adapters.smtp import SmtpMailer
from tests.support.infra import free_port


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "HR Case Desk <hr-desk@hrcase.local>"
    message["To"] = to
    message["Subject"] = "[HR-1] test"
    message["Message-ID"] = "<fixed-id@hrcase.local>"
    message.set_content("hello\n")
    return message


async def test_send_delivers_once_and_keeps_message_id() -> None:
    with MailSink(port=free_port()) as sink:
        result = await SmtpMailer("127.0.0.1", sink.port).send(_message("x@example.com"))

        assert result.ok and result.attempts == 1 and result.error is None
        [received] = sink.messages_to("x@example.com")
        assert received["Message-ID"] == "<fixed-id@hrcase.local>"


async def test_server_down_is_retried_a_bounded_few_times_quickly() -> None:
    mailer = SmtpMailer("127.0.0.1", free_port(), attempts=3, backoff=0.05)
    started = time.monotonic()

    result = await mailer.send(_message("x@example.com"))

    assert not result.ok
    assert result.attempts == 3
    assert result.error
    assert time.monotonic() - started < 5


class _RefuseRecipients:
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        return f"550 5.1.1 <{address}>: user unknown"


async def test_permanent_refusal_is_not_retried_and_hides_the_address() -> None:
    port = free_port()
    controller = Controller(_RefuseRecipients(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        result = await SmtpMailer("127.0.0.1", port).send(_message("Secret.Person@example.com"))
    finally:
        controller.stop()

    assert not result.ok
    assert result.attempts == 1
    assert result.error is not None and "550" in result.error
    assert "secret.person" not in result.error.lower()
