"""HTTP read side of the audit record, for auditors only; every read of a case is recorded.

A read of a case's record is appended to the chain (`audit.case_viewed`) before the
record is returned: if the read cannot be recorded, nothing is shown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from services.audit.adapters.checkpoints import CheckpointFile, current_database
from services.audit.adapters.sql import ACCESS_EVENT_TYPES, access_entries, case_entries
from services.audit.application.export import export_case
from services.audit.application.personal import opened_entries
from services.audit.application.records import Reader, record_view
from services.audit.config import AuditSettings
from services.audit.domain.chain import ChainEntry, format_timestamp, stored_object
from services.audit.domain.export import entry_record
from services.audit.domain.replay import replay
from services.audit.domain.timeline import current_payload, summarise, timeline
from shared.auth import Principal, require_roles
from shared.envelope import utcnow
from shared.service import Runtime

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

# Reading case records is the auditor's job alone: admins operate the system but do not
# read case content (least privilege; an admin who needs it is given the role, visibly).
Auditor = Annotated[Principal, Depends(require_roles("auditor"))]


def entry_view(entry: ChainEntry) -> dict[str, Any]:
    """An entry as JSON. prev_hash and schema_version are included so a reader can
    recompute each entry_hash (services/audit/domain/chain.py) without database access.
    Unreadable stored values are shown as in the export (domain.export.entry_record)."""
    record = entry_record(entry)
    return {k: record[k] for k in _VIEW_KEYS}


_VIEW_KEYS = (
    "seq", "event_id", "event_type", "schema_version", "occurred_at", "recorded_at",
    "producer", "actor", "correlation_id", "causation_id", "payload", "prev_hash",
    "entry_hash", "entry_version", "producer_user", "problems",
)  # fmt: skip


def _utc(value: datetime | None, name: str) -> datetime | None:
    """A query instant in UTC; 422 (not a 500) for one without offset or beyond UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise HTTPException(status_code=422, detail=f"`{name}` needs a UTC offset, e.g. ...Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise HTTPException(status_code=422, detail=f"`{name}` is out of range") from None


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def reader_of(principal: Principal, request: Request) -> Reader:
    return Reader(
        subject=principal.subject,
        roles=tuple(sorted(principal.roles)),
        client_ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        forwarded_for=request.headers.get("x-forwarded-for"),
    )


async def _opened(
    request: Request, principal: Principal, entries: list[ChainEntry], view: str
) -> list[ChainEntry]:
    """The entries with personal data opened for `principal` (the key access is logged
    with who read it and how)."""
    purpose = f"audit {view} read by {principal.subject}"
    return await opened_entries(_runtime(request).keys, entries, purpose=purpose)


def _is_access(entry: ChainEntry) -> bool:
    return entry.event_type in ACCESS_EVENT_TYPES


async def _read_case(
    request: Request, principal: Principal, case_id: UUID, view: str, as_of: str | None = None
) -> list[ChainEntry]:
    """Record the read, then return the case's entries; 404 if the log knows no event of
    the case (the attempt stays recorded: probing is worth knowing about)."""
    async with _runtime(request).pool.acquire() as conn:
        await record_view(
            conn, case_id=case_id, reader=reader_of(principal, request), view=view, as_of=as_of
        )
        entries = await case_entries(conn, case_id)
    if not any(not _is_access(e) for e in entries):
        raise HTTPException(status_code=404, detail="no audit entries for this case")
    return entries


@router.get("/cases/{case_id}")
async def case_log(
    case_id: UUID,
    request: Request,
    principal: Auditor,
    include_access: Annotated[bool, Query(description="Include reads of the record")] = False,
) -> dict[str, Any]:
    """The case's raw entries in chain order, with the hashes to recompute them.

    `payload` is as stored and hashed (personal fields sealed); `payload_opened`, on an
    entry with personal data, the same with those fields opened ("[erased]" once the
    data subject's key is destroyed)."""
    entries = await _read_case(request, principal, case_id, "entries")
    shown = [e for e in entries if include_access or not _is_access(e)]
    opened = await _opened(request, principal, shown, "entries")
    views = []
    for stored, clear in zip(shown, opened, strict=True):
        view = entry_view(stored)
        if clear is not stored:
            view["payload_opened"] = stored_object(clear.payload)[0]
        views.append(view)
    return {"case_id": str(case_id), "entries": views}


@router.get("/cases/{case_id}/timeline")
async def case_timeline(
    case_id: UUID,
    request: Request,
    principal: Auditor,
    include_access: Annotated[bool, Query(description="Include reads of the record")] = False,
) -> dict[str, Any]:
    """Every event of the case: who, when, a sentence, and the fields it changed."""
    entries = await _read_case(request, principal, case_id, "timeline")
    entries = await _opened(request, principal, entries, "timeline")
    items = timeline(case_id, entries)
    if not include_access:
        items = [i for i in items if i["event_type"] not in ACCESS_EVENT_TYPES]
    return {
        "case_id": str(case_id),
        "reference": replay(case_id, entries).reference,
        "items": items,
    }


@router.get("/cases/{case_id}/state")
async def case_state(
    case_id: UUID,
    request: Request,
    principal: Auditor,
    at: Annotated[
        datetime | None, Query(description="ISO 8601 instant with offset; default now")
    ] = None,
) -> dict[str, Any]:
    """The case as it was at `at`, rebuilt from the log alone."""
    instant = _utc(at, "at") or utcnow()
    entries = await _read_case(
        request, principal, case_id, "state", as_of=format_timestamp(instant)
    )
    entries = await _opened(request, principal, entries, "state")
    state = replay(case_id, entries, at=instant)
    return {"at": format_timestamp(instant), "state": state.as_dict()}


@router.post("/cases/{case_id}/export")
async def case_export(case_id: UUID, request: Request, principal: Auditor) -> dict[str, Any]:
    """A case file for legal proceedings: JSON document and its HTML rendering."""
    runtime = _runtime(request)
    async with runtime.pool.acquire() as conn:
        database = await current_database(conn)
        sink = CheckpointFile.for_database(AuditSettings().checkpoint_dir, database)
        checked = sink.check(database=database, keys=runtime.state.get("public_keys", []))
        case_file = await export_case(
            conn,
            case_id,
            reader_of(principal, request),
            checkpoints=checked,
            now=utcnow(),
            keys=runtime.keys,
        )
    if case_file is None:
        raise HTTPException(status_code=404, detail="no audit entries for this case")
    return {
        "export_sha256": case_file.sha256,
        "recorded_seq": case_file.recorded_seq,
        "document": case_file.document,
        "html": case_file.html,
    }


@router.get("/access")
async def access_log(
    request: Request,
    principal: Auditor,
    case_id: UUID | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    """Who read which case record, when and from where (newest first)."""
    since, until = _utc(since, "since"), _utc(until, "until")
    async with _runtime(request).pool.acquire() as conn:
        entries = await access_entries(
            conn, case_id=case_id, subject=subject, since=since, until=until, limit=limit
        )
    items = []
    for e in entries:
        payload = current_payload(e, stored_object(e.payload)[0] or {})
        actor = stored_object(e.actor)[0] or {}
        items.append(
            {
                "seq": e.seq,
                "at": format_timestamp(e.occurred_at),
                "case_id": str(e.case_id) if e.case_id else None,
                "event_type": e.event_type,
                "producer": e.producer,
                # A read names its reader "viewer" (audit.case_viewed, upcast); an export
                # "subject"; anything else only in the actor.
                "subject": payload.get("viewer") or payload.get("subject") or actor.get("id"),
                "view": payload.get("view"),
                "as_of": payload.get("as_of"),
                "client_ip": payload.get("client_ip"),
                "user_agent": payload.get("user_agent"),
                "forwarded_for": payload.get("forwarded_for"),
                "summary": summarise(e.event_type, payload),
            }
        )
    return {"items": items}
