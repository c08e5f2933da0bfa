"""The case's files as the portal lists them (`_documents.html.j2`), for whoever looks."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from services.intake.application import documents
from services.intake.domain.case import CLOSED_STATUSES
from services.intake.entrypoints.portal.pages import TEMPLATES
from services.intake.entrypoints.web import runtime_of
from shared.auth import Principal

SOURCE_LABELS = {
    "reporter": "The employee",
    "message": "The employee, with a message",
    "note": "A note by HR",
    "staff": "HR",
}
DOCUMENTS_DONE = "Your documents were added to the case."


def _filesize(size: int) -> str:
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


TEMPLATES.filters["filesize"] = _filesize


def _label(row: dict[str, Any]) -> str:
    if row["sender_role"] == "agent":
        return "HR, with a message"
    return SOURCE_LABELS[documents.source_of(row)]


def _labelled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**row, "source_label": _label(row)} for row in rows]


async def documents_context(
    request: Request, principal: Principal, case: dict[str, Any]
) -> dict[str, Any]:
    """What `_documents.html.j2` shows on a signed-in person's case page."""
    runtime = runtime_of(request)
    staff_view = documents.is_staff_view(principal, case)
    rows = await documents.documents_for(runtime.pool, case, principal)
    return {
        "documents": _labelled(rows),
        "documents_staff": staff_view,
        "documents_form": staff_view
        and principal.has_any(*documents.DOCUMENT_ROLES)
        and case["status"] not in CLOSED_STATUSES,
        "documents_done": DOCUMENTS_DONE
        if request.query_params.get("done") == "documents"
        else None,
    }


async def anonymous_documents_context(request: Request, case: dict[str, Any]) -> dict[str, Any]:
    """What `_documents.html.j2` shows on the anonymous follow-up page."""
    rows = await documents.anonymous_documents(runtime_of(request).pool, case)
    return {"documents": _labelled(rows), "documents_staff": False, "documents_form": False}
