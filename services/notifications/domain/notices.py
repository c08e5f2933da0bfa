"""Who hears about what, and the email they get. Pure: no I/O once templates are loaded.

Privacy rule: templates only ever see the whitelisted context built here (reference, links,
priority, due time, and the category of a non-sensitive case). The case subject,
description and anything else the reporter wrote never reach a template, so no template
edit can leak them. Staff notifications (deadlines, escalations, conferences,
reassignments) carry even less: reference, priority, deadline, link.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Final, Literal
from uuid import UUID

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from shared.addresses import InvalidAddress, ascii_form
from shared.envelope import Envelope
from shared.errors import PermanentError
from shared.events import (
    CaseAssigned,
    CaseAssignmentNeeded,
    CaseEscalated,
    CaseMessageReceived,
    CaseNoteAdded,
    CaseReopened,
    CaseSlaBreached,
    CaseSlaWarning,
    CaseStatusChanged,
    CaseSubmitted,
    ConferenceRequired,
)
from shared.mail import notification_id

TEMPLATES_DIR: Final = Path(__file__).resolve().parent.parent / "templates"
# Fixed namespace: notification ids (and so Message-IDs) are stable across processes and
# restarts, so a resend after a crash carries the same Message-ID as the first attempt.

AUDIENCE_REPORTER: Final = "reporter"
AUDIENCE_OWNER: Final = "owner"
TEMPLATE_CASE_RECEIVED: Final = "case_received"
TEMPLATE_CASE_ASSIGNED: Final = "case_assigned"
# Each (event, audience) pair is one delivery record and one Message-ID, so a case.assigned
# that tells both the new and the previous owner needs two audiences.
AUDIENCE_PREVIOUS_OWNER: Final = "previous_owner"
AUDIENCE_ESCALATION: Final = "escalation"
TEMPLATE_SLA_WARNING: Final = "sla_warning"
TEMPLATE_SLA_BREACHED: Final = "sla_breached"
TEMPLATE_CASE_ESCALATED: Final = "case_escalated"
TEMPLATE_CONFERENCE_REQUIRED: Final = "conference_required"
TEMPLATE_CASE_REASSIGNED: Final = "case_reassigned"
TEMPLATE_CASE_REOPENED: Final = "case_reopened"
TEMPLATE_ASSIGNMENT_NEEDED: Final = "assignment_needed"
# One delivery record per HR manager asked: the audience names the manager.
AUDIENCE_HR_MANAGER: Final = "hr_manager"
NO_CONTACT: Final = "no contact for recipient"
# Escalation reasons are routing's policy text; capped so a long one cannot flood the mail.
REASON_MAX_LENGTH: Final = 200
_CLOCK_LABELS: Final = {"first_response": "first response", "resolution": "resolution"}

# References go into the Subject header: refuse anything that could break or fold it.
_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnsendableAddress(ValueError):
    """A recipient address no mail can be built for: a failed delivery, never a dead letter."""


class UnsafeContent(PermanentError, ValueError):
    """An event field that must not be put into an email as it is.

    Bad input, never retried: the consumer runtime dead-letters it with this reason.
    """


@dataclass(frozen=True)
class MailConfig:
    portal_base_url: str
    mail_from: str

    @property
    def message_id_domain(self) -> str:
        domain = parseaddr(self.mail_from)[1].rpartition("@")[2]
        return domain or "hrcase.local"

    def url(self, path: str) -> str:
        return self.portal_base_url.rstrip("/") + path

    def case_url(self, case_id: UUID) -> str:
        """The case page of intake's portal (intake's entrypoints/portal/routes.py). One page for
        reporter and staff: it shows each what they may see once they are signed in."""
        return self.url(f"/portal/cases/{case_id}")


@dataclass(frozen=True)
class Attachment:
    """A file sent with a mail, e.g. a calendar invitation: `subtype` of text/* (such as
    "calendar"), its text, and extra Content-Type parameters (such as method=REQUEST)."""

    filename: str
    subtype: str
    text: str
    params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Notification:
    """One email to one recipient, decided and rendered; `recipient_id` is what events carry."""

    notification_id: UUID
    source_event_id: UUID
    case_id: UUID
    audience: str
    template: str
    recipient_id: str
    recipient_email: str
    subject: str
    body: str
    message_id: str
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Contact:
    """How to reach a member of staff, learned from case.assigned / case.escalated."""

    staff_id: str
    email: str


@dataclass(frozen=True)
class CaseFacts:
    """What notifications knows of a case from its latest case.assigned."""

    owner_id: str
    priority: str | None


@dataclass(frozen=True)
class Undeliverable:
    """A notification that is due but has nobody to go to: recorded as a failed delivery.

    Same identity as the Notification it would have been, so the record and the
    NotificationFailed event line up with any later retry of the same event and audience.
    """

    notification_id: UUID
    source_event_id: UUID
    case_id: UUID
    audience: str
    template: str
    recipient_id: str | None
    message_id: str
    reason: str


Outcome = Notification | Undeliverable


class Templates:
    """Compiled Jinja2 templates: `<name>.subject.j2` and `<name>.body.j2` per notification.

    Each pair is compiled on its first use and kept for the life of the object (the
    process): a template edit takes effect on restart. Raises jinja2's
    `TemplateNotFound` for a name without its two files.
    """

    def __init__(self, environment: Environment) -> None:
        self._env = environment
        self._compiled: dict[str, tuple[Template, Template]] = {}

    def _pair(self, name: str) -> tuple[Template, Template]:
        pair = self._compiled.get(name)
        if pair is None:
            pair = (
                self._env.get_template(f"{name}.subject.j2"),
                self._env.get_template(f"{name}.body.j2"),
            )
            self._compiled[name] = pair
        return pair

    def render(self, name: str, context: dict[str, Any]) -> tuple[str, str]:
        """(subject, body) of template `name` with `context`; UnsafeContent for a subject
        of more than one line."""
        subject_template, body_template = self._pair(name)
        subject = subject_template.render(context).strip()
        if "\n" in subject or "\r" in subject:
            raise UnsafeContent(f"template {name} renders a multi-line subject")
        return subject, body_template.render(context)


def load_templates(directory: Path = TEMPLATES_DIR) -> Templates:
    # Plain-text mail: HTML escaping would corrupt it. Safety comes from the whitelisted
    # context instead; StrictUndefined makes a typo in a template fail loudly.
    env = Environment(
        loader=FileSystemLoader(directory),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Compiled once per process (Templates keeps them): no stat of the files per mail.
        auto_reload=False,
    )
    return Templates(env)


def message_id(notification: UUID, config: MailConfig) -> str:
    return f"<{notification}@{config.message_id_domain}>"


def for_case_submitted(
    envelope: Envelope,
    payload: CaseSubmitted,
    *,
    templates: Templates,
    config: MailConfig,
    address_on_file: str | None = None,
) -> list[Notification]:
    """Acknowledge receipt to the reporter, with nothing of what they reported.

    It goes to `address_on_file` (the HR directory's current address for the reporter's
    employee id) when there is one, else to the address captured at submission (typed by
    whoever raised the case). An anonymous report has no address: its reporter got the
    reference and key on screen.
    """
    case_id = _case_id(envelope)
    if payload.reporter is None:
        return []
    context = {
        "reference": _reference(payload.reference),
        "case_url": config.case_url(case_id),
    }
    return [
        _notification(
            envelope,
            case_id=case_id,
            audience=AUDIENCE_REPORTER,
            template=TEMPLATE_CASE_RECEIVED,
            recipient_id=payload.reporter.employee_id,
            recipient_email=address_on_file or str(payload.reporter.email),
            context=context,
            templates=templates,
            config=config,
        )
    ]


def for_case_assigned(
    envelope: Envelope, payload: CaseAssigned, *, templates: Templates, config: MailConfig
) -> list[Notification]:
    """Tell the new owner; the category only for a normal case (it can itself be revealing)."""
    case_id = _case_id(envelope)
    category = _single_line(payload.category, 100) if payload.sensitivity == "normal" else None
    context = {
        "reference": _reference(payload.reference),
        "priority": payload.priority,
        "sensitivity": payload.sensitivity,
        "category": category,
        "first_response_due": format_due(payload.first_response_due),
        "case_url": config.case_url(case_id),
    }
    return [
        _notification(
            envelope,
            case_id=case_id,
            audience=AUDIENCE_OWNER,
            template=TEMPLATE_CASE_ASSIGNED,
            recipient_id=payload.owner.id,
            recipient_email=str(payload.owner.email),
            context=context,
            templates=templates,
            config=config,
        )
    ]


def for_assignment_needed(
    envelope: Envelope,
    payload: CaseAssignmentNeeded,
    *,
    templates: Templates,
    config: MailConfig,
) -> list[Notification]:
    """Ask each HR manager named in the event to assign a person. Routing's reason (it
    concerns conflicts of interest) and the case's category stay out of the mail: the
    reference, priority, deadline and the portal link only."""
    case_id = _case_id(envelope)
    context = {
        "reference": _reference(payload.reference),
        "priority": payload.priority,
        "first_response_due": format_due(payload.first_response_due),
        "case_url": config.case_url(case_id),
    }
    return [
        _notification(
            envelope,
            case_id=case_id,
            audience=f"{AUDIENCE_HR_MANAGER}:{person.id}",
            template=TEMPLATE_ASSIGNMENT_NEEDED,
            recipient_id=person.id,
            recipient_email=str(person.email),
            context=context,
            templates=templates,
            config=config,
        )
        for person in dict((p.id, p) for p in payload.notify).values()
    ]


def sla_recipient_id(
    payload: CaseSlaWarning | CaseSlaBreached, case: CaseFacts | None
) -> str | None:
    """Routing names the owner when the timer fired; fall back to the last owner we saw."""
    if payload.owner_id:
        return payload.owner_id
    return case.owner_id if case else None


def for_sla_event(
    envelope: Envelope,
    payload: CaseSlaWarning | CaseSlaBreached,
    *,
    case: CaseFacts | None,
    recipient: Contact | None,
    templates: Templates,
    config: MailConfig,
) -> list[Outcome]:
    """Warn the owner before a deadline, or tell them it was missed."""
    case_id = _case_id(envelope)
    template = (
        TEMPLATE_SLA_WARNING if isinstance(payload, CaseSlaWarning) else TEMPLATE_SLA_BREACHED
    )
    context = {
        "reference": _reference(payload.reference),
        "priority": case.priority if case else None,
        "clock": _CLOCK_LABELS[payload.clock],
        "due_at": format_due(payload.due_at),
        "case_url": config.case_url(case_id),
    }
    return [
        _to_staff(
            envelope,
            case_id=case_id,
            audience=AUDIENCE_OWNER,
            template=template,
            recipient_id=sla_recipient_id(payload, case),
            recipient=recipient,
            context=context,
            templates=templates,
            config=config,
        )
    ]


def for_case_escalated(
    envelope: Envelope,
    payload: CaseEscalated,
    *,
    case: CaseFacts | None,
    templates: Templates,
    config: MailConfig,
) -> list[Outcome]:
    """Tell the escalation target; the event itself carries their address."""
    case_id = _case_id(envelope)
    context = {
        "reference": _reference(payload.reference),
        "priority": case.priority if case else None,
        "level": payload.level,
        "reason": policy_text(payload.reason, REASON_MAX_LENGTH),
        "case_url": config.case_url(case_id),
    }
    person = payload.escalated_to
    return [
        _to_staff(
            envelope,
            case_id=case_id,
            audience=AUDIENCE_ESCALATION,
            template=TEMPLATE_CASE_ESCALATED,
            recipient_id=person.id,
            recipient=Contact(staff_id=person.id, email=str(person.email)),
            context=context,
            templates=templates,
            config=config,
        )
    ]


def for_conference_required(
    envelope: Envelope,
    payload: ConferenceRequired,
    *,
    case: CaseFacts | None,
    recipient: Contact | None,
    templates: Templates,
    config: MailConfig,
) -> list[Outcome]:
    """Tell the owner a conference is due. The reasons (e.g. "serious injury") describe the
    employee's situation, so they never reach the template: the mail says "see the case"."""
    case_id = _case_id(envelope)
    context = {
        "reference": _reference(payload.reference),
        "priority": case.priority if case else None,
        "due_by": format_due(payload.due_by) if payload.due_by else None,
        "case_url": config.case_url(case_id),
    }
    return [
        _to_staff(
            envelope,
            case_id=case_id,
            audience=AUDIENCE_OWNER,
            template=TEMPLATE_CONFERENCE_REQUIRED,
            recipient_id=case.owner_id if case else None,
            recipient=recipient,
            context=context,
            templates=templates,
            config=config,
        )
    ]


def for_previous_owner(
    envelope: Envelope,
    payload: CaseAssigned,
    *,
    recipient: Contact | None,
    templates: Templates,
    config: MailConfig,
) -> list[Outcome]:
    """On a reassignment, tell the previous owner the case left them (not who has it now)."""
    previous = payload.previous_owner_id
    if previous is None or previous == payload.owner.id:
        return []
    case_id = _case_id(envelope)
    # No link: the case is no longer theirs, and they may no longer be allowed to open it.
    context = {"reference": _reference(payload.reference)}
    return [
        _to_staff(
            envelope,
            case_id=case_id,
            audience=AUDIENCE_PREVIOUS_OWNER,
            template=TEMPLATE_CASE_REASSIGNED,
            recipient_id=previous,
            recipient=recipient,
            context=context,
            templates=templates,
            config=config,
        )
    ]


def for_case_reopened(
    envelope: Envelope,
    payload: CaseReopened,
    *,
    case: CaseFacts | None,
    recipient: Contact | None,
    templates: Templates,
    config: MailConfig,
) -> list[Outcome]:
    """Tell the owner a case they own is open again (never what the reporter wrote)."""
    case_id = _case_id(envelope)
    context = {
        "reference": _reference(payload.reference),
        "priority": case.priority if case else None,
        "by_reporter": payload.trigger == "reporter_reply",
        "resolution_due": format_due(payload.resolution_due) if payload.resolution_due else None,
        "case_url": config.case_url(case_id),
    }
    return [
        _to_staff(
            envelope,
            case_id=case_id,
            audience=AUDIENCE_OWNER,
            template=TEMPLATE_CASE_REOPENED,
            recipient_id=payload.owner_id,
            recipient=recipient,
            context=context,
            templates=templates,
            config=config,
        )
    ]


# --- The reporter hears what happens -----------------------------------------------------
# One place for the reporter's updates after the acknowledgement: HR wrote to them, shared a
# note, moved the case (in progress, waiting on them, resolved, closed) or reopened it.
# What a mail may say: the reference, what kind of thing happened, the portal link and, for
# "waiting on you", "resolved" and "closed" only, the reason staff gave, which the portal's
# status form labels as shown to the employee. That reason is mailed only for a case routing
# classified as normal: for a confidential or restricted case (or one whose sensitivity is
# not known yet: fail closed) the mail says the reason is on the case page, behind sign-in.
# Never in a mail: the message or note text, the description, respondents, medical facts.
# The address is only ever the one kept from the case's case.submitted (ReporterContact).

TEMPLATE_REPORTER_MESSAGE: Final = "reporter_message"
TEMPLATE_REPORTER_NOTE: Final = "reporter_note"
TEMPLATE_REPORTER_STATUS: Final = "reporter_status"
ReporterUpdateKind = Literal[
    "message", "note", "in_progress", "waiting_on_employee", "resolved", "closed", "reopened"
]
# Lifecycle statuses the reporter hears of (routed/assigned are covered by the acknowledgement).
REPORTER_STATUSES: Final[dict[str, ReporterUpdateKind]] = {
    "in_progress": "in_progress",
    "waiting_on_employee": "waiting_on_employee",
    "resolved": "resolved",
    "closed": "closed",
}
ENDED_STATUSES: Final = frozenset({"resolved", "closed"})
# Kinds whose staff-written reason is meant for the reporter ("what we need", the outcome).
REASON_KINDS: Final = frozenset({"waiting_on_employee", "resolved", "closed"})
REPORTER_REASON_MAX_LENGTH: Final = 2000
_MULTILINE_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class ReporterContact:
    """The reporter of a case (from its case.submitted) at the address on file (the HR
    directory's current one, else the one captured at submission) and the case's
    sensitivity as routing last classified it (None: not classified yet)."""

    employee_id: str
    email: str
    sensitivity: str | None = None


@dataclass(frozen=True)
class ReporterUpdate:
    """Something the reporter should hear of; `reason` is staff's text, mailed only when
    `kind` is in REASON_KINDS and the case is normal."""

    kind: ReporterUpdateKind
    reference: str
    reason: str | None = None


def message_update(payload: CaseMessageReceived) -> ReporterUpdate | None:
    """HR wrote to the reporter; the reporter's own messages tell nobody (they wrote them)."""
    if payload.sender_role != "agent":
        return None
    return ReporterUpdate("message", payload.reference)


def note_update(payload: CaseNoteAdded) -> ReporterUpdate | None:
    """A note shared with the reporter; an internal note never triggers anything."""
    return None if payload.internal else ReporterUpdate("note", payload.reference)


def status_update(payload: CaseStatusChanged, *, caused_by: str | None) -> ReporterUpdate | None:
    """A lifecycle move the reporter hears of, or None.

    `caused_by` is the event type of the event that caused the change, when this service
    consumed it. A move caused by a case.message_received is routing's automatic answer to a
    message (an agent's first reply: in progress; the employee's reply: no longer waiting):
    the agent's message has its own mail and the reporter needs none for their own reply.
    A reopening (resolved/closed -> in progress) is told from case.reopened instead.
    """
    if payload.to_status not in REPORTER_STATUSES or payload.from_status == payload.to_status:
        return None
    if caused_by == CaseMessageReceived.event_type:
        return None
    if payload.from_status in ENDED_STATUSES and payload.to_status == "in_progress":
        return None
    return ReporterUpdate(REPORTER_STATUSES[payload.to_status], payload.reference, payload.reason)


def reopened_update(payload: CaseReopened) -> ReporterUpdate | None:
    """Staff reopened the case; a reopening by the reporter's own reply tells them nothing."""
    if payload.trigger != "staff_request":
        return None
    return ReporterUpdate("reopened", payload.reference)


def reporter_text(value: str | None, max_length: int = REPORTER_REASON_MAX_LENGTH) -> str | None:
    """Staff's reason as plain text: line breaks kept, other control characters dropped."""
    if value is None:
        return None
    text = _MULTILINE_CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if len(text) > max_length:
        text = text[: max_length - 1].rstrip() + "…"
    return text or None


def for_reporter_update(
    envelope: Envelope,
    update: ReporterUpdate,
    *,
    contact: ReporterContact | None,
    templates: Templates,
    config: MailConfig,
) -> list[Notification]:
    """The reporter's mail about `update`, to the address on file; [] when there is none
    (an anonymous report, a call from an unidentified caller) or the reporter caused it."""
    case_id = _case_id(envelope)
    if contact is None:
        return []
    actor = envelope.actor
    if actor.type == "employee" and actor.id == contact.employee_id:
        return []
    reason_allowed = update.kind in REASON_KINDS
    shareable = reason_allowed and contact.sensitivity == "normal"
    reason = reporter_text(update.reason) if shareable else None
    if update.kind == "message":
        template = TEMPLATE_REPORTER_MESSAGE
    elif update.kind == "note":
        template = TEMPLATE_REPORTER_NOTE
    else:
        template = TEMPLATE_REPORTER_STATUS
    context = {
        "reference": _reference(update.reference),
        "status": update.kind,
        "reason": reason,
        # A reason was given but stays behind sign-in (the case is not a normal one).
        "reason_on_page": reason_allowed and reason is None and bool(update.reason),
        "case_url": config.case_url(case_id),
    }
    return [
        _notification(
            envelope,
            case_id=case_id,
            audience=AUDIENCE_REPORTER,
            template=template,
            recipient_id=contact.employee_id,
            recipient_email=contact.email,
            context=context,
            templates=templates,
            config=config,
        )
    ]


def policy_text(value: str, max_length: int) -> str | None:
    """Routing-generated text made one short line (never refused: it is optional detail)."""
    text = " ".join(_CONTROL.sub(" ", value).split())
    if len(text) > max_length:
        text = text[: max_length - 1].rstrip() + "…"
    return text or None


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, each header's class made once per name.

    The stdlib's `HeaderRegistry.__getitem__` builds a new class (`type(...)`) on every
    lookup, and setting one header looks up twice (its count limit, then the parse): about
    5 % of this service's CPU went to making classes. The classes behave the same, so the
    headers and the bytes are the same.
    """

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def map_to_type(self, name: str, cls: type[Any]) -> None:
        super().map_to_type(name, cls)
        self._classes.clear()

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._classes.get(key)
        if made is None:
            made = self._classes[key] = super().__getitem__(name)
        return made


# email.policy.default with the class-keeping registry; the mailer's generator (SMTP or
# SMTPUTF8 policy) writes the message as it would any EmailMessage.
MAIL_POLICY: Final = policy.default.clone(header_factory=_HeaderClasses())
# Mails to one person, or from the one sender, repeat the same parsed header: parsed
# once. Header objects are immutable (a str with its parse tree), so one can sit in any
# number of messages. Bounded: at most this many addresses stay parsed (see forget_addresses).
_PARSED_HEADERS_MAX: Final = 1024


@functools.lru_cache(maxsize=_PARSED_HEADERS_MAX)
def _header(name: str, value: str) -> BaseHeader:
    # header_store_parse: the policy's own checks (no line breaks), then the parse.
    header: BaseHeader = MAIL_POLICY.header_store_parse(name, value)[1]
    return header


@functools.lru_cache(maxsize=_PARSED_HEADERS_MAX)
def _to_header(address: str) -> BaseHeader:
    header: BaseHeader = MAIL_POLICY.header_factory("To", recipient_address(address))
    return header


def forget_addresses() -> None:
    """Drop the parsed From/To headers kept by `build_email` (an erased person's address
    then stays in no cache of this process)."""
    _header.cache_clear()
    _to_header.cache_clear()


def build_email(notification: Notification, *, mail_from: str, date: datetime) -> EmailMessage:
    """The MIME message (the library does the encoding; nothing is hand-written).

    Raises `UnsendableAddress` when the recipient address is not valid.
    """
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = _header("From", mail_from)
    message["To"] = _to_header(notification.recipient_email)
    message["Subject"] = notification.subject
    message["Date"] = format_datetime(date.astimezone(UTC))
    message["Message-ID"] = notification.message_id
    # RFC 3834: auto-responders must not answer this, which prevents mail loops with
    # out-of-office replies feeding back into inbound email intake.
    message["Auto-Submitted"] = _header("Auto-Submitted", "auto-generated")
    # The same, for Exchange/Outlook.
    message["X-Auto-Response-Suppress"] = _header("X-Auto-Response-Suppress", "All")
    message.set_content(notification.body, subtype="plain", charset="utf-8")
    for attachment in notification.attachments:
        message.add_attachment(
            attachment.text,
            subtype=attachment.subtype,
            charset="utf-8",
            filename=attachment.filename,
            params=dict(attachment.params),
        )
    return message


def recipient_address(address: str) -> Address:
    """The To address: ASCII where it can be (an IDN domain as its A-label, so any relay
    takes it), else as it is, non-ASCII local part and all. Such a message needs a relay
    that offers SMTPUTF8; aiosmtplib asks for it and refuses to send when it is not offered,
    which the mailer reports as a failed delivery."""
    try:
        sendable = ascii_form(address) or address
    except InvalidAddress as exc:
        raise UnsendableAddress(f"recipient address is not valid: {exc}") from exc
    # username/domain, not addr_spec: the stdlib's parser refuses a non-ASCII local part
    # (NonASCIILocalPartDefect) although RFC 6532 allows it; the SMTPUTF8 generator writes it.
    username, _, domain = sendable.rpartition("@")
    return Address(username=username, domain=domain)


def format_due(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%a %d %b %Y, %H:%M UTC")


def _notification(
    envelope: Envelope,
    *,
    case_id: UUID,
    audience: str,
    template: str,
    recipient_id: str,
    recipient_email: str,
    context: dict[str, Any],
    templates: Templates,
    config: MailConfig,
) -> Notification:
    subject, body = templates.render(template, context)
    nid = notification_id(envelope.event_id, audience)
    return Notification(
        notification_id=nid,
        source_event_id=envelope.event_id,
        case_id=case_id,
        audience=audience,
        template=template,
        recipient_id=recipient_id,
        recipient_email=recipient_email,
        subject=subject,
        body=body,
        message_id=message_id(nid, config),
    )


def _to_staff(
    envelope: Envelope,
    *,
    case_id: UUID,
    audience: str,
    template: str,
    recipient_id: str | None,
    recipient: Contact | None,
    context: dict[str, Any],
    templates: Templates,
    config: MailConfig,
) -> Outcome:
    if recipient is None or recipient.staff_id != recipient_id:
        nid = notification_id(envelope.event_id, audience)
        return Undeliverable(
            notification_id=nid,
            source_event_id=envelope.event_id,
            case_id=case_id,
            audience=audience,
            template=template,
            recipient_id=recipient_id,
            message_id=message_id(nid, config),
            reason=NO_CONTACT,
        )
    return _notification(
        envelope,
        case_id=case_id,
        audience=audience,
        template=template,
        recipient_id=recipient.staff_id,
        recipient_email=recipient.email,
        context=context,
        templates=templates,
        config=config,
    )


def _case_id(envelope: Envelope) -> UUID:
    if envelope.case_id is None:
        raise UnsafeContent(f"{envelope.event_type} without case_id")
    return envelope.case_id


def _reference(value: str) -> str:
    if not _REFERENCE.match(value):
        raise UnsafeContent("case reference has an unexpected format")
    return value


def _single_line(value: str, max_length: int) -> str:
    if _CONTROL.search(value) or len(value) > max_length:
        raise UnsafeContent("field is not a short single line")
    return value
