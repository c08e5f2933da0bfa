"""One inbound message, parsed and classified: bytes in, a decision out. Pure: no I/O.

`parse_email` never raises on bad input: it returns an `InboundEmail` (possibly marked
automatic, to be dropped) or a `Refusal` with an SMTP code and a reason. Parsing uses the
standard library (`email.policy.default`); every header is read through `_header`, which
survives the parser's lazy errors, and every string that leaves this module is cleaned of
control characters and lone surrogates (header injection, and text Postgres would refuse).
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import mimetypes
import re
import unicodedata
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import getaddresses
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic.networks import EmailStr

from services.intake.email import charsets
from services.intake.email.config import EmailLimits
from services.intake.email.html import html_to_text

SUBJECT_MAX = 200
NAME_MAX = 200
FILENAME_MAX = 255
MESSAGE_ID_MAX = 250
MAX_THREAD_IDS = 30
NO_SUBJECT = "(no subject)"
NO_TEXT = "(the email had no text)"
TRUNCATED = "\n\n[... the rest of the email was longer than the limit and was cut here]"

_MESSAGE_ID = re.compile(r"<[^<>\s]{1,248}>")  # MESSAGE_ID_MAX with its brackets
_REFERENCE = re.compile(r"\bHR-\d{4}-\d{6,12}\b")
_AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_AUTOMATIC_SENDERS = frozenset({"mailer-daemon", "postmaster"})
_LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_EMAIL_ADDRESS = TypeAdapter(EmailStr)


class _MailPolicy(email.policy.EmailPolicy):
    """The standard library's default policy, with header text decoded as mail readers do.

    Before a header is parsed, its encoded-words are re-encoded as UTF-8 and its raw 8-bit
    bytes decoded (`charsets.transcode_encoded_words`): the stdlib knows only Python's codec
    names, so `iso-8859-8-i` or a windows-1252 byte would otherwise become U+FFFD.
    """

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if isinstance(value, str) and not hasattr(value, "name"):
            value = charsets.transcode_encoded_words(value)
        return super().header_fetch_parse(name, value)


MAIL_POLICY = _MailPolicy()


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class InboundEmail:
    """A message from a person (or, with `automatic_reason`, from a machine: dropped)."""

    message_id: str
    sender_address: str  # lower-case addr-spec; "" only for an automatic message
    sender_name: str
    subject: str
    body: str
    attachments: tuple[ParsedAttachment, ...] = ()
    # In-Reply-To first, then References newest first: the order to try for a thread.
    thread_ids: tuple[str, ...] = ()
    subject_references: tuple[str, ...] = ()
    automatic_reason: str | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a message is refused; `code`/`status` are the SMTP reply and enhanced status."""

    code: int
    status: str
    reason: str

    @property
    def smtp_reply(self) -> str:
        return f"{self.code} {self.status} {self.reason}"


def too_large(limit: int) -> Refusal:
    return Refusal(552, "5.3.4", f"Message exceeds the size limit of {limit} bytes")


def parse_email(
    raw: bytes, *, envelope_sender: str | None = None, limits: EmailLimits
) -> InboundEmail | Refusal:
    """Parse and classify one RFC 5322 message. `envelope_sender`: SMTP MAIL FROM, if known."""
    if len(raw) > limits.max_message_bytes:
        return too_large(limits.max_message_bytes)
    try:
        message = email.message_from_bytes(raw, policy=MAIL_POLICY)
    except RecursionError:
        return Refusal(554, "5.6.0", "MIME structure is nested too deeply")
    assert isinstance(message, EmailMessage)
    refusal = _check_structure(message, limits)
    if refusal is not None:
        return refusal
    message_id = _message_id(message, raw)
    automatic = automatic_reason(message, envelope_sender)
    if automatic is not None:
        return InboundEmail(message_id, "", "", "", "", automatic_reason=automatic)
    sender = _sender(message, envelope_sender)
    if sender is None:
        return Refusal(550, "5.1.7", "No valid sender address in From")
    address, name = sender
    subject = clean_line(_header(message, "Subject"))[:SUBJECT_MAX] or NO_SUBJECT
    content = _content(message, limits)
    if isinstance(content, Refusal):
        return content
    body, attachments = content
    return InboundEmail(
        message_id=message_id,
        sender_address=address,
        sender_name=name,
        subject=subject,
        body=body,
        attachments=attachments,
        thread_ids=_thread_ids(message),
        subject_references=tuple(dict.fromkeys(_REFERENCE.findall(subject))),
    )


