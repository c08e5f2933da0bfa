"""Outlook winmail.dat (TNEF): its body and files become the case's text and attachments."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from services.intake.config import EmailLimits
from services.intake.domain.email.parsing import InboundEmail, parse_email

SAMPLE = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "tnef" / "umlaut.tnef"


def outlook_mail(text: str = "", tnef: bytes | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = "Jonas Weber <jonas.weber@example.com>"
    message["To"] = "hr@example.com"
    message["Subject"] = "Meine Unterlagen"
    message["Message-ID"] = "<tnef-1@example.com>"
    message.set_content(text)
    message.add_attachment(
        SAMPLE.read_bytes() if tnef is None else tnef,
        maintype="application",
        subtype="ms-tnef",
        filename="winmail.dat",
    )
    return bytes(message)


def parsed(raw: bytes) -> InboundEmail:
    result = parse_email(raw, limits=EmailLimits())
    assert isinstance(result, InboundEmail), result
    return result


def test_the_tnef_body_and_files_are_extracted() -> None:
    email = parsed(outlook_mail())
    assert email.body.startswith("TEST äöü +-*/~")
    files = [(a.filename, a.content_type, len(a.content)) for a in email.attachments]
    assert files == [
        ("TBZ PARIV GmbH.jpg", "image/jpeg", 44764),
        ("image003.jpg", "image/jpeg", 1001),
        ("UmlautAnhang-äüö.txt", "text/plain", 14),
    ]
    assert email.attachments[0].content.startswith(b"\xff\xd8")  # a JPEG, not TNEF
    assert all(a.filename != "winmail.dat" for a in email.attachments)


def test_the_body_is_said_once_when_outlook_also_sends_it_as_text() -> None:
    email = parsed(outlook_mail("TEST äöü +-*/~\n\ncid:image003.jpg@01D2EE6A.85652C70\n"))
    assert email.body.count("TEST äöü") == 1
    other = parsed(outlook_mail("See the attached forms."))
    assert other.body.startswith("See the attached forms.") and "TEST äöü" in other.body


def test_an_unreadable_winmail_dat_is_kept_as_it_came() -> None:
    email = parsed(outlook_mail("hello", tnef=b"not tnef at all"))
    assert [(a.filename, a.content) for a in email.attachments] == [
        ("winmail.dat", b"not tnef at all")
    ]
    truncated = SAMPLE.read_bytes()[:300]
    kept = parsed(outlook_mail("hello", tnef=truncated))
    assert kept.body.startswith("hello")
