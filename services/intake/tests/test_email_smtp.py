"""The SMTP listener in-process: recipients, size limits, and 451 when the database is down.

A listener wired to a database that refuses connections must answer DATA with a temporary
451, so the sending server keeps the message and retries: the reply never comes before the
message is recorded.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from email.policy import SMTP

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from services.intake.config import EmailConfig, EmailLimits
from services.intake.entrypoints.email_smtp import IntakeSmtpHandler, start_smtp_server
from services.intake.entrypoints.send_sample_email import build_sample
from tests.support.infra import free_port

SAMPLE = build_sample(
    sender="sam.rivera@example.com", to="hr@example.com", subject="Payslip", body="Missing pay."
)


@pytest.fixture
async def dead_database_listener(database_url: str) -> AsyncIterator[int]:
    # Same database URL but a port nobody listens on: every acquire fails.
    closed = make_url(database_url).set(port=free_port()).render_as_string(False)
    pool = await asyncpg.create_pool(closed, min_size=0, max_size=1, timeout=2)
    assert pool is not None
    port = free_port()
    config = EmailConfig(
        smtp_port=port,
        limits=EmailLimits(max_message_bytes=20_000),
        mailboxes=frozenset({"hr@example.com"}),
    )
    server = await start_smtp_server(IntakeSmtpHandler(pool, config), config)
    try:
        yield port
    finally:
        server.close()
        await server.wait_closed()
        await pool.close()


def _send(port: int, raw: bytes, *, rcpt: str = "hr@example.com", size: int | None = None):
    """A real client conversation; returns the (code, text) of each step we care about."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        options = [f"SIZE={size}"] if size is not None else []
        mail = smtp.mail("sam.rivera@example.com", options)
        if mail[0] >= 400:
            return {"mail": mail}
        rcpt_reply = smtp.rcpt(rcpt)
        if rcpt_reply[0] >= 400:
            return {"mail": mail, "rcpt": rcpt_reply}
        return {"mail": mail, "rcpt": rcpt_reply, "data": smtp.data(raw)}


async def test_database_down_means_a_temporary_451_not_an_acceptance(dead_database_listener):
    replies = await asyncio.to_thread(_send, dead_database_listener, SAMPLE.as_bytes(policy=SMTP))
    code, text = replies["data"]
    assert code == 451, replies
    assert b"try again" in text


async def test_only_the_hr_mailbox_is_accepted(dead_database_listener):
    replies = await asyncio.to_thread(
        _send, dead_database_listener, SAMPLE.as_bytes(policy=SMTP), rcpt="ceo@example.com"
    )
    assert replies["rcpt"][0] == 550


async def test_size_is_advertised_and_enforced_with_552(dead_database_listener):
    def ehlo_size() -> str | None:
        with smtplib.SMTP("127.0.0.1", dead_database_listener, timeout=10) as smtp:
            smtp.ehlo()
            return smtp.esmtp_features.get("size")

    assert await asyncio.to_thread(ehlo_size) == "20000"
    declared = await asyncio.to_thread(_send, dead_database_listener, b"x", size=50_000)
    assert declared["mail"][0] == 552
    big = build_sample(sender="sam@example.com", to="hr@example.com", subject="big",
                       body=("y" * 70 + "\n") * 400)  # fmt: skip
    replies = await asyncio.to_thread(_send, dead_database_listener, big.as_bytes(policy=SMTP))
    assert replies["data"][0] == 552, replies


async def test_refusals_are_permanent_and_give_a_reason(dead_database_listener):
    # Structural refusal happens before the database is needed: a clean 5xx with a reason.
    raw = b"From: sam@example.com\r\nSubject: deep\r\n"
    raw += b"Content-Type: message/rfc822\r\n\r\n" * 12
    replies = await asyncio.to_thread(_send, dead_database_listener, raw + b"hello\r\n")
    code, text = replies["data"]
    assert code == 554 and b"nesting" in text


async def test_the_sample_cli_reports_the_servers_answer(dead_database_listener, capsys):
    from services.intake.entrypoints.send_sample_email import main

    argv = ["--port", str(dead_database_listener), "--to", "hr@example.com"]
    with pytest.raises(SystemExit) as exited:
        await asyncio.to_thread(main, argv)
    assert exited.value.code == 1  # the 451: the message was not recorded
    assert "-> 451" in capsys.readouterr().out
