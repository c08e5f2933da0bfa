# ruff: noqa: RUF001  (typographic quotes and dashes are the point of these tests)
"""Charsets as mail readers decode them: the WHATWG label map, legacy supersets, no lost bytes.

Field cases (issue 8, item 1) plus a property: text encodable in a charset, labelled with any
of that charset's WHATWG labels, comes back unchanged from the body, an RFC 2047 Subject and
an RFC 2231 attachment file name.
"""

from __future__ import annotations

import base64
import urllib.parse
from functools import cache
from pathlib import Path

import pytest
import webencodings
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from webencodings.labels import LABELS

from services.intake.config import EmailLimits
from services.intake.domain.email import charsets
from services.intake.domain.email.parsing import InboundEmail, parse_email

FIELD_CASES = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "field_cases"
LIMITS = EmailLimits()


def parsed(raw: bytes) -> InboundEmail:
    result = parse_email(raw, limits=LIMITS)
    assert isinstance(result, InboundEmail), result
    return result


def test_field_case_iso_8859_8_i_is_readable_hebrew() -> None:
    email = parsed((FIELD_CASES / "charset-iso-8859-8-i.eml").read_bytes())
    assert email.subject == "תלוש שכר"
    assert email.body == "שלום, המשכורת שלי חסרה שעות נוספות"


def test_field_case_latin1_label_means_windows_1252() -> None:
    email = parsed((FIELD_CASES / "charset-latin1-is-cp1252.eml").read_bytes())
    assert email.subject == "Overtime – November"
    assert email.body == "I didn’t get my “overtime” for 12–14 Nov – about €240… please check."
    assert "\ufffd" not in email.subject + email.body


@pytest.mark.parametrize(
    ("label", "data", "text"),
    [
        # The legacy labels and the superset they mean in the wild.
        ("iso-8859-1", b"\x93x\x94 \x80", "“x” €"),
        ("latin1", b"didn\x92t", "didn’t"),
        ("US-ASCII", b"12\x9614", "12–14"),  # us-ascii with 8-bit bytes: windows-1252
        ("ascii", b"caf\xe9", "café"),
        ("iso-8859-8-i", b"\xf9\xec\xe5\xed", "שלום"),
        ("logical", b"\xf9\xec\xe5\xed", "שלום"),
        ("visual", b"\xf9\xec\xe5\xed", "שלום"),
        ("iso-8859-9", b"\x80", "€"),  # windows-1254
        ("tis-620", b"\x80\xa1", "€ก"),  # windows-874
        ("gb2312", "编号𠀀".encode("gb18030"), "编号𠀀"),  # GBK label, GB18030 superset
        ("ks_c_5601-1987", "똠".encode("cp949"), "똠"),  # euc-kr means windows-949
        ("shift_jis", "①".encode("cp932"), "①"),  # windows-31J
        ("iso-2022-kr", "한국".encode("iso2022_kr"), "한국"),  # not the "replacement" text
        # A byte-order mark wins over the label.
        ("iso-8859-1", b"\xef\xbb\xbfcaf\xc3\xa9", "café"),
        ("utf-8", b"\xff\xfec\x00a\x00", "ca"),
        # Wrong or unknown labels: UTF-8, then windows-1252; never U+FFFD, never a lost byte.
        ("utf-8", b"didn\x92t \x81", "didn’t \x81"),
        ("x-klingon", "Grüße".encode(), "Grüße"),
        ("x-klingon", b"Gr\xfc\xdfe", "Grüße"),
        ("", b"\x8d\x8f\x90\x9d", "\x8d\x8f\x90\x9d"),
        (None, b"plain", "plain"),
        ("iso-2022-cn", b"abc", "abc"),
    ],
)
def test_labels_decode_to_the_superset_mail_readers_use(
    label: str | None, data: bytes, text: str
) -> None:
    assert charsets.decode_bytes(data, label) == text


def test_every_whatwg_label_names_a_decoder() -> None:
    # The WHATWG list (228 labels) has no gaps here: only the three ISO-2022-CN /
    # "replacement" labels fall through to UTF-8 then windows-1252 (Python has no codec).
    unknown = {label for label in LABELS if charsets.codec_for(label) is None}
    assert unknown == {"iso-2022-cn", "iso-2022-cn-ext", "replacement"}
    assert len(LABELS) >= 228


