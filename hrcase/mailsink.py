"""A local development mail sink: a real SMTP server that keeps what it receives.

`make run` starts it so the notifications service has somewhere to deliver, and tests use
it as the SMTP server on a free port. Nothing is relayed anywhere.

    python -m hrcase.mailsink --port 1025 --maildir var/mail
"""

from __future__ import annotations

import argparse
import contextlib
import email
import email.policy
import os
import signal
import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import structlog
from aiosmtpd.controller import Controller

log = structlog.get_logger(__name__)


class _SinkHandler:
    """aiosmtpd handler: accepts every message and hands it to the sink."""

    def __init__(self, sink: MailSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self._sink._receive(
            bytes(envelope.content),
            envelope.mail_from,
            list(envelope.rcpt_tos),
            smtputf8=bool(envelope.smtp_utf8),
        )
        return "250 Message accepted for delivery"


class MailSink:
    """An SMTP server on `host:port` that keeps every message in `messages` (and `maildir`)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 1025, maildir: Path | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.maildir = maildir
        self.messages: list[EmailMessage] = []
        # aiosmtpd runs its own event loop in a thread; readers take snapshots under the lock.
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> MailSink:
        if self.maildir is not None:
            self.maildir.mkdir(parents=True, exist_ok=True)
        # SMTPUTF8 so internationalised addresses are accepted like a modern MTA would.
        controller = Controller(
            _SinkHandler(self), hostname=self.host, port=self.port, enable_SMTPUTF8=True
        )
        controller.start()
        self._controller = controller
        log.info(
            "mail sink listening", host=self.host, port=self.port, maildir=str(self.maildir or "")
        )
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def received(self) -> list[EmailMessage]:
        """A snapshot of the messages so far (safe while the server thread appends)."""
        with self._lock:
            return list(self.messages)

    def messages_to(self, address: str) -> list[EmailMessage]:
        """Messages whose To header names `address` (case-insensitive)."""
        wanted = address.lower()
        return [
            m
            for m in self.received()
            if any(a.addr_spec.lower() == wanted for a in _addresses(m, "To"))
        ]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def _receive(
        self, raw: bytes, mail_from: str, rcpt_tos: list[str], *, smtputf8: bool = False
    ) -> None:
        # Wire format is CRLF; the in-memory copy uses Python's \n so bodies compare simply.
        message = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        if smtputf8:
            _read_utf8_headers(message)
        with self._lock:
            self.messages.append(message)
        path = self._write(raw) if self.maildir is not None else None
        log.info(
            "mail received",
            mail_from=mail_from,
            to=rcpt_tos,
            subject=str(message.get("Subject", "")),
            file=str(path) if path else None,
        )

    def _write(self, raw: bytes) -> Path:
        assert self.maildir is not None
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        target = self.maildir / name
        # Write then rename so a reader never sees half a message.
        partial = self.maildir / f".{name}.tmp"
        partial.write_bytes(raw)
        partial.replace(target)
        return target


def _read_utf8_headers(message: EmailMessage) -> None:
    """Headers of an SMTPUTF8 message are UTF-8 (RFC 6532). The bytes parser keeps their
    non-ASCII bytes as surrogate escapes (`j\\udcc3\\udcbcrgen@…`); store them decoded, in
    their order, so `To` reads `jürgen@…` and `messages_to` finds it. Bodies are untouched."""
    items = list(message.raw_items())
    for name in {name for name, _ in items}:
        del message[name]
    for name, value in items:
        text = str(value)
        with contextlib.suppress(UnicodeError):  # not UTF-8 after all: keep the parser's text
            text = text.encode("utf-8", "surrogateescape").decode("utf-8")
        message.set_raw(name, text)


def _addresses(message: EmailMessage, header: str) -> list[Any]:
    value = message.get(header)
    return list(getattr(value, "addresses", ()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local SMTP sink for development.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--maildir", type=Path, default=None, help="write each message as .eml")
    args = parser.parse_args(argv)

    from shared.logging import configure_logging

    # LOG_LEVEL=WARNING (the benchmark) keeps a line per received mail off its cores.
    configure_logging("mailsink", level=os.environ.get("LOG_LEVEL", "INFO"))
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    # The supervisor stops us with SIGTERM; close the listener cleanly either way.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with MailSink(args.host, args.port, args.maildir):
        stopping.wait()
    log.info("mail sink stopped")


if __name__ == "__main__":
    main()
