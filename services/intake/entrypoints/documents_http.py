"""Intake's HTTP API for documents: the files on a case, adding them, opening them.

- GET /cases/{id}/documents: the files the caller may see (staff: all; the reporter: theirs,
  the messages' and the ones staff shared).
- POST /cases/{id}/documents (multipart: `files` (1-5), `description?`, `evidence`,
  `shared`, `note_id?`): staff who may read the case add files; `case.document_added` each.
- GET /cases/{id}/attachments/{attachment_id}: one file, always as a download.
- GET /anonymous-reports/{reference}/documents and .../attachments/{attachment_id}: the
  same for the anonymous reporter, with the key in X-Report-Key.
Whoever may not see a file gets 404, as for a missing case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile, status
from pydantic import BaseModel, Field

from services.intake.application import actions, documents
from services.intake.application.cases import NewAttachment
from services.intake.entrypoints.http import ACTION_RESPONSES, AttachmentView, ReportKey
from services.intake.entrypoints.web import (
    RefusalRoute,
    attachment_response,
    client_of,
    runtime_of,
)
from shared.auth import Principal, current_principal, require_roles

router = APIRouter(prefix="/api/v1", tags=["documents"], route_class=RefusalRoute)

Caller = Annotated[Principal, Depends(current_principal)]
DocumentTaker = Annotated[Principal, Depends(require_roles(*documents.DOCUMENT_ROLES))]


class DocumentView(BaseModel):
    attachment_id: UUID
    filename: str
    content_type: str = Field(description="the type detected from the file's bytes")
    size: int
    sha256: str
    created_at: datetime
    source: str = Field(description="reporter, message, note or staff")
    evidence: bool
    shared: bool = Field(description="the reporter may see and open it")
    note_id: UUID | None
    description: str | None
    uploaded_by: str | None = Field(description="the member of staff (staff views only)")
    download: str


class DocumentList(BaseModel):
    documents: list[DocumentView]


class DocumentsAccepted(BaseModel):
    case_id: UUID
    reference: str
    documents: list[AttachmentView]
    event_ids: list[UUID]


def document_view(row: dict[str, Any], download: str, *, staff_view: bool) -> DocumentView:
    return DocumentView(
        attachment_id=row["attachment_id"],
        filename=row["filename"],
        content_type=row["content_type"],
        size=row["size"],
        sha256=row["sha256"],
        created_at=row["created_at"],
        source=documents.source_of(row),
        evidence=row["evidence"],
        shared=not row["staff_only"],
        note_id=row["note_id"],
        description=row["description"],
        uploaded_by=row["uploaded_by"] if staff_view else None,
        download=download,
    )


async def read_uploads(uploads: list[UploadFile]) -> tuple[NewAttachment, ...]:
    """Each file checked (size 413, type 422, both naming the file); at most 5."""
    files = [upload for upload in uploads if upload.filename]
    actions.check_attachment_count(len(files))
    checked = []
    for upload in files:
        content = await upload.read(actions.MAX_ATTACHMENT_BYTES + 1)
        checked.append(actions.attachment(upload.filename or "file", upload.content_type, content))
    return tuple(checked)


@router.get("/cases/{case_id}/documents", response_model=DocumentList)
async def list_documents(case_id: UUID, request: Request, principal: Caller) -> DocumentList:
    runtime = runtime_of(request)
    case = await actions.readable_case(
        runtime, principal, case_id, client_of(request), view="api:documents"
    )
    rows = await documents.documents_for(runtime.pool, case, principal)
    staff_view = documents.is_staff_view(principal, case)
    return DocumentList(
        documents=[
            document_view(
                row,
                f"/api/v1/cases/{case_id}/attachments/{row['attachment_id']}",
                staff_view=staff_view,
            )
            for row in rows
        ]
    )


@router.post(
    "/cases/{case_id}/documents",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentsAccepted,
    responses={
        **ACTION_RESPONSES,
        413: {"description": "a file over 10 MiB, or the case's files over 50 MiB (named)"},
        422: {"description": "no file, or a type refused by its content (named)"},
    },
)
async def add_documents(
    case_id: UUID,
    request: Request,
    principal: DocumentTaker,
    files: Annotated[list[UploadFile], File(description="1 to 5 files")],
    description: Annotated[str | None, Form(max_length=2000)] = None,
    evidence: Annotated[bool, Form()] = False,
    shared: Annotated[bool, Form(description="show to the reporter (never evidence)")] = False,
    note_id: Annotated[UUID | None, Form(description="attach to this note of the case")] = None,
) -> DocumentsAccepted:
    """Store the files (type detected from their bytes) and publish `case.document_added`
    for each, with its SHA-256."""
    about = documents.StaffDocuments(
        evidence=evidence,
        shared=shared,
        description=documents.description_of(description),
        note_id=note_id,
    )
    added = await documents.add_documents(
        runtime_of(request), principal, case_id, await read_uploads(files), about
    )
    return DocumentsAccepted(
        case_id=added.case_id,
        reference=added.reference,
        documents=[AttachmentView.model_validate(d.model_dump()) for d in added.documents],
        event_ids=added.event_ids,
    )


@router.get("/cases/{case_id}/attachments/{attachment_id}", response_class=Response)
async def read_attachment(
    case_id: UUID, attachment_id: UUID, request: Request, principal: Caller
) -> Response:
    download = await documents.open_document(
        runtime_of(request), principal, case_id, attachment_id, client_of(request), door="api"
    )
    return attachment_response(download)


@router.get("/anonymous-reports/{reference}/documents", response_model=DocumentList)
async def anonymous_documents(reference: str, request: Request, key: ReportKey) -> DocumentList:
    runtime = runtime_of(request)
    case = await actions.anonymous_case(runtime, reference, key, client_of(request))
    rows = await documents.anonymous_documents(runtime.pool, case)
    base = f"/api/v1/anonymous-reports/{case['reference']}/attachments"
    return DocumentList(
        documents=[
            document_view(row, f"{base}/{row['attachment_id']}", staff_view=False) for row in rows
        ]
    )


@router.get("/anonymous-reports/{reference}/attachments/{attachment_id}", response_class=Response)
async def anonymous_attachment(
    reference: str, attachment_id: UUID, request: Request, key: ReportKey
) -> Response:
    runtime = runtime_of(request)
    case = await actions.anonymous_case(runtime, reference, key, client_of(request))
    response = attachment_response(
        await documents.open_anonymous_document(runtime, case, attachment_id)
    )
    return response
