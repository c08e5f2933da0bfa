"""intake.case_processes and intake.case_process_roles: the process a case is in, its
stage and who holds each process role, as routing announced them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

Row = dict[str, Any]


def process_role_holders(alias: str = "intake.cases") -> str:
    """A select-list column: the staff ids holding a process role on the case row `alias`
    (text[], empty when none), the `process_role_holders` of CaseFacts."""
    return (
        "(SELECT coalesce(array_agg(pr.staff_id ORDER BY pr.staff_id), '{}'::text[])"
        f" FROM intake.case_process_roles pr WHERE pr.case_id = {alias}.case_id)"
        " AS process_role_holders"
    )


def _row(record: asyncpg.Record) -> Row:
    row = dict(record)
    for key in ("stages", "endings"):
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


async def case_process(conn: asyncpg.Pool | asyncpg.Connection, case_id: UUID) -> Row | None:
    """The case's process row (process, label, stages, endings, stage, stage_label,
    stage_entered_at, target_at, due_soon_at, stage_state, ending, ending_reason,
    companion_allowed), or
    None while routing has not put the case in a process."""
    record = await conn.fetchrow("SELECT * FROM intake.case_processes WHERE case_id = $1", case_id)
    return _row(record) if record else None


async def role_holders(conn: asyncpg.Pool | asyncpg.Connection, case_id: UUID) -> dict[str, Row]:
    """role -> {staff_id, name, email, assigned_at} for the case's process roles."""
    rows = await conn.fetch(
        "SELECT role, staff_id, name, email, assigned_at FROM intake.case_process_roles"
        " WHERE case_id = $1",
        case_id,
    )
    return {row["role"]: dict(row) for row in rows}


async def holds_role(
    conn: asyncpg.Pool | asyncpg.Connection, case_id: UUID, staff_id: str | None
) -> bool:
    """True when `staff_id` holds any process role on the case."""
    if not staff_id:
        return False
    found = await conn.fetchval(
        "SELECT 1 FROM intake.case_process_roles WHERE case_id = $1 AND staff_id = $2",
        case_id,
        staff_id,
    )
    return found is not None


async def upsert_process(
    conn: asyncpg.Connection,
    case_id: UUID,
    *,
    process: str,
    label: str,
    stages: list[dict[str, Any]],
    endings: list[str],
    assigned_by: str,
    reason: str | None,
    companion_allowed: bool = True,
) -> None:
    # A new process starts without a stage: case.stage_entered (published after) sets it.
    await conn.execute(
        """INSERT INTO intake.case_processes
               (case_id, process, label, stages, endings, assigned_by, reason,
                companion_allowed)
           VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8)
           ON CONFLICT (case_id) DO UPDATE SET
               process = EXCLUDED.process, label = EXCLUDED.label,
               stages = EXCLUDED.stages, endings = EXCLUDED.endings,
               assigned_by = EXCLUDED.assigned_by, reason = EXCLUDED.reason,
               companion_allowed = EXCLUDED.companion_allowed,
               stage = NULL, stage_label = NULL, stage_entered_at = NULL,
               target_at = NULL, due_soon_at = NULL, stage_state = 'on_track',
               ending = NULL, ending_reason = NULL, updated_at = now()""",
        case_id,
        process,
        label,
        json.dumps(stages),
        json.dumps(endings),
        assigned_by,
        reason,
        companion_allowed,
    )


async def enter_stage(
    conn: asyncpg.Connection,
    case_id: UUID,
    *,
    stage: str,
    stage_label: str,
    entered_at: datetime,
    target_at: datetime | None,
    due_soon_at: datetime | None,
    ending: str | None,
    ending_reason: str | None,
) -> bool:
    """Set the case's stage; False when the case has no process row yet (retry)."""
    status = await conn.execute(
        """UPDATE intake.case_processes SET stage = $2, stage_label = $3,
               stage_entered_at = $4, target_at = $5, due_soon_at = $6,
               stage_state = CASE WHEN $7::text IS NULL THEN 'on_track' ELSE 'ended' END,
               ending = $7, ending_reason = $8, updated_at = now()
           WHERE case_id = $1""",
        case_id,
        stage,
        stage_label,
        entered_at,
        target_at,
        due_soon_at,
        ending,
        ending_reason,
    )
    return bool(status != "UPDATE 0")


async def mark_stage_clock(
    conn: asyncpg.Connection, case_id: UUID, *, stage: str, state: str
) -> None:
    """due_soon / overdue for the stage the case is still in (a stale timer is ignored)."""
    await conn.execute(
        """UPDATE intake.case_processes SET stage_state = $3, updated_at = now()
           WHERE case_id = $1 AND stage = $2 AND stage_state <> 'ended'""",
        case_id,
        stage,
        state,
    )


async def upsert_role(
    conn: asyncpg.Connection,
    case_id: UUID,
    *,
    role: str,
    staff_id: str,
    name: str,
    email: str,
    assigned_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO intake.case_process_roles
               (case_id, role, staff_id, name, email, assigned_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (case_id, role) DO UPDATE SET staff_id = EXCLUDED.staff_id,
               name = EXCLUDED.name, email = EXCLUDED.email,
               assigned_at = EXCLUDED.assigned_at""",
        case_id,
        role,
        staff_id,
        name,
        email,
        assigned_at,
    )


async def last_refusal(
    conn: asyncpg.Pool | asyncpg.Connection, case_id: UUID, request_types: tuple[str, ...]
) -> Row | None:
    """Routing's latest refusal of one of `request_types` on the case, from its history:
    {request_type, reason, refused_at}, or None."""
    row = await conn.fetchrow(
        """SELECT summary->>'request_type' AS request_type, summary->>'reason' AS reason,
                  occurred_at AS refused_at
           FROM intake.case_history
           WHERE case_id = $1 AND kind = 'request_refused'
             AND summary->>'request_type' = ANY($2::text[])
           ORDER BY occurred_at DESC, position DESC LIMIT 1""",
        case_id,
        list(request_types),
    )
    return dict(row) if row else None


async def declared_conflicts(conn: asyncpg.Pool | asyncpg.Connection, case_id: UUID) -> list[Row]:
    """Conflicts of interest declared on the case, oldest first, from its history:
    [{staff_id, staff_name, reason, declared_by, declared_at}]."""
    rows = await conn.fetch(
        """SELECT summary->>'staff_id' AS staff_id, summary->>'staff_name' AS staff_name,
                  summary->>'reason' AS reason, coalesce(actor_name, actor_id) AS declared_by,
                  occurred_at AS declared_at
           FROM intake.case_history
           WHERE case_id = $1 AND kind = 'conflict_declared'
           ORDER BY occurred_at, position""",
        case_id,
    )
    return [dict(row) for row in rows]


async def known_processes(conn: asyncpg.Pool | asyncpg.Connection) -> dict[str, str]:
    """process -> label for every process routing has put a case in (what intake knows
    of the policy's processes)."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (process) process, label FROM intake.case_processes"
        " ORDER BY process, updated_at DESC"
    )
    return {row["process"]: row["label"] for row in rows}
