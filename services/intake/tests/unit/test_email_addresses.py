"""The sender of inbound mail: internal domains and SMTPUTF8 (RFC 6531/6532) addresses.

The field cases go through `parse_email` here; tests/e2e/test_addresses_and_links.py sends
them over SMTP and the raw-MIME hook into a running intake.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from pathlib import Path

import pytest

from services.intake.config import EmailLimits
from services.intake.domain.email.parsing import InboundEmail, Refusal, parse_email

FIELD_CASES = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "field_cases"
LIMITS = EmailLimits()


def _parse(raw: bytes, envelope_sender: str | None = None) -> InboundEmail:
    parsed = parse_email(raw, envelope_sender=envelope_sender, limits=LIMITS)
    assert isinstance(parsed, InboundEmail), parsed
    return parsed


def test_field_case_sender_on_a_dot_local_domain_is_a_reporter() -> None:
    raw = (FIELD_CASES / "sender-dot-local.eml").read_bytes()
    for envelope_sender in (None, "priya.nair@corp.local"):
        parsed = _parse(raw, envelope_sender)
        assert parsed.sender_address == "priya.nair@corp.local"
        assert parsed.sender_name == "Priya Nair"


def test_field_case_smtputf8_sender_is_read_exactly() -> None:
    raw = (FIELD_CASES / "smtputf8-sender.eml").read_bytes()
    # Over SMTP (MAIL FROM given, as aiosmtpd decodes it) and over the hook (none).
    for envelope_sender in ("jürgen.groß@example.com", None):
        parsed = _parse(raw, envelope_sender)
        assert parsed.sender_address == "jürgen.groß@example.com"
        assert parsed.sender_name == "Jürgen Groß"
        assert "\ufffd" not in parsed.sender_address + parsed.sender_name


def _message(sender: str, *, utf8: bool) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "hr@example.com"
    message["Subject"] = "Leave balance"
    message["Message-ID"] = "<addr-test@example.com>"
    message.set_content("My leave balance is wrong.\n")
    return message.as_bytes(policy=SMTPUTF8 if utf8 else SMTP)


@pytest.mark.parametrize(
    ("sender", "address"),
    [
        ("Priya Nair <priya.nair@corp.local>", "priya.nair@corp.local"),
        ("ops@hr.internal", "ops@hr.internal"),
        ("Dev Desk <dev@office.lan>", "dev@office.lan"),
        ("Marie <marie@bücher.de>", "marie@bücher.de"),
        ("marie@xn--bcher-kva.de", "marie@bücher.de"),
        ("Jürgen Groß <jürgen.groß@example.com>", "jürgen.groß@example.com"),
        ("José <josé@corp.local>", "josé@corp.local"),
        ("Ελένη <ελένη@παράδειγμα.gr>", "ελένη@παράδειγμα.gr"),
        ("用户 <用户@例子.internal>", "用户@例子.internal"),
    ],
)
def test_internal_and_international_senders_in_raw_utf8_headers(sender: str, address: str) -> None:
    parsed = _parse(_message(sender, utf8=True), envelope_sender=None)
    assert parsed.sender_address == address


@pytest.mark.parametrize(
    "sender",
    ["pat@localhost", "pat@example.invalid", "pat@mailhost", "pat@[10.0.0.1]", "@corp.local"],
)
def test_senders_that_are_still_not_addresses_are_refused(sender: str) -> None:
    parsed = parse_email(_message(sender, utf8=False), envelope_sender=None, limits=LIMITS)
    assert isinstance(parsed, Refusal)
    assert (parsed.code, parsed.status) == (550, "5.1.7")


def test_legacy_8bit_sender_bytes_are_read_as_mail_readers_do() -> None:
    """A From header in raw latin-1 bytes (no SMTPUTF8) is read as windows-1252, as every
    mail reader does, never stored as `j\ufffdrgen.gro\ufffd@…`."""
    raw = (FIELD_CASES / "smtputf8-sender.eml").read_bytes()
    latin1 = raw.replace("jürgen.groß@".encode(), "jürgen.groß@".encode("latin-1"))
    parsed = _parse(latin1, None)
    assert parsed.sender_address == "jürgen.groß@example.com"
    assert "\ufffd" not in parsed.sender_name
