"""The pure email parser and classifier: what becomes a case, what is refused or dropped."""

from __future__ import annotations

import uuid
from email.message import EmailMessage

import pytest

from services.intake.config import EmailLimits
from services.intake.domain.email.html import html_to_text
from services.intake.domain.email.parsing import (
    NO_SUBJECT,
    InboundEmail,
    Refusal,
    clean_line,
    parse_email,
)
from services.intake.domain.email.threads import (
    KnownCase,
    acknowledgement_message_ids,
    choose_case,
    email_actor,
    email_employee_id,
)

LIMITS = EmailLimits()


def mail(**headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = headers.pop("From", "Sam Rivera <Sam.Rivera@Example.com>")
    message["To"] = "hr@example.com"
    message["Subject"] = headers.pop("Subject", "Overtime missing from payslip")
    message["Message-ID"] = headers.pop("Message_ID", "<abc-1@example.com>")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("My overtime for October is missing.\n")
    return message


def parse(raw: bytes | EmailMessage, sender: str | None = "sam.rivera@example.com", **limits):
    data = raw.as_bytes() if isinstance(raw, EmailMessage) else raw
    return parse_email(data, envelope_sender=sender, limits=EmailLimits(**limits))


def parsed(raw: bytes | EmailMessage, **kwargs) -> InboundEmail:
    result = parse(raw, **kwargs)
    assert isinstance(result, InboundEmail), result
    return result


def test_a_plain_message_becomes_subject_body_and_sender() -> None:
    email = parsed(mail())
    assert email.subject == "Overtime missing from payslip"
    assert email.body == "My overtime for October is missing."
    assert email.sender_address == "sam.rivera@example.com"
    assert email.sender_name == "Sam Rivera"
    assert email.message_id == "<abc-1@example.com>"
    assert email.automatic_reason is None
    assert email.attachments == ()


def test_plain_text_is_preferred_and_html_only_mail_is_converted_safely() -> None:
    both = mail()
    both.add_alternative("<p>HTML <b>version</b></p>", subtype="html")
    assert parsed(both).body == "My overtime for October is missing."

    html_only = EmailMessage()
    html_only["From"] = "sam@example.com"
    html_only["Subject"] = "html"
    html_only.set_content(
        "<html><head><style>p{color:red}</style><script>alert(1)</script></head>"
        "<body><p>Line one &amp; more</p><ul><li>first</li><li>second</li></ul></body></html>",
        subtype="html",
    )
    body = parsed(html_only).body
    assert body == "Line one & more\n\n- first\n\n- second"
    assert "alert" not in body and "color" not in body


def test_html_to_text_survives_broken_markup() -> None:
    assert html_to_text("<div>unclosed <b>bold <i>x</div></p></p>") == "unclosed bold x"
    assert html_to_text("<script>never closed") == ""
    assert html_to_text("a<br>b<br/>c") == "a\nb\nc"


def test_attachments_keep_name_type_and_bytes_and_paths_are_stripped() -> None:
    message = mail()
    message.add_attachment(b"%PDF-1.4 data", maintype="application", subtype="pdf",
                           filename="../../etc/contract.pdf")  # fmt: skip
    message.add_attachment(b"\x89PNG", maintype="image", subtype="png")
    email = parsed(message)
    assert [(a.filename, a.content_type, a.content) for a in email.attachments] == [
        ("contract.pdf", "application/pdf", b"%PDF-1.4 data"),
        ("attachment-2.png", "image/png", b"\x89PNG"),
    ]
    assert email.body == "My overtime for October is missing."


def test_a_forwarded_email_is_kept_as_an_attachment() -> None:
    inner = mail(Subject="From my manager", Message_ID="<inner@example.com>")
    outer = mail()
    outer.add_attachment(inner)
    email = parsed(outer)
    assert len(email.attachments) == 1
    assert email.attachments[0].content_type == "message/rfc822"
    assert b"From my manager" in email.attachments[0].content


def test_replies_carry_thread_ids_and_subject_references() -> None:
    reply = mail(
        Subject="Re: [HR-2026-000123] We have received your case",
        In_Reply_To="<ack-1@hr.example.org>",
        References="<first@example.com> <ack-1@hr.example.org> <ack-2@hr.example.org>",
    )
    email = parsed(reply)
    assert email.subject_references == ("HR-2026-000123",)
    assert email.thread_ids == (
        "<ack-1@hr.example.org>",
        "<ack-2@hr.example.org>",
        "<first@example.com>",
    )


@pytest.mark.parametrize(
    ("headers", "sender", "reason"),
    [
        ({"Auto_Submitted": "auto-replied"}, "sam@example.com", "auto-submitted: auto-replied"),
        ({"Precedence": "bulk"}, "sam@example.com", "precedence: bulk"),
        ({"Precedence": "auto_reply"}, "sam@example.com", "precedence: auto_reply"),
        ({"X_Autoreply": "yes"}, "sam@example.com", "x-autoreply"),
        ({}, "<>", "empty return path"),
        ({"From": "MAILER-DAEMON@mx.example.com"}, "bounces@example.com", "mailer daemon"),
    ],
)
def test_auto_replies_and_bounces_are_marked_automatic(headers, sender, reason) -> None:
    assert parsed(mail(**headers), sender=sender).automatic_reason == reason


def test_auto_submitted_no_is_a_person() -> None:
    assert parsed(mail(Auto_Submitted="no")).automatic_reason is None


def test_a_delivery_status_report_is_automatic() -> None:
    raw = (
        b"From: Mail Delivery System <bounce@mx.example.com>\r\n"
        b"Subject: Undelivered Mail\r\nMessage-ID: <dsn@mx>\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.0.0\r\n--b--\r\n"
    )
    assert parsed(raw, sender="bounce@mx.example.com").automatic_reason == (
        "delivery or disposition report"
    )


def test_http_hook_sees_an_empty_return_path_header() -> None:
    message = mail(Return_Path="<>")
    assert parsed(message, sender=None).automatic_reason == "empty return path"


def test_oversize_message_and_attachment_are_refused_with_552() -> None:
    big = parse(mail(), max_message_bytes=100)
    assert isinstance(big, Refusal) and big.code == 552
    message = mail()
    message.add_attachment(b"x" * 2000, maintype="application", subtype="octet-stream")
    refused = parse(message, max_attachment_bytes=1000)
    assert isinstance(refused, Refusal) and refused.code == 552
    assert "attachment" in refused.reason


def nested(depth: int) -> bytes:
    part = b"Content-Type: text/plain\r\n\r\nhello\r\n"
    for level in range(depth):
        boundary = b"b%d" % level
        part = (
            b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n--" + boundary
            + b"\r\n" + part + b"\r\n--" + boundary + b"--\r\n"
        )  # fmt: skip
    return b"From: sam@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n" + part


def test_deep_nesting_and_too_many_parts_are_refused_not_crashed() -> None:
    assert isinstance(parse(nested(5)), InboundEmail)
    for depth in (11, 3000):  # 3000 exceeds Python's own recursion limit while parsing
        refused = parse(nested(depth))
        assert isinstance(refused, Refusal) and refused.code == 554, depth
    many = mail()
    for index in range(5):
        many.add_attachment(b"x", maintype="application", subtype="octet-stream",
                            filename=f"{index}.bin")  # fmt: skip
    refused = parse(many, max_parts=4)
    assert isinstance(refused, Refusal) and "Too many MIME parts" in refused.reason


def test_header_injection_in_encoded_words_is_flattened() -> None:
    raw = (
        b"From: =?utf-8?b?U2FtDQpCY2M6IGV2aWxAZXhhbXBsZS5jb20=?= <sam@example.com>\r\n"
        b"Subject: =?utf-8?q?Help=0D=0ABcc:_evil@example.com=00?=\r\n"
        b"Message-ID: <inj@example.com>\r\n\r\nbody\r\n"
    )
    email = parsed(raw)
    assert email.subject == "Help Bcc: evil@example.com"
    assert "\r" not in email.sender_name and "\n" not in email.sender_name
    assert email.sender_address == "sam@example.com"


def test_unknown_charsets_try_utf8_then_windows_1252_and_keep_every_byte() -> None:
    # Issue 8: unknown labels are no longer U+FFFD; not UTF-8, so windows-1252.
    raw = (
        b"From: sam@example.com\r\nSubject: =?x-unknown?q?caf=E9?=\r\n"
        b"Content-Type: text/plain; charset=x-klingon\r\n\r\ncaf\xe9 \xff\xfe\r\n"
    )
    email = parsed(raw)
    assert email.body == "caf\u00e9 \u00ff\u00fe"
    assert email.subject == "caf\u00e9"
    assert all(not 0xD800 <= ord(c) <= 0xDFFF for c in email.subject + email.body)
    base64_codec = (
        b"From: sam@example.com\r\nContent-Type: text/plain; charset=base64\r\n\r\nhi\r\n"
    )
    assert parsed(base64_codec).body == "hi"


def test_missing_parts_get_safe_defaults() -> None:
    raw = b"From: sam@example.com\r\n\r\n"
    email = parsed(raw)
    assert email.subject == NO_SUBJECT
    assert email.body == "(the email had no text)"
    # No Message-ID: one derived from the bytes, so a redelivery still deduplicates.
    assert email.message_id.endswith("@message-id.hrcase.invalid>")
    assert parsed(raw).message_id == email.message_id


def test_a_message_without_any_valid_sender_is_refused() -> None:
    refused = parse(b"From: not an address\r\nSubject: x\r\n\r\nbody\r\n", sender=None)
    assert isinstance(refused, Refusal) and refused.code == 550
    # The envelope sender stands in for a missing From.
    assert parsed(b"Subject: x\r\n\r\nbody\r\n", sender="sam@example.com").sender_address == (
        "sam@example.com"
    )


def test_long_bodies_are_cut_at_the_limit() -> None:
    message = mail()
    message.set_content("x" * 500)
    assert len(parsed(message, max_body_chars=100).body) < 200


def test_clean_line_removes_every_line_break_and_control() -> None:
    assert clean_line("a\r\nb\u2028c\x00d\x85e\tf") == "a b c d e f"


def test_only_the_reporter_may_continue_a_case() -> None:
    case = KnownCase(case_id=uuid.uuid4(), reference="HR-2026-000001",
                     reporter_email="Sam@Example.com")  # fmt: skip
    anonymous = KnownCase(case.case_id, "HR-2026-000002", None)
    assert choose_case([case], "sam@example.com") is case
    assert choose_case([case], "stranger@example.com") is None
    assert choose_case([anonymous], "sam@example.com") is None


def test_email_identity_is_the_address_and_actor_ids_carry_no_address() -> None:
    assert email_employee_id("sam@example.com") == "email:sam@example.com"
    long = "a" * 60 + "@example.com"
    assert email_employee_id(long).startswith("email:sha256:")
    assert len(email_employee_id(long)) <= 64
    assert "example" not in (email_actor("sam@example.com").id or "")


def test_acknowledgement_ids_are_deterministic() -> None:
    import uuid

    event_id = uuid.uuid4()
    first = acknowledgement_message_ids(event_id, "hr.example.org")
    assert first == acknowledgement_message_ids(event_id, "hr.example.org")
    assert first[0].endswith("@hr.example.org>")