def automatic_reason(message: Message, envelope_sender: str | None) -> str | None:
    """Why a message was sent by a machine (auto-reply, bounce, list), or None.

    Such mail never opens a case and is never acknowledged, which is what breaks mail loops
    between our acknowledgements and somebody's out-of-office (RFC 3834).
    """
    if envelope_sender is not None and envelope_sender.strip() in ("", "<>"):
        return "empty return path"
    if envelope_sender is None and _header(message, "Return-Path").strip() == "<>":
        return "empty return path"
    auto_submitted = _header(message, "Auto-Submitted").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"auto-submitted: {clean_line(auto_submitted)[:40]}"
    precedence = _header(message, "Precedence").strip().lower()
    if precedence in _AUTOMATIC_PRECEDENCE:
        return f"precedence: {precedence}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if _header(message, name).strip():
            return name.lower()
    if _content_type(message) == "multipart/report":
        return "delivery or disposition report"
    from_values = getaddresses([_raw_header(message, "From")])
    if any(addr.partition("@")[0].lower() in _AUTOMATIC_SENDERS for _, addr in from_values):
        return "mailer daemon"
    return None


def clean_line(value: str) -> str:
    """One safe line: line breaks and controls become spaces (no header injection)."""
    text = clean_text(value)
    for char in _LINE_BREAKS + "\t":
        text = text.replace(char, " ")
    return " ".join(text.split())


def clean_text(value: str) -> str:
    """Text fit to store: normalised newlines, no controls but tab/newline, no surrogates."""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(_clean_char(char) for char in text)


def _clean_char(char: str) -> str:
    if char in "\n\t":
        return char
    if "\ud800" <= char <= "\udfff":
        return "\ufffd"  # undecodable bytes (surrogateescape): the replacement character
    if unicodedata.category(char) == "Cc":
        return " "
    return char


def _header(message: Message, name: str) -> str:
    """A header's decoded text, or "" when absent; never raises on malformed input."""
    try:
        value = message.get(name)
        return "" if value is None else str(value)
    except Exception:  # the default policy parses lazily and some malformed headers raise
        pass
    return _decode_words(_raw_header(message, name))


def _raw_header(message: Message, name: str) -> str:
    """The header as it came, encoded-words and all ("" when absent)."""
    for key, raw in message.raw_items():
        if key.lower() == name.lower():
            return str(raw)
    return ""


def _decode_words(value: str) -> str:
    return charsets.decode_header_text(value)


def _content_type(part: Message) -> str:
    try:
        return clean_line(part.get_content_type()).lower()[:FILENAME_MAX]
    except Exception:
        return "application/octet-stream"


def _children(part: Message) -> list[Message]:
    if not part.is_multipart():
        return []
    payload = part.get_payload()
    return [child for child in payload if isinstance(child, Message)] if payload else []


def _check_structure(message: Message, limits: EmailLimits) -> Refusal | None:
    # Iterative walk: a hostile depth must not cost us stack, only a refusal.
    count = 0
    stack = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        count += 1
        if count > limits.max_parts:
            return Refusal(554, "5.6.0", f"Too many MIME parts (limit {limits.max_parts})")
        if depth > limits.max_depth:
            return Refusal(554, "5.6.0", f"MIME nesting too deep (limit {limits.max_depth})")
        stack.extend((child, depth + 1) for child in _children(part))
    return None


def _message_id(message: Message, raw: bytes) -> str:
    value = clean_line(_header(message, "Message-ID"))
    found = _MESSAGE_ID.search(value)
    if found:
        return found.group(0)
    if value and " " not in value and len(value) <= MESSAGE_ID_MAX - 2:
        return f"<{value.strip('<>')}>"
    # No usable Message-ID: derive one from the bytes, so a retried delivery still dedups.
    source = value.encode("utf-8", "replace") if value else raw
    return f"<{hashlib.sha256(source).hexdigest()}@message-id.hrcase.invalid>"


def _thread_ids(message: Message) -> tuple[str, ...]:
    in_reply_to = _MESSAGE_ID.findall(clean_line(_header(message, "In-Reply-To")))
    references = _MESSAGE_ID.findall(clean_line(_header(message, "References")))
    ordered = dict.fromkeys([*in_reply_to, *reversed(references)])
    return tuple(ordered)[:MAX_THREAD_IDS]


def valid_address(value: str) -> str | None:
    """The lower-case address if it is one we can write back to, else None."""
    candidate = value.strip()
    if not candidate or len(candidate) > 254 or any(c.isspace() for c in candidate):
        return None
    try:
        return str(_EMAIL_ADDRESS.validate_python(candidate)).lower()
    except ValidationError:
        return None


