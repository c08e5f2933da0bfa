"""Opening a case and adding a message: the one path every channel goes through.

Each function runs inside the caller's transaction and records the event to publish
in the outbox, so a case or message exists exactly when its event will be published.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID, uuid4

import asyncpg
import structlog

from services.intake.adapters import case_facts
from services.intake.adapters import case_writes as store
from services.intake.application import history
from services.intake.domain.case import NEW_STATUS, format_reference
from services.intake.domain.documents import MAX_CASE_BYTES
from services.intake.domain.refusals import Refused
from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    Attachment,
    CaseMessageReceived,
    CaseSubmitted,
    Channel,
    InjuryDetails,
    Reporter,
    RespondentNamed,
    make_event,
)
from shared.outbox import enqueue

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class NewAttachment:
    """A file to store: `content_type` is the type detected from the bytes
    (domain/documents.py), `claimed_type` what its sender said. The staff fields are set
    for documents staff add (application/documents.py)."""

    filename: str
    content_type: str
    content: bytes
    claimed_type: str | None = None
    uploaded_by: str | None = None  # the member of staff; None: the reporter's file
    evidence: bool = False
    staff_only: bool = False  # hidden from the reporter
    note_id: UUID | None = None
    description: str | None = None

    def reference(self, attachment_id: UUID) -> Attachment:
        return Attachment(
            attachment_id=attachment_id,
            filename=self.filename,
            content_type=self.content_type,
            size=len(self.content),
            sha256=hashlib.sha256(self.content).hexdigest(),
        )


@dataclass(frozen=True)
class NewCase:
    channel: Channel
    subject: str
    description: str
    actor: Actor
    reporter: Reporter | None = None  # None: anonymous
    category: str | None = None
    respondent_employee_ids: tuple[str, ...] = ()
    # Named by id, name and/or email; routing resolves them (case.respondents_resolved).
    respondents: tuple[RespondentNamed, ...] = ()
    urgent: bool = False
    injury: InjuryDetails | None = None
    attachments: tuple[NewAttachment, ...] = ()
    logged_by: str | None = None  # phone: the agent's subject
    anonymous_key_hash: str | None = None
    source_message_id: str | None = None  # email: Message-ID, unique
    submitted_by: str | None = None  # the principal's subject
    reference: str | None = None  # given (anonymous: random); else HR-YYYY-NNNNNN
    # A follow-up of an older, closed case (routing's case.follow_up_case_requested).
    follows_up_case_id: UUID | None = None
    follow_up_of_event_id: UUID | None = None
    # Who raised it, by name, for the case's history (the Principal's name; for a reporter
    # raising their own case their name is taken when this is None).
    actor_name: str | None = None


@dataclass(frozen=True)
class OpenedCase:
    case_id: UUID
    reference: str
    status: str
    event: Envelope
    attachments: list[Attachment] = field(default_factory=list)


async def open_case(conn: asyncpg.Connection, new: NewCase) -> OpenedCase:
    """Insert the case, its attachments and its `case.submitted` event (one transaction)."""
    case_id = uuid4()
    submitted_at = utcnow()
    reference = new.reference
    if reference is None:
        reference = format_reference(submitted_at, await store.next_reference_number(conn))
    reporter = new.reporter
    # Ids named either way travel in respondent_employee_ids too (its older readers).
    named_ids = [r.employee_id for r in new.respondents if r.employee_id]
    respondent_ids = list(dict.fromkeys([*new.respondent_employee_ids, *named_ids]))
    await store.insert_case(
        conn,
        case_id=case_id,
        reference=reference,
        channel=new.channel,
        subject=new.subject,
        description=new.description,
        reporter_employee_id=reporter.employee_id if reporter else None,
        reporter_name=reporter.name if reporter else None,
        reporter_email=str(reporter.email) if reporter else None,
        requested_category=new.category,
        status=NEW_STATUS,
        submitted_at=submitted_at,
        anonymous=reporter is None,
        anonymous_key_hash=new.anonymous_key_hash,
        respondent_employee_ids=respondent_ids,
        urgent=new.urgent,
        injury=new.injury.model_dump(mode="json") if new.injury else None,
        logged_by=new.logged_by,
        submitted_by=new.submitted_by,
        source_message_id=new.source_message_id,
        follows_up_case_id=new.follows_up_case_id,
        follow_up_of_event_id=new.follow_up_of_event_id,
    )
    await case_facts.insert_respondents(conn, case_id, new.respondents)
    attachments = await store_attachments(conn, case_id, None, new.attachments)
    event = make_event(
        CaseSubmitted(
            reference=reference,
            channel=new.channel,
            subject=new.subject,
            description=new.description,
            reporter=reporter,
            anonymous=reporter is None,
            category=new.category,
            submitted_at=submitted_at,
            respondent_employee_ids=respondent_ids,
            respondents=[_plain_respondent(r) for r in new.respondents],
            urgent=new.urgent,
            injury=_plain_injury(new.injury),
            attachments=attachments,
            logged_by=new.logged_by,
            follows_up_case_id=new.follows_up_case_id,
        ),
        producer="intake",
        actor=new.actor,
        case_id=case_id,
        occurred_at=submitted_at,
    )
    await enqueue(conn, "intake", event)
    await history.record_written(
        conn,
        event,
        "submitted",
        actor_name=_submitter_name(new),
        channel=new.channel,
        reference=reference,
        attachments=len(attachments),
        logged_by=new.logged_by,
        submitted_by=new.submitted_by,
        follows_up_case_id=new.follows_up_case_id,
    )
    structlog.contextvars.bind_contextvars(case_id=str(case_id), event_id=str(event.event_id))
    log.info("case opened", reference=reference, channel=new.channel)
    return OpenedCase(case_id, reference, NEW_STATUS, event, attachments)


def _plain_respondent(respondent: RespondentNamed) -> RespondentNamed:
    # A door's subclass (its own input limits) travels as the event's own type.
    return RespondentNamed.model_validate(respondent.model_dump())


def _plain_injury(injury: InjuryDetails | None) -> InjuryDetails | None:
    return InjuryDetails.model_validate(injury.model_dump()) if injury else None


def _submitter_name(new: NewCase) -> str | None:
    if new.actor_name:
        return new.actor_name
    if new.actor.type == "employee" and new.reporter is not None:
        return new.reporter.name
    return None


async def add_message(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    reference: str,
    channel: Channel,
    sender_role: Literal["reporter", "agent", "anonymous_reporter"],
    body: str,
    actor: Actor,
    sender_employee_id: str | None = None,
    sender_email: str | None = None,
    email_message_id: str | None = None,
    attachments: tuple[NewAttachment, ...] = (),
    received_at: datetime | None = None,
    actor_name: str | None = None,
) -> tuple[UUID, Envelope]:
    """Record a message on a case, its `case.message_received` event and its history entry
    (`actor_name`: the sender's display name, if known)."""
    message_id = uuid4()
    received_at = received_at or utcnow()
    await store.insert_message(
        conn,
        message_id=message_id,
        case_id=case_id,
        channel=channel,
        sender_role=sender_role,
        sender_employee_id=sender_employee_id,
        sender_email=sender_email,
        body=body,
        email_message_id=email_message_id,
        received_at=received_at,
    )
    stored = await store_attachments(conn, case_id, message_id, attachments)
    event = make_event(
        CaseMessageReceived(
            reference=reference,
            channel=channel,
            sender_role=sender_role,
            body=body,
            attachments=stored,
            received_at=received_at,
        ),
        producer="intake",
        actor=actor,
        case_id=case_id,
        occurred_at=received_at,
    )
    await enqueue(conn, "intake", event)
    await history.record_written(
        conn,
        event,
        "message",
        actor_name=actor_name,
        message_id=message_id,
        sender_role=sender_role,
        channel=channel,
        attachments=len(stored),
    )
    await store.touch_case(conn, case_id, received_at)
    return message_id, event


async def store_attachments(
    conn: asyncpg.Connection,
    case_id: UUID,
    message_id: UUID | None,
    attachments: tuple[NewAttachment, ...],
) -> list[Attachment]:
    """Insert the files (and their metadata) in the caller's transaction; their references."""
    references = []
    for attachment in attachments:
        reference = attachment.reference(uuid4())
        await store.insert_attachment(
            conn,
            reference,
            case_id=case_id,
            message_id=message_id,
            content=attachment.content,
            claimed_type=attachment.claimed_type,
            uploaded_by=attachment.uploaded_by,
            evidence=attachment.evidence,
            staff_only=attachment.staff_only,
            note_id=attachment.note_id,
            description=attachment.description,
        )
        references.append(reference)
    return references


async def check_case_room(
    conn: asyncpg.Connection, case_id: UUID, attachments: tuple[NewAttachment, ...]
) -> None:
    """Refuse (413, naming the file) files that would take the case over MAX_CASE_BYTES."""
    if not attachments:
        return
    total = await store.case_files_bytes(conn, case_id)
    for attachment in attachments:
        total += len(attachment.content)
        if total > MAX_CASE_BYTES:
            raise Refused(
                "too_large",
                f"{attachment.filename!r} would take the case's files over"
                f" {MAX_CASE_BYTES // (1024 * 1024)} MiB in all",
            )
