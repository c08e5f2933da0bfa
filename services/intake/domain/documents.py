"""Documents on a case: what a file really is, which files intake accepts, how one is served.

The type of a file is read from its bytes, never from its name or the type its sender
claimed: `filetype` knows the binary formats by signature (telling a .docx from any other
zip by its content), `puremagic` the text-based ones (HTML, SVG, XML, e-mail, RTF); text
nothing recognises is text/plain. Accepted (`ACCEPTED`): PDF, images, office documents
(OOXML, OpenDocument, legacy Word/Excel/PowerPoint, RTF), Outlook .msg and .eml mail,
plain text, common audio and video (recorded statements); HTML, SVG and XML are accepted
but only ever served as a download of application/octet-stream (`served_type`).
Refused: executables and scripts (by content, and by a name Windows would run), archives
(their content cannot be checked: send the files themselves), empty files, and anything
not recognised. A file whose name or claimed type disagrees with its bytes is stored under
the detected type. Pure functions: no I/O.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote

import filetype
import puremagic

# Limits: per file, and for all the files on one case together (every channel).
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_CASE_BYTES = 50 * 1024 * 1024
MAX_FILES_PER_REQUEST = 5

OOXML = "application/vnd.openxmlformats-officedocument"
ACCEPTED: frozenset[str] = frozenset(
    {
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/tiff",
        "image/bmp",
        "image/heic",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.ms-outlook",
        f"{OOXML}.wordprocessingml.document",
        f"{OOXML}.spreadsheetml.sheet",
        f"{OOXML}.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "application/rtf",
        "message/rfc822",
        "text/plain",
        "audio/mpeg",
        "audio/mp4",
        "audio/x-wav",
        "audio/ogg",
        "audio/aac",
        "video/mp4",
        "video/quicktime",
        "video/webm",
        # Stored, but served only as application/octet-stream (SCRIPT_CAPABLE).
        "text/html",
        "image/svg+xml",
        "application/xml",
    }
)
# Types a browser could run script in (or render as a page of our origin).
SCRIPT_CAPABLE: frozenset[str] = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "application/xml",
        "text/xml",
        "text/javascript",
        "application/javascript",
    }
)
SCRIPT_CAPABLE_SUFFIXES = frozenset(
    {".html", ".htm", ".xhtml", ".xht", ".shtml", ".svg", ".svgz", ".xml", ".xsl", ".xslt"}
    | {".js", ".mjs", ".cjs"}
)
EXECUTABLE_TYPES = frozenset(
    {
        "application/x-msdownload",
        "application/x-executable",
        "application/x-mach-binary",
        "application/x-elf",
        "application/wasm",
        "application/x-shockwave-flash",
        "application/x-google-chrome-extension",
        "application/x-deb",
        "application/x-rpm",
        "application/vnd.android.package-archive",
    }
)
ARCHIVE_TYPES = frozenset(
    {
        "application/zip",
        "application/x-tar",
        "application/x-rar-compressed",
        "application/gzip",
        "application/x-bzip2",
        "application/x-7z-compressed",
        "application/x-xz",
        "application/zstd",
        "application/x-lzip",
        "application/x-lz4",
        "application/x-lzop",
        "application/x-compress",
        "application/x-brotli",
        "application/vnd.ms-cab-compressed",
        "application/x-unix-archive",
        "application/epub+zip",
    }
)
# Names Windows (or a shell) runs when opened: refused whatever the bytes are.
EXECUTABLE_SUFFIXES = frozenset(
    {".exe", ".com", ".bat", ".cmd", ".scr", ".pif", ".msi", ".msp", ".dll", ".cpl", ".jar"}
    | {".vbs", ".vbe", ".js", ".jse", ".wsf", ".wsh", ".ps1", ".psm1", ".hta", ".lnk"}
    | {".reg", ".sh", ".bash", ".app", ".apk", ".dmg", ".deb", ".rpm", ".appimage"}
)
# Text formats puremagic recognises, by the types we store them under.
_TEXT_FORMATS = {
    "text/html": "text/html",
    "image/svg+xml": "image/svg+xml",
    "application/xml": "application/xml",
    "text/xml": "application/xml",
    "message/rfc822": "message/rfc822",
    "application/rtf": "application/rtf",
    "text/rtf": "application/rtf",
}
_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE_BY_SUFFIX = {
    ".doc": "application/msword",
    ".dot": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
    ".msg": "application/vnd.ms-outlook",
}


class DocumentRefused(ValueError):
    """A file intake does not accept; `str()` says which file and why, for the person."""


@dataclass(frozen=True)
class Detected:
    content_type: str  # what the bytes are (stored, and shown)
    label: str  # the same for a person ("PDF document")


def safe_filename(filename: str) -> str:
    """The last path segment, NFC, printable characters only, at most 255; never empty."""
    name = unicodedata.normalize("NFC", filename.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if ch.isprintable()).strip()[:255]
    return name or "attachment"


def suffix_of(filename: str) -> str:
    return PurePosixPath(filename.lower()).suffix


def detect(content: bytes, filename: str) -> Detected:
    """The type `content` really is, if intake accepts it.

    Raises DocumentRefused naming `filename`: empty, executable (by content or by a name
    that runs), archive, or a type not in ACCEPTED.
    """
    if not content:
        raise DocumentRefused(f"{filename!r} is empty")
    suffix = suffix_of(filename)
    if suffix in EXECUTABLE_SUFFIXES:
        raise DocumentRefused(f"{filename!r}: programs and scripts ({suffix}) are not accepted")
    content_type = _sniff(content, suffix)
    if content_type in EXECUTABLE_TYPES or content.startswith(b"#!"):
        raise DocumentRefused(f"{filename!r} is a program or script, which is not accepted")
    if content_type in ARCHIVE_TYPES:
        raise DocumentRefused(
            f"{filename!r} is an archive ({content_type}); attach the files themselves"
        )
    if content_type not in ACCEPTED:
        raise DocumentRefused(
            f"{filename!r} is {content_type}, which is not accepted (PDF, images, office"
            " documents, e-mails, text, audio or video)"
        )
    return Detected(content_type, _label(content_type))


def _sniff(content: bytes, suffix: str) -> str:
    kind = filetype.guess(content)
    if kind is not None:
        if content.startswith(_OLE_SIGNATURE) and suffix == ".msg":
            return "application/vnd.ms-outlook"
        return str(kind.mime)
    if content.startswith(_OLE_SIGNATURE):
        # An OLE compound file whose kind filetype cannot tell: the name picks among the
        # office kinds it may be; any other name is not accepted.
        return _OLE_BY_SUFFIX.get(suffix, "application/x-ole-storage")
    text_type = _text_format(content)
    if text_type is not None:
        return text_type
    return "text/plain" if _is_text(content) else "application/octet-stream"


def _text_format(content: bytes) -> str | None:
    try:
        candidates = puremagic.magic_string(content[:65536])
    except (puremagic.PureError, ValueError):
        return None
    known = [c for c in candidates if c.mime_type in _TEXT_FORMATS]
    if not known:
        return None
    best = max(known, key=lambda c: c.confidence)
    return _TEXT_FORMATS[best.mime_type]


def _is_text(content: bytes) -> bool:
    sample = content[:65536]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sample's end is still text.
        if exc.start < len(sample) - 4:
            return _mostly_printable(sample.decode("latin-1"))
    return True


def _mostly_printable(text: str) -> bool:
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\r\n\t\f")
    return printable >= 0.95 * len(text)


def _label(content_type: str) -> str:
    labels = {
        "application/pdf": "PDF document",
        "text/plain": "Text",
        "message/rfc822": "E-mail",
        "application/vnd.ms-outlook": "Outlook message",
        "application/rtf": "Rich text",
        "text/html": "Web page (download only)",
        "image/svg+xml": "SVG image (download only)",
        "application/xml": "XML (download only)",
    }
    if content_type in labels:
        return labels[content_type]
    major = content_type.split("/", 1)[0]
    if major in {"image", "audio", "video"}:
        return f"{major.capitalize()} ({content_type.split('/', 1)[1]})"
    return "Office document"


def served_type(content_type: str, filename: str) -> str:
    """The Content-Type a download is sent with: a type (or a name) that could run script
    in a browser is sent as application/octet-stream, whatever else is true."""
    if content_type in SCRIPT_CAPABLE or suffix_of(filename) in SCRIPT_CAPABLE_SUFFIXES:
        return "application/octet-stream"
    return content_type


def content_disposition(filename: str) -> str:
    """RFC 6266 `attachment` with an ASCII fallback name and the UTF-8 name (RFC 5987)."""
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = "".join(ch if ch.isalnum() or ch in " ._-()" else "_" for ch in fallback)
    fallback = fallback.strip() or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
