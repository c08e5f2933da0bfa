"""The staff work queue page (/portal/work-queue): the staff landing page after sign-in.

A GET form (so a filtered queue is a link that can be shared or bookmarked) over the same
use case as GET /api/v1/work-queue.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError

from services.intake.adapters import roster
from services.intake.application import work_queue
from services.intake.domain.case import CATEGORIES
from services.intake.domain.refusals import Refused
from services.intake.domain.work_queue import (
    SCOPE_LABELS,
    SCOPES,
    WorkQueueQuery,
    may_use_queue,
)
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.portal.pages import (
    field_errors,
    guarded,
    portal_router,
    render,
    sign_in_redirect,
)
from services.intake.entrypoints.web import runtime_of

router = portal_router()
LIST_FIELDS = ("status", "priority", "category", "channel", "team")
FILTER_FIELDS = (*LIST_FIELDS, "sla", "owner", "submitted_from", "submitted_to", "q")
STATUS_CHOICES = (
    ("new", "New"),
    ("routed", "Routed"),
    ("assigned", "Assigned"),
    ("in_progress", "In progress"),
    ("waiting_on_employee", "Waiting on the employee"),
    ("resolved", "Resolved"),
    ("closed", "Closed"),
)


def _asked(request: Request) -> dict[str, Any]:
    """The query string as WorkQueueQuery's input; empty form fields are no filter."""
    params = request.query_params
    asked: dict[str, Any] = {}
    for name in {*params.keys()}:
        values = [v for v in params.getlist(name) if v != ""]
        if not values:
            continue
        asked[name] = values if name in LIST_FIELDS else values[-1]
    return asked


def link(params: dict[str, Any], **changes: Any) -> str:
    """/portal/work-queue with `params` (lists repeated) changed by `changes`."""
    merged = {**params, **changes}
    pairs = []
    for name, value in merged.items():
        if value is None or value == "" or value == []:
            continue
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name, str(item)))
    return "/portal/work-queue" + (f"?{urlencode(pairs)}" if pairs else "")


@router.get("/portal/work-queue")
async def work_queue_page(request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        asked = _asked(request)
        pool = runtime_of(request).pool
        try:
            query = WorkQueueQuery.model_validate(asked)
            errors: dict[str, str] = {}
        except ValidationError as exc:
            query, errors = WorkQueueQuery(), field_errors(exc)
        if not may_use_queue(principal):
            raise Refused("forbidden", "the work queue is for HR staff")
        found = await work_queue.work_queue(pool, principal, query)
        filters = {k: v for k, v in asked.items() if k in FILTER_FIELDS and not errors}
        return render(
            request,
            "work_queue.html.j2",
            422 if errors else 200,
            principal=principal,
            query=query,
            found=found,
            errors=errors,
            filters=filters,
            scopes=[(scope, SCOPE_LABELS[scope]) for scope in SCOPES],
            link=link,
            status_choices=STATUS_CHOICES,
            category_choices=sorted(CATEGORIES.items(), key=lambda item: item[1]),
            staff=sorted((await roster.staff_names(pool)).items(), key=lambda item: item[1]),
        )

    return await guarded(request, page)
