"""The email adapter: the only module of this package that knows SQL (schema `intake`)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from services.intake.email.threads import KnownCase


async def claim_message_id(conn: asyncpg.Connection, message_id: str) -> bool:
    """True if this Message-ID is new. A concurrent delivery of the same message waits on
    the primary key until ours commits, then sees the conflict: one case, never two."""
    claimed = await conn.fetchval(
        "INSERT INTO intake.email_messages (message_id, direction) VALUES ($1, 'inbound')"
        " ON CONFLICT (message_id) DO NOTHING RETURNING true",
        message_id,
    )
    return bool(claimed)


async def case_of_message(conn: asyncpg.Connection, message_id: str) -> KnownCase | None:
    rows = await cases_by_message_ids(conn, [message_id])
    return rows[0] if rows else None


async def cases_by_message_ids(
    conn: asyncpg.Connection, message_ids: Sequence[str]
) -> list[KnownCase]:
    """Cases that the given Message-IDs belong to, in the order of `message_ids`."""
    if not message_ids:
        return []
    rows = await conn.fetch(
        """SELECT e.message_id, c.case_id, c.reference, c.reporter_email
             FROM intake.email_messages e JOIN intake.cases c USING (case_id)
            WHERE e.message_id = ANY($1::text[])""",
        list(message_ids),
    )
    by_id = {row["message_id"]: row for row in rows}
    return [
        KnownCase(by_id[m]["case_id"], by_id[m]["reference"], by_id[m]["reporter_email"])
        for m in message_ids
        if m in by_id
    ]


async def cases_by_reference(
    conn: asyncpg.Connection, references: Sequence[str]
) -> list[KnownCase]:
    if not references:
        return []
    rows = await conn.fetch(
        "SELECT case_id, reference, reporter_email FROM intake.cases"
        " WHERE reference = ANY($1::text[])",
        list(references),
    )
    by_reference = {row["reference"]: row for row in rows}
    return [
        KnownCase(by_reference[r]["case_id"], r, by_reference[r]["reporter_email"])
        for r in references
        if r in by_reference
    ]


async def link_message(conn: asyncpg.Connection, message_id: str, case_id: UUID) -> None:
    await conn.execute(
        "UPDATE intake.email_messages SET case_id = $2 WHERE message_id = $1", message_id, case_id
    )


async def expect_notifications(
    conn: asyncpg.Connection, case_id: UUID, message_ids: Sequence[str]
) -> None:
    await conn.executemany(
        "INSERT INTO intake.email_messages (message_id, case_id, direction)"
        " VALUES ($1, $2, 'notification') ON CONFLICT (message_id) DO NOTHING",
        [(message_id, case_id) for message_id in message_ids],
    )
