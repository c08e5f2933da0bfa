"""What build_email and Templates keep between mails (parsed headers, header classes,
compiled templates) changes no byte of any mail: each one is compared with the same mail
built the plain way (a fresh EmailMessage, every header parsed from its text; a fresh
Jinja environment), interleaving senders, recipients and templates in one process so a
cache that served another mail's value would show."""

from __future__ import annotations

import itertools
import re
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from aiosmtplib.email import flatten_message
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.notifications.domain import notices as domain

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SENDERS = [
    "HR Case Desk <hr-desk@hr.example.org>",
    "Personalabteilung Müller-Lüdenscheidt <personal@bücher.de>",
    "noreply@hrcase.local",
]
RECIPIENTS = [
    "anna.smith@example.com",
    "Anna.Smith@Example.com",
    "marie@bücher.de",
    "jürgen.groß@example.com",
    "pat@mailhost.internal",
]
SUBJECTS = [
    "[HR-2026-000123] Case assigned to you (priority high)",
    "[HR-2026-000124] Ihre Meldung ist eingegangen \u2013 Übersicht für Jürgen Groß",
    "[HR-2026-000125] " + "a rather long subject that has to be folded " * 3,
]
BODIES = [
    "Hello,\n\nA case was assigned to you.\n\nhttps://hr.example.org/portal/cases/x\n",
    "Grüße aus der Personalabteilung.\nÄnderungen sehen Sie im Portal.\n",
    "x" * 1200 + "\n",  # longer than any line limit: a transfer encoding is chosen
    ".a line that starts with a dot\r\nand a CRLF\n",
]
ATTACHMENTS = [
    (),
    (
        domain.Attachment(
            filename="conference.ics",
            subtype="calendar",
            text="BEGIN:VCALENDAR\r\nSUMMARY:Konferenz \u2013 Raum Ü1\r\nEND:VCALENDAR\r\n",
            params=(("method", "REQUEST"),),
        ),
    ),
]


def plain_build(n: domain.Notification, *, mail_from: str, date: datetime) -> EmailMessage:
    """build_email as it was before anything was kept: every header parsed from scratch."""
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = domain.recipient_address(n.recipient_email)
    message["Subject"] = n.subject
    message["Date"] = format_datetime(date.astimezone(UTC))
    message["Message-ID"] = n.message_id
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(n.body, subtype="plain", charset="utf-8")
    for a in n.attachments:
        message.add_attachment(
            a.text, subtype=a.subtype, charset="utf-8", filename=a.filename, params=dict(a.params)
        )
    return message


def notification(
    recipient: str, subject: str, body: str, attachments: tuple[domain.Attachment, ...]
) -> domain.Notification:
    nid = uuid.uuid4()
    return domain.Notification(
        notification_id=nid,
        source_event_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        audience="owner",
        template="case_assigned",
        recipient_id="e-1",
        recipient_email=recipient,
        subject=subject,
        body=body,
        message_id=f"<{nid}@hr.example.org>",
        attachments=attachments,
    )


# The generator picks a random multipart boundary per flattening.
BOUNDARY = re.compile(rb"={15}\d+==")


def wire_forms(message: EmailMessage) -> list[bytes]:
    """The bytes a relay gets (aiosmtplib, with and without SMTPUTF8) and as_bytes(), the
    multipart boundary aside."""
    forms = [message.as_bytes(), flatten_message(message, utf8=True)]
    try:
        forms.append(flatten_message(message, utf8=False))
    except UnicodeEncodeError as exc:  # a non-ASCII local part needs SMTPUTF8
        forms.append(repr(exc).encode())
    return [BOUNDARY.sub(b"<boundary>", form) for form in forms]


def test_every_mail_is_byte_for_byte_the_plainly_built_one() -> None:
    domain.forget_addresses()
    combinations = itertools.product(SENDERS, RECIPIENTS, SUBJECTS, BODIES, ATTACHMENTS)
    for count, (sender, recipient, subject, body, attachments) in enumerate(combinations):
        n = notification(recipient, subject, body, attachments)
        date = NOW + timedelta(seconds=count)

        built = domain.build_email(n, mail_from=sender, date=date)

        assert wire_forms(built) == wire_forms(plain_build(n, mail_from=sender, date=date))
        assert built["From"] == sender
        assert [a.addr_spec for a in built["To"].addresses] == [
            str(domain.recipient_address(recipient))
        ]


def test_a_kept_header_is_folded_the_same_every_time() -> None:
    sender = SENDERS[1]
    n = notification(RECIPIENTS[3], SUBJECTS[1], BODIES[1], ())
    first = wire_forms(domain.build_email(n, mail_from=sender, date=NOW))
    for _ in range(3):
        assert wire_forms(domain.build_email(n, mail_from=sender, date=NOW)) == first


def test_kept_headers_refuse_what_a_parsed_one_refuses() -> None:
    n = notification(RECIPIENTS[0], SUBJECTS[0], BODIES[0], ())
    with pytest.raises(ValueError, match="linefeed"):
        domain.build_email(n, mail_from="HR <hr@example.org>\r\nBcc: x@example.org", date=NOW)
    with pytest.raises(domain.UnsendableAddress):
        unsendable = notification("not an address", "s", "b", ())
        domain.build_email(unsendable, mail_from="a@b.c", date=NOW)


def test_forgetting_addresses_keeps_no_parsed_header() -> None:
    domain.build_email(notification(RECIPIENTS[0], "s", "b\n", ()), mail_from=SENDERS[0], date=NOW)
    domain.forget_addresses()
    assert domain._to_header.cache_info().currsize == 0
    assert domain._header.cache_info().currsize == 0


def fresh_render(directory: Path, name: str, context: dict[str, str]) -> tuple[str, str]:
    """`name` rendered by a new Jinja environment (nothing kept from any earlier mail)."""
    env = Environment(
        loader=FileSystemLoader(directory),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    subject = env.get_template(f"{name}.subject.j2").render(context).strip()
    return subject, env.get_template(f"{name}.body.j2").render(context)


def test_each_template_renders_its_own_text_with_each_context(tmp_path: Path) -> None:
    (tmp_path / "first.subject.j2").write_text("[{{ reference }}] first\n")
    (tmp_path / "first.body.j2").write_text("First for {{ name }}.\n")
    (tmp_path / "second.subject.j2").write_text("[{{ reference }}] zweite Nachricht\n")
    (tmp_path / "second.body.j2").write_text("{% if name %}Hallo {{ name }}{% endif %}\n")
    templates = domain.load_templates(tmp_path)
    contexts = [{"reference": "HR-1", "name": "Anna"}, {"reference": "HR-2", "name": "Jürgen"}]

    for name, context in [*itertools.product(["first", "second"], contexts)] * 2:
        assert templates.render(name, context) == fresh_render(tmp_path, name, context)
    assert templates.render("second", contexts[1]) == (
        "[HR-2] zweite Nachricht",
        "Hallo Jürgen",
    )


def test_the_service_templates_render_as_a_fresh_environment_does() -> None:
    kept = domain.load_templates()
    context = {
        "reference": "HR-2026-000001",
        "priority": "high",
        "sensitivity": "normal",
        "category": "conduct",
        "first_response_due": "Mon 23 Nov 2026, 09:00 UTC",
        "case_url": "https://hr.example.org/portal/cases/1",
    }
    for _ in range(2):
        for name in ("case_received", "case_assigned", "sla_warning"):
            full = {**context, "clock": "resolution", "due_at": "Tue 24 Nov 2026, 17:00 UTC"}
            assert kept.render(name, full) == fresh_render(domain.TEMPLATES_DIR, name, full)
