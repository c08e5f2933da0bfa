"""The investigation as staff read it (GET /api/v1/cases/{id}/investigation and the
investigator's portal page): every fact, with the statements' review state, the evidence
log, current and superseded findings, the outcome with its approval state, the appeal
window and appeals. The read goes through `actions.readable_case`, so a staff read of a
confidential or restricted case is audited (audit.case_viewed) like any other read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.adapters import investigation_sql as store
from services.intake.adapters import process_sql
from services.intake.application import actions, agent_actions
from services.intake.application.actions import Client
from services.intake.domain.case import is_reporter
from services.intake.domain.investigations import (
    INVESTIGATION_ROLES,
    allegations_without_finding,
    appeal_window_open,
)
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.envelope import utcnow
from shared.service import Runtime

Case = dict[str, Any]


async def staff_case(
    runtime: Runtime, principal: Principal, case_id: UUID, client: Client, view: str
) -> Case:
    """The case for staff who may read it (403 without a staff role or for its reporter,
    404 when they may not read it); the read is audited as every staff read is."""
    agent_actions.require_role(principal, INVESTIGATION_ROLES, "reading an investigation")
    row = await actions.readable_case(runtime, principal, case_id, client, view=view)
    if is_reporter(principal, actions.facts(row)):
        raise Refused("forbidden", "this view is for the HR staff working the case")
    return row


async def investigation_of(
    conn: asyncpg.Pool | asyncpg.Connection, case: Case, *, now: datetime | None = None
) -> dict[str, Any]:
    """Everything recorded on the case's investigation (shapes: migration 0022's columns):
    process, roles, allegations (each with its current `finding`), measures, interviews,
    statements, evidence, findings (current and superseded), outcome, appeals,
    appeal_window {ends_at, open, closed_at}, missing_findings (allegation ids)."""
    case_id = case["case_id"]
    allegations = await store.list_allegations(conn, case_id)
    findings = await store.list_findings(conn, case_id)
    current = {f["allegation_id"]: f for f in findings if f["superseded_by"] is None}
    outcome = await store.current_outcome(conn, case_id)
    return {
        "case_id": case_id,
        "reference": case["reference"],
        "subject": case["subject"],
        "process": await process_sql.case_process(conn, case_id),
        "roles": await process_sql.role_holders(conn, case_id),
        "allegations": [{**a, "finding": current.get(a["allegation_id"])} for a in allegations],
        "measures": await store.list_measures(conn, case_id),
        "interviews": await store.list_interviews(conn, case_id),
        "statements": await store.list_statements(conn, case_id),
        "evidence": await store.list_evidence(conn, case_id),
        "findings": findings,
        "missing_findings": [
            a["allegation_id"] for a in allegations_without_finding(allegations, findings)
        ],
        "outcome": outcome,
        "appeals": await store.list_appeals(conn, case_id),
        "appeal_window": {
            "ends_at": outcome["appeal_window_ends_at"] if outcome else None,
            "closed_at": outcome["window_closed_at"] if outcome else None,
            "open": appeal_window_open(outcome, now or utcnow()),
        },
    }


async def staff_investigation(
    runtime: Runtime, principal: Principal, case_id: UUID, client: Client, *, view: str
) -> dict[str, Any]:
    """The case's investigation for staff who may read the case (see investigation_of)."""
    case = await staff_case(runtime, principal, case_id, client, view)
    return await investigation_of(runtime.pool, case)
