"""Intake's tables (schema `intake`); only this module knows their SQL."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg


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
