"""Bytes to text the way mail readers do: WHATWG labels, legacy supersets, no lost bytes.

The label map is the WHATWG Encoding Standard's (the `webencodings` package): every label
browsers know, each meaning the superset that mail in the wild really uses (`iso-8859-1`,
`latin1` and `us-ascii` mean windows-1252; `iso-8859-8-i` is `iso-8859-8`; `gb2312` is GBK,
decoded with the GB18030 superset; `euc-kr` is windows-949; `shift_jis` is windows-31J).
A byte-order mark wins over the label, as the standard says.

When the label is unknown, missing, or the bytes are not valid in the labelled charset (the
common "utf-8" label on windows-1252 text), we try UTF-8 and then windows-1252. The WHATWG
windows-1252 maps every byte (its five unassigned bytes to the C1 code points), so decoding
never fails, never deletes a character and never invents U+FFFD for bytes that had one.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
from functools import lru_cache

import webencodings

# WHATWG encoding name -> the Python codec that decodes it. Python's own codec where it is
# the same (or a superset); the standard's "replacement" encoding (which turns a whole
# ISO-2022-KR/CN or HZ text into one U+FFFD, a browser defence against script injection)
# is decoded with the real codec where Python has one: mail text is never rendered as HTML.
_CODEC_OVERRIDES = {
    "gbk": "gb18030",  # the standard's GBK decoder is the GB18030 decoder
    "windows-1252": "cp1252",
}
_REPLACEMENT_LABELS = {
    "csiso2022kr": "iso2022_kr",
    "iso-2022-kr": "iso2022_kr",
    "hz-gb-2312": "hz",
}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.I
)


def _c1_passthrough(error: UnicodeError) -> tuple[str, int]:
    """windows-1252's five unassigned bytes decode to the C1 code point of the same value."""
    assert isinstance(error, UnicodeDecodeError)
    byte = error.object[error.start]
    return chr(byte), error.start + 1


codecs.register_error("hrcase-whatwg-windows-1252", _c1_passthrough)


@lru_cache(maxsize=512)
def codec_for(label: str | None) -> str | None:
    """The Python codec for a charset label, per the WHATWG label map; None if unknown.

    `label`: as found in a Content-Type parameter or an encoded-word (case and surrounding
    whitespace do not matter; an RFC 2231 `*language` suffix is ignored).
    """
    if not label:
        return None
    cleaned = label.strip().strip("\"'").partition("*")[0].strip().lower()
    if cleaned in _REPLACEMENT_LABELS:
        return _REPLACEMENT_LABELS[cleaned]
    encoding = webencodings.lookup(cleaned)
    if encoding is None or encoding.name == "replacement":
        return None
    if encoding.name in _CODEC_OVERRIDES:
        return _CODEC_OVERRIDES[encoding.name]
    if encoding.name == "x-user-defined":
        return "x-user-defined"
    return str(encoding.codec_info.name)


def _strict(data: bytes, codec: str) -> str | None:
    try:
        if codec == "x-user-defined":
            return str(webencodings.decode(data, "x-user-defined", errors="strict")[0])
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def windows_1252(data: bytes) -> str:
    """The WHATWG windows-1252 decoder: total, one character per byte."""
    return data.decode("cp1252", errors="hrcase-whatwg-windows-1252")


def decode_bytes(data: bytes, label: str | None) -> str:
    """Text of `data` labelled `label` (None: unlabelled). Never raises, never drops a byte.

    Order: a byte-order mark; the label's WHATWG encoding (strict); UTF-8 (strict);
    windows-1252 (total).
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            text = _strict(data[len(bom) :], codec)
            if text is not None:
                return text
    labelled = codec_for(label)
    if labelled is not None:
        text = _strict(data, labelled)
        if text is not None:
            return text
    text = _strict(data, "utf-8")
    if text is not None:
        return text
    return windows_1252(data)


def html_charset(data: bytes) -> str | None:
    """The charset an HTML document declares in a <meta> tag (first 1024 bytes), if any."""
    found = _META_CHARSET.search(data[:1024])
    return found.group(1).decode("ascii") if found else None


def surrogate_bytes(value: str) -> bytes:
    """The raw bytes behind a str the email parser decoded with `surrogateescape`."""
    return value.encode("utf-8", "surrogateescape")


def has_surrogates(value: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in value)


# An RFC 2047 encoded-word: =?charset[*language]?B|Q?payload?=
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,75})\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)[ \t\r\n]+(?==\?)")


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    try:
        if encoding in "bB":
            data = payload.encode("ascii", "surrogateescape")
            return base64.b64decode(data + b"=" * (-len(data) % 4), validate=False)
        return quopri.decodestring(payload.replace("_", " ").encode("ascii", "surrogateescape"))
    except (ValueError, binascii.Error):
        return None


def _decoded_word(match: re.Match[str]) -> str | None:
    data = _word_bytes(match.group(2), match.group(3))
    return None if data is None else decode_bytes(data, match.group(1))


def raw_header_text(value: str) -> str:
    """A header value as parsed from bytes, with raw 8-bit bytes decoded (UTF-8, else
    windows-1252) instead of left as surrogate escapes."""
    if not has_surrogates(value):
        return value
    return decode_bytes(surrogate_bytes(value), None)


def transcode_encoded_words(value: str) -> str:
    """`value` with every encoded-word re-encoded as UTF-8, and raw 8-bit bytes decoded.

    The structure stays what it was (an encoded-word is still an encoded-word, so a display
    name can never gain an address), but the standard library, which only knows Python's
    codec names, now decodes each word as `decode_bytes` says.
    """

    def utf8_word(match: re.Match[str]) -> str:
        text = _decoded_word(match)
        if text is None:
            return match.group(0)
        return (
            "=?utf-8?b?" + base64.b64encode(text.encode("utf-8", "surrogatepass")).decode() + "?="
        )

    return _ENCODED_WORD.sub(utf8_word, raw_header_text(value))


def decode_header_text(value: str) -> str:
    """Unstructured header text: encoded-words decoded (whitespace between adjacent words
    dropped, as RFC 2047 says), raw 8-bit bytes decoded. Never raises."""
    text = _BETWEEN_WORDS.sub(r"\1", raw_header_text(value))

    def plain(match: re.Match[str]) -> str:
        decoded = _decoded_word(match)
        return match.group(0) if decoded is None else decoded

    return _ENCODED_WORD.sub(plain, text)