def test_headers_and_file_names_decode_everywhere() -> None:
    raw = (
        "From: =?iso-8859-8-i?B?+uzl+SD56/g=?= <noa@example.com>\r\n"
        "Subject: caf\xe9 \x93quoted\x94\r\n"  # raw 8-bit, not UTF-8: windows-1252
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/html\r\n\r\n"
        '<html><head><meta charset="windows-1255"></head><body>\xf9\xec\xe5\xed</body></html>\r\n'
        "--b\r\nContent-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename*=iso-8859-8-i''%F9%EC%E5%ED.txt\r\n\r\nx\r\n"
        '--b\r\nContent-Type: application/pdf; name="=?windows-1252?Q?=93x=94.pdf?="\r\n\r\ny\r\n'
        "--b\r\nContent-Type: application/pdf\r\n"
        'Content-Disposition: attachment; filename="r\xe9sum\xe9.pdf"\r\n\r\nz\r\n'
        "--b\r\nContent-Type: text/plain\r\n"
        "Content-Disposition: attachment;"
        " filename*0*=utf-8''%E2%82; filename*1*=%AC.txt\r\n\r\nw\r\n"
        "--b--\r\n"
    ).encode("latin-1")
    email = parsed(raw)
    assert email.sender_name == "תלוש שכר"
    assert email.subject == "café “quoted”"
    assert email.body == "שלום"
    assert [a.filename for a in email.attachments] == ["שלום.txt", "“x”.pdf", "résumé.pdf", "€.txt"]


def test_raw_utf8_headers_are_utf8() -> None:
    raw = "From: Jörg Müller <joerg@example.com>\r\nSubject: Überstunden – Oktober\r\n\r\nx\r\n"
    email = parsed(raw.encode("utf-8"))
    assert (email.sender_name, email.subject) == ("Jörg Müller", "Überstunden – Oktober")


# --- the property: any WHATWG label of a charset round-trips text encodable in it --------

# Candidate characters: printable letters, digits, punctuation and symbols of the scripts
# the legacy charsets cover (controls are cleaned out of stored text on purpose).
_CANDIDATES = "".join(
    chr(c)
    for block in (
        range(0x20, 0x7F),
        range(0xA0, 0x250),
        range(0x370, 0x530),
        range(0x5D0, 0x5EB),
        range(0x600, 0x660),
        range(0xE01, 0xE5C),
        range(0x2010, 0x2040),
        range(0x20AC, 0x20AD),
        range(0x2460, 0x2474),
        range(0x3041, 0x3097),
        range(0x30A1, 0x30FB),
        range(0x4E00, 0x4F00),
        range(0xAC00, 0xAD00),
    )
    for c in block
    if chr(c).isprintable() and chr(c) not in "/\\"
)
_ENCODINGS = sorted(
    {name for name in LABELS.values() if name not in ("replacement", "x-user-defined")}
)


@cache
def _alphabet(encoding: str) -> str:
    codec = webencodings.lookup(encoding).codec_info  # the standard's own encoder

    def encodable(char: str) -> bool:
        try:
            return bool(codec.decode(codec.encode(char)[0])[0] == char)
        except (UnicodeError, ValueError):
            return False

    return "".join(char for char in _CANDIDATES if encodable(char))


@st.composite
def labelled_text(draw: st.DrawFn) -> tuple[str, str, str]:
    encoding = draw(st.sampled_from(_ENCODINGS))
    label = draw(st.sampled_from(sorted(k for k, v in LABELS.items() if v == encoding)))
    alphabet = _alphabet(encoding)
    text = draw(st.text(alphabet=alphabet, min_size=1, max_size=40))
    return encoding, label, text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labelled_text(), st.sampled_from(["B", "Q"]))
def test_text_labelled_with_any_alias_decodes_back(
    case: tuple[str, str, str], word_encoding: str
) -> None:
    encoding, label, text = case
    words = " ".join(text.split())
    assume(words and words.strip(" .") == words)
    codec = webencodings.lookup(encoding).codec_info
    data = codec.encode(text)[0]
    assert charsets.decode_bytes(data, label) == text

    word = codec.encode(words)[0]
    if word_encoding == "B":
        subject = f"=?{label}?B?{base64.b64encode(word).decode()}?="
    else:
        subject = f"=?{label}?Q?{''.join(f'={b:02X}' for b in word)}?="
    filename = f"{label}''{urllib.parse.quote_from_bytes(codec.encode(words)[0], safe='')}"
    raw = (
        f"From: sam@example.com\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        f'--b\r\nContent-Type: text/plain; charset="{label}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{base64.b64encode(data).decode()}\r\n"
        "--b\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Disposition: attachment; filename*={filename}\r\n\r\nx\r\n--b--\r\n"
    ).encode("ascii")
    email = parsed(raw)
    assert email.subject == words[:200]
    assert email.body == (text.strip() or "(the email had no text)")
    assert email.attachments[0].filename == words[-255:]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.one_of(st.none(), st.sampled_from(sorted(LABELS)), st.text()))
def test_any_bytes_under_any_label_decode_without_loss(data: bytes, label: str | None) -> None:
    text = charsets.decode_bytes(data, label)
    assert not charsets.has_surrogates(text)
    if charsets.codec_for(label) is None and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Unlabelled or unknown: UTF-8 if it is UTF-8, else one character per byte.
        try:
            assert text == data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            assert text == charsets.windows_1252(data) and len(text) == len(data)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_header_decoding_never_raises(value: str) -> None:
    decoded = charsets.decode_header_text(value)
    transcoded = charsets.transcode_encoded_words(value)
    assert isinstance(decoded, str) and isinstance(transcoded, str)
