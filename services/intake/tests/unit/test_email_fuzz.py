"""Property test: no input makes the email parser raise; what it returns is safe to store.

Random bytes, random header/body combinations (encoded-words, CR/LF, NULs, bad charsets and
transfer encodings) and random MIME trees, deep or broken, all end as a parsed message or a
refusal with a reason, never an exception.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake.config import EmailLimits
from services.intake.domain.email.parsing import InboundEmail, Refusal, parse_email

LIMITS = EmailLimits(max_message_bytes=64 * 1024, max_parts=20, max_depth=5)
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HEADER_NAMES = [
    "From", "To", "Subject", "Message-ID", "In-Reply-To", "References", "Content-Type",
    "Content-Transfer-Encoding", "Content-Disposition", "Auto-Submitted", "Precedence",
    "Return-Path", "X-Autoreply", "MIME-Version", "Reply-To", "Date",
]  # fmt: skip
TRICKY = [
    "=?utf-8?b?U2FtDQpCY2M6IGV2aWw=?=", "=?x-unknown?q?caf=E9?=", "=?utf-8?q?=00=0D=0A?=",
    "=?utf-8?b?!!!?=", "<>", "<a@b>", "a@b.com", '"Sam" <sam@example.com>', "@", "<<<>>>",
    "multipart/mixed; boundary=x", "multipart/report; report-type=delivery-status",
    "text/plain; charset=base64", "text/html; charset=x-klingon", "message/rfc822",
    "base64", "quoted-printable", "x-uuencode", "attachment; filename*=utf-8''%FF%FE.pdf",
    "HR-2026-000001", "\u2028", "\ud800",
]  # fmt: skip
header_values = st.one_of(st.sampled_from(TRICKY), st.text(max_size=80))
headers = st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_values), max_size=12)
charsets = st.sampled_from(["utf-8", "latin-1", "x-klingon", "utf-7", "base64", "rot13", ""])
encodings = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-junk", ""])


def leaf() -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda ctype, charset, cte, body: (
            (
                f"Content-Type: {ctype}; charset={charset}\r\n"
                f"Content-Transfer-Encoding: {cte}\r\n\r\n"
            ).encode()
            + body
        ),
        st.sampled_from(["text/plain", "text/html", "application/pdf", "image/png", "text/x"]),
        charsets,
        encodings,
        st.binary(max_size=300),
    )


def multipart(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    def build(subtype: str, boundary: str, parts: list[bytes], closed: bool) -> bytes:
        b = boundary.encode()
        body = b"".join(b"--" + b + b"\r\n" + part + b"\r\n" for part in parts)
        return (
            f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
            + body
            + (b"--" + b + b"--\r\n" if closed else b"")
        )

    return st.builds(
        build,
        st.sampled_from(["mixed", "alternative", "related", "report"]),
        st.sampled_from(["b1", "b2", "x", "=_", "b1"]),  # repeated boundaries on purpose
        st.lists(children, max_size=5),
        st.booleans(),
    )


mime_trees = st.recursive(leaf(), multipart, max_leaves=25)


def assert_safe(result: InboundEmail | Refusal) -> None:
    assert isinstance(result, InboundEmail | Refusal)
    if isinstance(result, Refusal):
        assert result.reason and 400 <= result.code < 600
        return
    for text in (result.subject, result.sender_name, result.sender_address, result.message_id):
        assert "\r" not in text and "\n" not in text and "\x00" not in text
    for text in (result.body, *(a.filename for a in result.attachments)):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogates: Postgres must accept it
    assert len(result.subject) <= 200


@FUZZ
@given(st.binary(max_size=4000), st.sampled_from([None, "<>", "sam@example.com", "junk"]))
def test_random_bytes_never_crash_the_parser(raw: bytes, sender: str | None) -> None:
    assert_safe(parse_email(raw, envelope_sender=sender, limits=LIMITS))


@FUZZ
@given(headers, st.one_of(mime_trees, st.binary(max_size=500)))
def test_random_headers_and_mime_trees_never_crash_the_parser(
    header_list: list[tuple[str, str]], body: bytes
) -> None:
    head = b"".join(
        name.encode() + b": " + value.encode("utf-8", "surrogatepass") + b"\r\n"
        for name, value in header_list
    )
    raw = b"From: sam@example.com\r\n" + head + body
    assert_safe(parse_email(raw, envelope_sender="sam@example.com", limits=LIMITS))


# Depths past Python's recursion limit are in test_email_parsing (one example is enough).
@settings(max_examples=40, deadline=None)
@given(st.integers(0, 40), st.booleans())
def test_deep_nesting_is_refused_or_parsed(depth: int, rfc822: bool) -> None:
    part = b"Content-Type: text/plain\r\n\r\nhello\r\n"
    for level in range(depth):
        if rfc822:
            part = b"Content-Type: message/rfc822\r\n\r\n" + part
        else:
            b = b"z%d" % level
            part = (
                b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n"
                + part + b"\r\n--" + b + b"--\r\n"
            )  # fmt: skip
    raw = b"From: sam@example.com\r\nSubject: deep\r\n" + part
    result = parse_email(raw, envelope_sender=None, limits=EmailLimits(max_depth=5))
    assert_safe(result)
    if depth > 5:
        assert isinstance(result, Refusal)
