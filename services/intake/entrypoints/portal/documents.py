"""Documents in the portal: the case page's list and upload form, and opening a file.

Signed-in people open files by link (session + the same access rule as the API); the
anonymous reporter opens theirs by posting the report's reference and key from the
follow-up page, so the key never travels in a URL.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import Request
from fastapi.responses import Response

from services.intake.application import actions, documents
from services.intake.domain.refusals import Refused
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.portal.case_view import render_case
from services.intake.entrypoints.portal.pages import (
    csrf_form,
    guarded,
    portal_router,
    see_other,
    sign_in_redirect,
    text,
    uploads,
)
from services.intake.entrypoints.web import (
    as_http_error,
    attachment_response,
    client_of,
    runtime_of,
)

router = portal_router()


@router.get("/portal/cases/{case_id}/attachments/{attachment_id}")
async def open_document(case_id: UUID, attachment_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        download = await documents.open_document(
            runtime_of(request),
            principal,
            case_id,
            attachment_id,
            client_of(request),
            door="portal",
        )
        return attachment_response(download)

    return await guarded(request, page)


@router.post("/portal/cases/{case_id}/documents")
async def add_documents(case_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        form = await csrf_form(request)
        values = {
            name: text(form, name)
            for name in ("documents_description", "documents_evidence", "documents_shared")
        }
        try:
            about = documents.StaffDocuments(
                evidence=values["documents_evidence"] == "yes",
                shared=values["documents_shared"] == "yes",
                description=documents.description_of(values["documents_description"]),
            )
            files = await uploads(form, "documents_files")
            await documents.add_documents(runtime_of(request), principal, case_id, files, about)
        except Refused as refused:
            if refused.kind not in {"invalid", "too_large", "conflict"}:
                raise
            field = "documents_files"
            for named in ("shared", "description"):
                if refused.detail.startswith(f"{named}:"):
                    field = f"documents_{named}"
            return await render_case(
                request,
                principal,
                case_id,
                errors={field: refused.detail},
                values=values,
                status_code=as_http_error(refused).status_code,
            )
        return see_other(f"/portal/cases/{case_id}?done=documents#documents")

    return await guarded(request, page)


@router.post("/portal/anonymous/attachments/{attachment_id}")
async def open_anonymous_document(attachment_id: UUID, request: Request) -> Response:
    async def page() -> Response:
        form = await csrf_form(request)
        runtime = runtime_of(request)
        case = await actions.anonymous_case(
            runtime, text(form, "reference"), text(form, "secret_key"), client_of(request)
        )
        download = await documents.open_anonymous_document(runtime, case, attachment_id)
        return attachment_response(download)

    return await guarded(request, page)
