"""Documents on a case: staff add files (evidence, documents, a note's files); whoever may
read a case opens the files they may see.

Who sees which file: staff who may read the case see every file; the reporter (signed in,
or anonymous with the report's key) sees their own files, the files on messages and the
files staff shared, never evidence nor an internal note's files. Anyone else gets the same
404 as for a missing case. Staff reads of a confidential or restricted case's file are
audited (`audit.case_viewed`, view `<door>:document:<attachment_id>`), like case reads.
Each file staff add publishes `case.document_added` with its SHA-256, in the transaction
that stores it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal
from uuid import UUID

import asyncpg
import structlog

from services.intake.adapters import documents as files
from services.intake.application import actions, agent_actions, erased_cases
from services.intake.application.cases import NewAttachment, check_case_room, store_attachments
from services.intake.domain.case import NOTE_ROLES, AgentNote, sees_internal_notes
from services.intake.domain.documents import served_type
from services.intake.domain.refusals import Refused
from shared.auth import Principal, Role
from shared.envelope import Actor, Envelope
from shared.events import Attachment, CaseDocumentAdded, make_event
from shared.outbox import enqueue
from shared.service import Runtime
from shared.uow import unit_of_work

log = structlog.get_logger(__name__)

# Staff who may add documents: those who work a case (and may read it).
DOCUMENT_ROLES: tuple[Role, ...] = NOTE_ROLES
Door = Literal["api", "portal"]


@dataclass(frozen=True)
class StaffDocuments:
    """What staff say about the files they add (one request, one or more files)."""

    evidence: bool = False
    shared: bool = False  # the reporter may open them (never for evidence)
    description: str | None = None
    note_id: UUID | None = None


@dataclass(frozen=True)
class DocumentsAdded:
    case_id: UUID
    reference: str
    documents: list[Attachment]
    event_ids: list[UUID]


def description_of(text: str | None) -> str | None:
    """What staff wrote about the files: trimmed, at most 2000 characters, None if blank;
    a NUL (Postgres text cannot hold it) is a 422 naming the field."""
    if text and "\x00" in text:
        raise Refused("invalid", "description: must not contain NUL characters")
    if text and len(text.strip()) > 2000:
        raise Refused("invalid", "description: at most 2000 characters")
    return (text or "").strip() or None


def staff_files(
    principal: Principal, uploads: tuple[NewAttachment, ...], about: StaffDocuments
) -> tuple[NewAttachment, ...]:
    """The checked uploads, marked as staff's with what staff said about them."""
    if about.evidence and about.shared:
        raise Refused("invalid", "shared: evidence is never shared with the employee")
    return tuple(
        replace(
            upload,
            uploaded_by=principal.subject,
            evidence=about.evidence,
            staff_only=not about.shared,
            note_id=about.note_id,
            description=about.description,
        )
        for upload in uploads
    )


async def record_documents(
    conn: asyncpg.Connection,
    principal: Principal,
    case: dict[str, Any],
    uploads: tuple[NewAttachment, ...],
) -> tuple[list[Attachment], list[Envelope]]:
    """Store staff's files and their `case.document_added` events (caller's transaction)."""
    await check_case_room(conn, case["case_id"], uploads)
    stored = await store_attachments(conn, case["case_id"], None, uploads)
    events = []
    for upload, document in zip(uploads, stored, strict=True):
        event = make_event(
            CaseDocumentAdded(
                reference=case["reference"],
                document=document,
                evidence=upload.evidence,
                shared=not upload.staff_only,
                note_id=upload.note_id,
                description=upload.description,
            ),
            producer="intake",
            actor=Actor(type="agent", id=principal.subject),
            case_id=case["case_id"],
        )
        await enqueue(conn, "intake", event)
        events.append(event)
    return stored, events


