"""Intake's HTTP API: submit a case, read it back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
import structlog
from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from pydantic import BaseModel

from services.intake.adapters import sql
from services.intake.cases import NewCase, open_case
from services.intake.domain import SubmitCase
from shared.envelope import Actor
from shared.service import Runtime

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/v1", tags=["cases"])


class SubmitAccepted(BaseModel):
    case_id: UUID
    reference: str
    status: str


class Assignment(BaseModel):
    team: str | None
    owner_id: str | None
    owner_name: str | None


class Sla(BaseModel):
    first_response_due: datetime | None
    resolution_due: datetime | None


class CaseView(BaseModel):
    case_id: UUID
    reference: str
    status: str
    channel: str
    subject: str
    category: str | None
    sensitivity: str | None
    priority: str | None
    sla: Sla
    assignment: Assignment
    submitted_at: datetime
    routed_at: datetime | None
    assigned_at: datetime | None
    updated_at: datetime


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.post(
    "/cases",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmitAccepted,
    responses={409: {"description": "Idempotency-Key reused with a different request"}},
)
async def submit_case(
    body: SubmitCase,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> SubmitAccepted:
    """Record the case and its `case.submitted` event in one transaction (outbox)."""
    runtime = _runtime(request)
    fingerprint = body.fingerprint()
    for _ in range(2):  # a concurrent retry with the same key loses the race once, then reads
        try:
            async with runtime.pool.acquire() as conn, conn.transaction():
                if idempotency_key:
                    existing = await sql.find_idempotency_key(conn, idempotency_key)
                    if existing:
                        return _replay(existing, fingerprint, response)
                accepted = await _create_case(conn, body, fingerprint, idempotency_key)
            runtime.wake_relay()
            return accepted
        except asyncpg.UniqueViolationError:
            if not idempotency_key:
                raise
    raise HTTPException(status.HTTP_409_CONFLICT, "concurrent submissions with one key")


def _replay(existing: asyncpg.Record, fingerprint: str, response: Response) -> SubmitAccepted:
    if existing["request_hash"] != fingerprint:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "Idempotency-Key was already used for a different request",
        )
    response.headers["Idempotent-Replayed"] = "true"
    return SubmitAccepted(
        case_id=existing["case_id"], reference=existing["reference"], status=existing["status"]
    )


async def _create_case(
    conn: asyncpg.Connection, body: SubmitCase, fingerprint: str, idempotency_key: str | None
) -> SubmitAccepted:
    opened = await open_case(
        conn,
        NewCase(
            channel="api",
            subject=body.subject,
            description=body.description,
            reporter=body.reporter,
            category=body.category,
            actor=Actor(type="employee", id=body.reporter.employee_id),
        ),
    )
    if idempotency_key:
        await sql.save_idempotency_key(conn, idempotency_key, fingerprint, opened.case_id)
    return SubmitAccepted(case_id=opened.case_id, reference=opened.reference, status=opened.status)


@router.get("/cases/{case_id}", response_model=CaseView)
async def read_case(case_id: UUID, request: Request) -> CaseView:
    row = await sql.get_case(_runtime(request).pool, case_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
    return _view(row)


def _view(row: dict[str, Any]) -> CaseView:
    return CaseView(
        case_id=row["case_id"],
        reference=row["reference"],
        status=row["status"],
        channel=row["channel"],
        subject=row["subject"],
        category=row["category"],
        sensitivity=row["sensitivity"],
        priority=row["priority"],
        sla=Sla(first_response_due=row["first_response_due"], resolution_due=row["resolution_due"]),
        assignment=Assignment(
            team=row["team"], owner_id=row["owner_id"], owner_name=row["owner_name"]
        ),
        submitted_at=row["submitted_at"],
        routed_at=row["routed_at"],
        assigned_at=row["assigned_at"],
        updated_at=row["updated_at"],
    )
