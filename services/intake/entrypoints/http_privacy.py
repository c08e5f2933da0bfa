"""Data-subject rights over HTTP (privacy officers only; README "Data-subject rights").

- POST /privacy/erasure-requests {employee_id | email, reason}: 201, the request.
- GET /privacy/erasure-requests, /privacy/erasure-requests/{id}: the requests / one.
- POST /privacy/erasure-requests/{id}/decision {decision: approve|refuse, reason, keep}:
  by a privacy officer other than the requester (403 otherwise), once (409 on a second).
- POST /privacy/access-requests {employee_id | email}: 201, the request, export ready.
- GET /privacy/access-requests: the requests (without exports).
- GET /privacy/access-requests/{id}/export?format=json|html: the export, as a download.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel

from services.intake.application import privacy_rights
from services.intake.domain.privacy_rights import (
    PRIVACY_ROLES,
    AccessRequestInput,
    ErasureDecisionInput,
    ErasureRequestInput,
)
from services.intake.entrypoints.web import RefusalRoute, client_of, runtime_of
from shared.auth import Principal, require_roles

router = APIRouter(prefix="/api/v1/privacy", tags=["privacy"], route_class=RefusalRoute)
Officer = Annotated[Principal, Depends(require_roles(*PRIVACY_ROLES))]
EXPORT_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "portal" / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class ErasureRequestView(BaseModel):
    request_id: UUID
    subject_id: str
    employee_id: str | None
    # The address the request named; cleared once the erasure is carried out.
    email: str | None
    reason: str
    requested_by: str
    requested_at: datetime
    # pending -> refused | erased | blocked (approved, but a legal hold stood in the way)
    status: Literal["pending", "refused", "erased", "blocked"]
    decision: Literal["approve", "refuse"] | None
    decision_reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    kept_case_ids: list[UUID]
    blocked_by: list[UUID]
    erased_case_ids: list[UUID]
    keys_destroyed: int


class ErasureRequestList(BaseModel):
    erasure_requests: list[ErasureRequestView]


class AccessRequestView(BaseModel):
    request_id: UUID
    subject_id: str
    employee_id: str | None
    email: str | None
    requested_by: str
    requested_at: datetime
    fulfilled_at: datetime | None
    export_available: bool
    # Where to download the export (JSON or a readable HTML page).
    export_url: str


class AccessRequestList(BaseModel):
    access_requests: list[AccessRequestView]


REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"description": "not a privacy officer; or the requester deciding their own request"},
    404: {"description": "no such request"},
    409: {"description": "already decided (a decision is final); an erased subject's export"},
}


def _access(row: dict[str, Any]) -> AccessRequestView:
    """A stored request (its `export`) or a listed one (`export_available`) as the API's."""
    available = row["export_available"] if "export_available" in row else row.get("export")
    fields = {k: row[k] for k in AccessRequestView.model_fields if k in row}
    fields["export_available"] = available is not None and available is not False
    fields["export_url"] = f"/api/v1/privacy/access-requests/{row['request_id']}/export"
    return AccessRequestView.model_validate(fields)


@router.post(
    "/erasure-requests",
    status_code=status.HTTP_201_CREATED,
    response_model=ErasureRequestView,
    responses=REFUSALS,
)
async def place_erasure_request(
    body: ErasureRequestInput, request: Request, principal: Officer
) -> ErasureRequestView:
    """Record an erasure request and publish `privacy.erasure_requested`."""
    row = await privacy_rights.place_erasure_request(runtime_of(request), principal, body)
    return ErasureRequestView.model_validate(row)


@router.get("/erasure-requests", response_model=ErasureRequestList, responses=REFUSALS)
async def list_erasure_requests(request: Request, principal: Officer) -> ErasureRequestList:
    """The latest 200 erasure requests, newest first (each read audited)."""
    rows = await privacy_rights.read_erasure_requests(
        runtime_of(request), principal, client_of(request)
    )
    return ErasureRequestList(erasure_requests=[ErasureRequestView.model_validate(r) for r in rows])


@router.get("/erasure-requests/{request_id}", response_model=ErasureRequestView, responses=REFUSALS)
async def read_erasure_request(
    request_id: UUID, request: Request, principal: Officer
) -> ErasureRequestView:
    rows = await privacy_rights.read_erasure_requests(
        runtime_of(request), principal, client_of(request), request_id
    )
    return ErasureRequestView.model_validate(rows[0])


@router.post(
    "/erasure-requests/{request_id}/decision",
    response_model=ErasureRequestView,
    responses={
        **REFUSALS,
        422: {"description": "invalid body; `keep` naming a case the data subject is not in"},
    },
)
async def decide_erasure_request(
    request_id: UUID, body: ErasureDecisionInput, request: Request, principal: Officer
) -> ErasureRequestView:
    """Approve or refuse, with a reason (see the module docstring). An approval not under
    a legal hold is carried out before the answer: keys destroyed, read model scrubbed,
    `privacy.data_subject_erased` published (status `erased`); under a hold: `blocked`."""
    decided = await privacy_rights.decide_erasure(runtime_of(request), principal, request_id, body)
    return ErasureRequestView.model_validate(decided.request)


@router.post(
    "/access-requests",
    status_code=status.HTTP_201_CREATED,
    response_model=AccessRequestView,
    responses=REFUSALS,
)
async def place_access_request(
    body: AccessRequestInput, request: Request, principal: Officer
) -> AccessRequestView:
    """Assemble everything hrcase holds about the person; download it at `export_url`."""
    row = await privacy_rights.place_access_request(runtime_of(request), principal, body)
    return _access(row)


@router.get("/access-requests", response_model=AccessRequestList, responses=REFUSALS)
async def list_access_requests(request: Request, principal: Officer) -> AccessRequestList:
    rows = await privacy_rights.read_access_requests(
        runtime_of(request), principal, client_of(request)
    )
    return AccessRequestList(access_requests=[_access(r) for r in rows])


@router.get(
    "/access-requests/{request_id}/export",
    responses={
        **REFUSALS,
        200: {
            "description": "the export: JSON (machine-readable) or HTML (readable)",
            "content": {"application/json": {}, "text/html": {}},
        },
    },
)
async def download_export(
    request_id: UUID,
    request: Request,
    principal: Officer,
    format: Annotated[Literal["json", "html"], Query()] = "json",
) -> Response:
    """The export as a download (`access-<id>.json` or `.html`); the read is audited."""
    row = await privacy_rights.read_export(
        runtime_of(request),
        principal,
        request_id,
        client_of(request),
        view=f"api:access_export:{format}",
    )
    return export_download(row["export"], request_id, format)


def export_download(export: Any, request_id: UUID, fmt: Literal["json", "html"]) -> Response:
    """An access export as a download (`access-<id>.json` or `.html`): the JSON document,
    or the readable page rendered from it; never cached, and the page sandboxed (it quotes
    what people wrote, escaped: it may style itself, nothing more). Used by the API and the
    portal's Privacy page."""
    headers = {
        "Content-Disposition": f'attachment; filename="access-{request_id}.{fmt}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'"
        ),
        "Referrer-Policy": "no-referrer",
    }
    if fmt == "html":
        page = EXPORT_TEMPLATES.get_template("privacy_export.html.j2").render(export=export)
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)
    body = json.dumps(export, ensure_ascii=False, indent=2)
    return Response(body, media_type="application/json", headers=headers)