async def add_documents(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    uploads: tuple[NewAttachment, ...],
    about: StaffDocuments,
) -> DocumentsAdded:
    """Staff add files to a case, or to one of its notes (`about.note_id`).

    403 without a staff role or on a case they reported, 404 when they may not read it or
    the note is not the case's, 409 on a closed case, 422 for no file or a refused type,
    413 for a file or a case over its limit. A note's files follow the note: an internal
    note's files are for staff only whatever `shared` says.
    """
    agent_actions.require_role(principal, DOCUMENT_ROLES, "adding documents")
    if not uploads:
        raise Refused("invalid", "files: choose at least one file")
    actions.check_attachment_count(len(uploads))
    async with unit_of_work(runtime) as uow:
        case = await agent_actions.case_to_act_on(uow.conn, principal, case_id, None)
        # Files are personal data (their content, and names sealed on the bus).
        await erased_cases.refuse_if_erased(uow.conn, case_id)
        if about.note_id is not None:
            internal = await files.note_of_case(uow.conn, case_id, about.note_id)
            if internal is None:
                raise Refused("not_found", "no such note on this case")
            about = replace(about, shared=about.shared and not internal)
        stored, events = await record_documents(
            uow.conn, principal, case, staff_files(principal, uploads, about)
        )
    structlog.contextvars.bind_contextvars(case_id=str(case_id))
    log.info("documents added", count=len(stored), agent=principal.subject)
    return DocumentsAdded(case_id, case["reference"], stored, [e.event_id for e in events])


async def add_note_with_files(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    note: AgentNote,
    uploads: tuple[NewAttachment, ...],
) -> agent_actions.ActionAccepted:
    """A note and its files in one transaction: `case.note_added`, then one
    `case.document_added` per file (with the note's id). The files follow the note: an
    internal note's files are for staff only, a shared note's the reporter may open."""
    if not uploads:
        return await agent_actions.add_note(runtime, principal, case_id, note)
    actions.check_attachment_count(len(uploads))

    async def files_of(conn: asyncpg.Connection, case: dict[str, Any], note_id: UUID) -> None:
        about = StaffDocuments(shared=not note.internal, note_id=note_id)
        await record_documents(conn, principal, case, staff_files(principal, uploads, about))

    return await agent_actions.add_note(runtime, principal, case_id, note, follow=files_of)


# --- Reading ---------------------------------------------------------------------------------


def is_staff_view(viewer: Principal, case: dict[str, Any]) -> bool:
    """Staff who may read the case: they see every file and who added it."""
    return sees_internal_notes(viewer, actions.facts(case))


def source_of(document: dict[str, Any]) -> str:
    """Where a listed file came from: reporter (with the case), message, note or staff."""
    if document["note_id"] is not None:
        return "note"
    if document["uploaded_by"] is not None:
        return "staff"
    return "message" if document["message_id"] is not None else "reporter"


def _visible(document: dict[str, Any], staff_view: bool) -> bool:
    return staff_view or not document["staff_only"]


async def documents_for(
    conn: asyncpg.Pool | asyncpg.Connection, case: dict[str, Any], viewer: Principal
) -> list[dict[str, Any]]:
    """The files on a case `viewer` (who may read it) may open, oldest first."""
    staff_view = is_staff_view(viewer, case)
    return await files.list_documents(conn, case["case_id"], staff_view=staff_view)


async def anonymous_documents(
    conn: asyncpg.Pool | asyncpg.Connection, case: dict[str, Any]
) -> list[dict[str, Any]]:
    return await files.list_documents(conn, case["case_id"], staff_view=False)


def _download(document: dict[str, Any]) -> actions.Download:
    return actions.Download(
        document["content"],
        served_type(document["content_type"], document["filename"]),
        document["filename"],
    )


async def open_document(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    attachment_id: UUID,
    client: actions.Client,
    *,
    door: Door,
) -> actions.Download:
    """A file of a case `principal` may read and may see; 404 otherwise (no such case,
    not theirs, no such file, or a staff-only file asked for by the reporter)."""
    view = f"{door}:document:{attachment_id}"
    case = await actions.readable_case(runtime, principal, case_id, client, view=view)
    document = await files.get_document(runtime.pool, case_id, attachment_id)
    staff_view = is_staff_view(principal, case)
    if document is None or not _visible(document, staff_view):
        raise Refused("not_found", "no such document")
    return _download(document)


async def open_anonymous_document(
    runtime: Runtime, case: dict[str, Any], attachment_id: UUID
) -> actions.Download:
    """A file of the anonymous reporter's case (found by reference and key) they may see."""
    document = await files.get_document(runtime.pool, case["case_id"], attachment_id)
    if document is None or not _visible(document, staff_view=False):
        raise Refused("not_found", "no such document")
    return _download(document)
