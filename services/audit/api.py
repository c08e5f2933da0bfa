"""HTTP read side of the audit log: a case's entries, in chain order."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request

from services.audit.adapters.sql import case_entries
from services.audit.domain.chain import ChainEntry, format_timestamp

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def entry_view(entry: ChainEntry) -> dict[str, Any]:
    """An entry as JSON. prev_hash and schema_version are included so a reader can
    recompute each entry_hash (services/audit/domain/chain.py) without database access."""
    return {
        "seq": entry.seq,
        "event_id": str(entry.event_id),
        "event_type": entry.event_type,
        "schema_version": entry.schema_version,
        "occurred_at": format_timestamp(entry.occurred_at),
        "recorded_at": format_timestamp(entry.recorded_at),
        "producer": entry.producer,
        "actor": json.loads(entry.actor),
        "correlation_id": str(entry.correlation_id),
        "causation_id": str(entry.causation_id) if entry.causation_id else None,
        "payload": json.loads(entry.payload),
        "prev_hash": entry.prev_hash,
        "entry_hash": entry.entry_hash,
    }


@router.get("/cases/{case_id}")
async def case_log(case_id: UUID, request: Request) -> dict[str, Any]:
    async with request.app.state.runtime.pool.acquire() as conn:
        entries = await case_entries(conn, case_id)
    if not entries:
        raise HTTPException(status_code=404, detail="no audit entries for this case")
    return {"case_id": str(case_id), "entries": [entry_view(e) for e in entries]}
