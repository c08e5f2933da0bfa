"""The development mail sink is a real SMTP server: deliver to it with a real client."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

from hrcase.mailsink import MailSink
from tests.support.infra import ROOT, free_port


def _message(to: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "sender@example.com"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Grüße — body\n", charset="utf-8")
    return message


def test_sink_keeps_messages_and_writes_eml_files(tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    port = free_port()
    with MailSink(port=port, maildir=maildir) as sink:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            client.send_message(_message("a@example.com", "First"))
            client.send_message(_message("b@example.com", "Sécond"))

        # smtplib returns once the server replied 250, which happens after the sink stored it.
        assert [str(m["Subject"]) for m in sink.received()] == ["First", "Sécond"]
        [to_b] = sink.messages_to("B@example.com")
        assert to_b.get_content() == "Grüße — body\n"
        files = sorted(maildir.glob("*.eml"))
        assert len(files) == 2
        assert not list(maildir.glob(".*.tmp"))
        assert any(b"Subject: First" in f.read_bytes() for f in files)

    # Stopped: the port is free again.
    started = time.monotonic()
    sink = MailSink(port=port).start()
    sink.stop()
    assert time.monotonic() - started < 5


def test_standalone_entry_point_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hrcase.mailsink", "--port", str(port), "--maildir", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client = smtplib.SMTP("127.0.0.1", port, timeout=5)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "sink did not start"
                time.sleep(0.05)
        with client:
            client.send_message(_message("c@example.com", "Standalone"))
        assert len(list(tmp_path.glob("*.eml"))) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert b"Standalone" in output


def test_sink_takes_smtputf8_mail_and_reads_its_utf8_headers() -> None:
    address = "jürgen.groß@example.com"
    message = _message(address, "Grüße [HR-2026-000001]")
    with MailSink(port=free_port()) as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as client:
            client.ehlo()
            assert client.has_extn("smtputf8")
            # smtplib sends MAIL FROM ... SMTPUTF8 and the raw UTF-8 headers (RFC 6531/6532).
            client.send_message(message, mail_options=["SMTPUTF8"])

        [received] = sink.messages_to(address)
    assert str(received["To"]) == address
    assert str(received["Subject"]) == "Grüße [HR-2026-000001]"
    assert received.get_content() == "Grüße — body\n"