def _sender(message: Message, envelope_sender: str | None) -> tuple[str, str] | None:
    """(address, display name) from From, else from the envelope sender."""
    candidates: list[tuple[str, str]] = []
    try:
        header = message.get("From")
        for address in getattr(header, "addresses", ()):
            candidates.append((address.addr_spec, address.display_name))
    except Exception:  # malformed From: fall back to the lenient legacy parser below
        pass
    # Split the raw header, then decode names: an encoded-word must never add an address.
    candidates.extend(
        (addr, _decode_words(name)) for name, addr in getaddresses([_raw_header(message, "From")])
    )
    if envelope_sender:
        candidates.append((envelope_sender.strip("<>"), ""))
    for addr, name in candidates:
        address = valid_address(clean_line(addr))
        if address:
            display = clean_line(name)[:NAME_MAX] or address.partition("@")[0][:NAME_MAX]
            return address, display
    return None


def _decode_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        label = part.get_content_charset()
    except Exception:  # an unparsable Content-Type: unlabelled
        label = None
    if label is None and _content_type(part) == "text/html":
        label = charsets.html_charset(payload)
    return clean_text(charsets.decode_bytes(payload, label))


def _part_text(part: Message) -> str:
    text = _decode_text(part)
    return html_to_text(text) if _content_type(part) == "text/html" else text


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""


def _declared_filename(part: Message) -> str:
    """The file name a part declares (Content-Disposition filename, else Content-Type name),
    RFC 2231 (`filename*=charset''...`, continuations) and RFC 2047 (as Outlook sends)
    decoded with `charsets`; "" when none."""
    for header, param in (("Content-Disposition", "filename"), ("Content-Type", "name")):
        raw = _raw_header(part, header)
        if not raw:
            continue
        legacy = Message()  # compat32: parameters as sent, continuations joined
        legacy[header] = charsets.raw_header_text(raw)  # raw 8-bit bytes: UTF-8, else 1252
        try:
            value = legacy.get_param(param, None, header=header)
        except Exception:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded latin-1)
            charset, _language, text = value
            try:
                data = str(text).encode("latin-1", "surrogateescape")
            except UnicodeEncodeError:
                return charsets.decode_header_text(str(text))
            return charsets.decode_bytes(data, charset or None)
        if value:
            return charsets.decode_header_text(email.utils.unquote(str(value)))
    return ""


def _filename(part: Message, index: int, content_type: str) -> str:
    try:
        name = _declared_filename(part)
    except Exception:
        name = ""
    # Only the last path component: a filename is a label, never a path.
    name = clean_line(name).replace("\\", "/").rsplit("/", 1)[-1].strip(" .")
    if not name:
        extension = mimetypes.guess_extension(content_type) or ".bin"
        name = f"attachment-{index}{extension}"
    return name[-FILENAME_MAX:]


def _chosen_body(message: EmailMessage) -> Message | None:
    try:
        return message.get_body(preferencelist=("plain", "html"))
    except Exception:
        return None


def _content(
    message: EmailMessage, limits: EmailLimits
) -> tuple[str, tuple[ParsedAttachment, ...]] | Refusal:
    """The body text (plain preferred, HTML converted) and the attachments."""
    body_part = _chosen_body(message)
    texts = [_part_text(body_part)] if body_part is not None else []
    attachments: list[ParsedAttachment] = []
    stack: list[tuple[Message, str]] = [(message, "")]
    while stack:
        part, parent_type = stack.pop(0)
        content_type = _content_type(part)
        if part.is_multipart() and content_type != "message/rfc822":
            stack[0:0] = [(child, content_type) for child in _children(part)]
            continue
        if part is body_part:
            continue
        disposition = _disposition(part)
        is_text = content_type in ("text/plain", "text/html")
        if is_text and disposition != "attachment" and not _has_filename(part):
            if parent_type != "multipart/alternative":  # alternatives repeat the body
                texts.append(_part_text(part))
            continue
        data = _attachment_bytes(part)
        if len(data) > limits.max_attachment_bytes:
            return Refusal(
                552,
                "5.3.4",
                f"An attachment exceeds the limit of {limits.max_attachment_bytes} bytes",
            )
        filename = _filename(part, len(attachments) + 1, content_type)
        attachments.append(ParsedAttachment(filename, content_type, data))
    body = "\n\n".join(text.strip() for text in texts if text.strip()) or NO_TEXT
    if len(body) > limits.max_body_chars:
        body = body[: limits.max_body_chars] + TRUNCATED
    return body, tuple(attachments)


def _has_filename(part: Message) -> bool:
    try:
        return bool(_declared_filename(part))
    except Exception:
        return False


def _attachment_bytes(part: Message) -> bytes:
    if _content_type(part) == "message/rfc822":
        # A forwarded email: kept whole, as an .eml file.
        inner = _children(part)
        if not inner:
            return b""
        try:
            return inner[0].as_bytes(policy=email.policy.compat32)
        except Exception:
            return str(inner[0].get_payload()).encode("utf-8", "replace")
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""
