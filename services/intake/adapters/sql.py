"""Intake's tables (schema `intake`); only this module knows their SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.domain import SubmitCase


async def next_reference_number(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT nextval('intake.case_reference_seq')"))


async def insert_case(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    reference: str,
    channel: str,
    request: SubmitCase,
    status: str,
    submitted_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO intake.cases (case_id, reference, channel, subject, description,
               reporter_employee_id, reporter_name, reporter_email, requested_category,
               status, submitted_at, updated_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$11)""",
        case_id,
        reference,
        channel,
        request.subject,
        request.description,
        request.reporter.employee_id,
        request.reporter.name,
        str(request.reporter.email),
        request.category,
        status,
        submitted_at,
    )


async def find_idempotency_key(conn: asyncpg.Connection, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT k.request_hash, c.case_id, c.reference, c.status"
        " FROM intake.idempotency_keys k JOIN intake.cases c USING (case_id) WHERE k.key = $1",
        key,
    )


async def save_idempotency_key(
    conn: asyncpg.Connection, key: str, request_hash: str, case_id: UUID
) -> None:
    await conn.execute(
        "INSERT INTO intake.idempotency_keys (key, request_hash, case_id) VALUES ($1, $2, $3)",
        key,
        request_hash,
        case_id,
    )


async def get_case(conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM intake.cases WHERE case_id = $1", case_id)
    return dict(row) if row else None


async def lock_case_status(conn: asyncpg.Connection, case_id: UUID) -> str | None:
    status = await conn.fetchval(
        "SELECT status FROM intake.cases WHERE case_id = $1 FOR UPDATE", case_id
    )
    return str(status) if status is not None else None


async def update_case(conn: asyncpg.Connection, case_id: UUID, **fields: Any) -> None:
    """Set read-model columns; names come from our own code, never from input."""
    columns = list(fields)
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, start=2))
    await conn.execute(
        f"UPDATE intake.cases SET {assignments}, updated_at = now() WHERE case_id = $1",
        case_id,
        *(fields[name] for name in columns),
    )
