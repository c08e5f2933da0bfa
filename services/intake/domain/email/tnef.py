"""Outlook's winmail.dat (TNEF, application/ms-tnef): its body and files, for people to read.

Parsed with `tnefparse`; a compressed RTF body is inflated with `compressed_rtf` and turned
into text with `striprtf`, an HTML body with our HTML-to-text. Pure: bytes in, text and
files out; `None` when the bytes are not TNEF we can read (the caller then keeps the
winmail.dat itself, so nothing is lost).
"""

from __future__ import annotations

import logging
import mimetypes
import re
from dataclasses import dataclass

from striprtf.striprtf import rtf_to_text
from tnefparse import TNEF

from services.intake.domain.email import charsets
from services.intake.domain.email.html import html_to_text

TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
_ANSI_CODEPAGE = re.compile(rb"\\ansicpg(\d{3,5})")

# tnefparse logs every property it does not know at WARNING; that is not our news.
logging.getLogger("tnefparse").setLevel(logging.ERROR)


@dataclass(frozen=True)
class TnefFile:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class TnefContent:
    body: str  # "" when the TNEF carries no body
    files: tuple[TnefFile, ...]


def is_tnef(content_type: str, filename: str) -> bool:
    return content_type in TNEF_TYPES or filename.lower() == "winmail.dat"


def _text(value: str | bytes | None, codepage: str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return charsets.decode_bytes(value.rstrip(b"\x00"), codepage)
    return value.rstrip("\x00")


def _rtf_text(rtf: bytes) -> str:
    found = _ANSI_CODEPAGE.search(rtf[:2000])
    codepage = f"cp{found.group(1).decode()}" if found else "cp1252"
    source = rtf.rstrip(b"\x00").decode("latin-1")  # RTF is 7-bit; \'xx escapes carry bytes
    try:
        return str(rtf_to_text(source, encoding=codepage, errors="strict"))  # type: ignore[no-untyped-call]
    except (UnicodeDecodeError, LookupError):
        return str(rtf_to_text(source, encoding="cp1252", errors="replace"))  # type: ignore[no-untyped-call]


def _body(tnef: TNEF) -> str:
    codepage = tnef.codepage if isinstance(tnef.codepage, str) else None
    if tnef.htmlbody:
        return html_to_text(_text(tnef.htmlbody, codepage))
    if tnef.body:
        return _text(tnef.body, codepage).strip()
    rtf = tnef.rtfbody
    if isinstance(rtf, bytes) and rtf.lstrip().startswith(b"{\\rtf"):
        return _rtf_text(rtf).strip()
    return ""


def _filename(attachment: object, codepage: str | None) -> str:
    try:
        name: str | bytes = attachment.long_filename()  # type: ignore[attr-defined]
    except Exception:  # a name in bytes that are not UTF-8
        name = getattr(attachment, "_name", b"")
    return _text(name, codepage).strip()


def extract(data: bytes) -> TnefContent | None:
    """The body and files inside a winmail.dat, or None if it cannot be read."""
    try:
        tnef = TNEF(data, do_checksum=False)
        body = _body(tnef)
        codepage = tnef.codepage if isinstance(tnef.codepage, str) else None
        files = []
        for attachment in tnef.attachments:
            content = attachment.data if isinstance(attachment.data, bytes) else b""
            name = _filename(attachment, codepage)
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            files.append(TnefFile(name, content_type, content))
    except Exception:  # a damaged or hostile TNEF stream: kept as the file it came as
        return None
    if not body and not files:
        return None
    return TnefContent(body, tuple(files))
