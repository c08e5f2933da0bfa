"""The email adapter: the only module of this package that knows SQL (schema `intake`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

import asyncpg

from services.intake.domain.email.threads import KnownCase

# Rows recorded before content digests (digest '') still stand for their message while
# a sending server may retry it (RFC 5321 suggests giving up after 4-5 days).
LEGACY_REDELIVERY_WINDOW = timedelta(days=7)


async def claim_message(conn: asyncpg.Connection, message_id: str, digest: str) -> bool:
    """True if this message (Message-ID *and* content digest) is new. A concurrent delivery
    of the same message waits on the primary key until ours commits, then sees the
    conflict: one case, never two. A different message reusing the Message-ID is new."""
    legacy = await conn.fetchval(
        "SELECT true FROM intake.email_messages WHERE message_id = $1 AND content_digest = ''"
        " AND direction = 'inbound' AND recorded_at > now() - $2::interval",
        message_id,
        LEGACY_REDELIVERY_WINDOW,
    )
    if legacy:
        return False
    claimed = await conn.fetchval(
        "INSERT INTO intake.email_messages (message_id, content_digest, direction)"
        " VALUES ($1, $2, 'inbound') ON CONFLICT (message_id, content_digest) DO NOTHING"
        " RETURNING true",
        message_id,
        digest,
    )
    return bool(claimed)


async def case_of_message(
    conn: asyncpg.Connection, message_id: str, digest: str
) -> KnownCase | None:
    """The case a message was recorded on (a legacy row stands for any digest)."""
    row = await conn.fetchrow(
        """SELECT c.case_id, c.reference, c.reporter_email
             FROM intake.email_messages e JOIN intake.cases c USING (case_id)
            WHERE e.message_id = $1 AND e.content_digest IN ($2, '')
            ORDER BY e.content_digest DESC LIMIT 1""",
        message_id,
        digest,
    )
    return KnownCase(row["case_id"], row["reference"], row["reporter_email"]) if row else None


async def cases_by_message_ids(
    conn: asyncpg.Connection, message_ids: Sequence[str]
) -> list[KnownCase]:
    """Cases that the given Message-IDs belong to, in the order of `message_ids`.

    One Message-ID may name several cases (different messages that reused it): all are
    returned, oldest first, and the party rule (threads.choose_case) picks among them.
    """
    if not message_ids:
        return []
    rows = await conn.fetch(
        """SELECT e.message_id, c.case_id, c.reference, c.reporter_email
             FROM intake.email_messages e JOIN intake.cases c USING (case_id)
            WHERE e.message_id = ANY($1::text[])
            ORDER BY e.recorded_at, c.case_id""",
        list(message_ids),
    )
    by_id: dict[str, list[KnownCase]] = {}
    for row in rows:
        by_id.setdefault(row["message_id"], []).append(
            KnownCase(row["case_id"], row["reference"], row["reporter_email"])
        )
    return [case for m in message_ids for case in by_id.get(m, [])]


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


async def link_message(
    conn: asyncpg.Connection, message_id: str, digest: str, case_id: UUID
) -> None:
    await conn.execute(
        "UPDATE intake.email_messages SET case_id = $3"
        " WHERE message_id = $1 AND content_digest = $2",
        message_id,
        digest,
        case_id,
    )


async def expect_notifications(
    conn: asyncpg.Connection, case_id: UUID, message_ids: Sequence[str]
) -> None:
    await conn.executemany(
        "INSERT INTO intake.email_messages (message_id, case_id, direction)"
        " VALUES ($1, $2, 'notification') ON CONFLICT (message_id, content_digest) DO NOTHING",
        [(message_id, case_id) for message_id in message_ids],
    )
