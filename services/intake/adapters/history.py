"""A case's history (intake.case_history), related cases and the staff names intake knows."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.adapters.process_sql import process_role_holders
from services.intake.domain.history import Actor, CaseBefore, Cause, HistoryEntry


async def insert_entry(conn: asyncpg.Connection, entry: HistoryEntry) -> None:
    """Record one entry; the same event_id again (a redelivery) changes nothing."""
    await conn.execute(
        """INSERT INTO intake.case_history (event_id, case_id, occurred_at, event_type, kind,
               actor_type, actor_id, actor_name, causation_id, summary)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10::text::jsonb)
           ON CONFLICT (event_id) DO NOTHING""",
        entry.event_id,
        entry.case_id,
        entry.occurred_at,
        entry.event_type,
        entry.kind,
        entry.actor.type,
        entry.actor.id,
        entry.actor.name,
        entry.causation_id,
        # As text, whatever JSON codec the connection has; ids and instants as strings.
        json.dumps(entry.summary, default=str),
    )


async def list_entries(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID
) -> list[dict[str, Any]]:
    """A case's entries, oldest first, with the texts of messages and notes joined in
    (`text`) and a note's visibility (`internal`)."""
    rows = await conn.fetch(
        """SELECT h.event_id, h.occurred_at, h.event_type, h.kind, h.actor_type, h.actor_id,
                  h.actor_name, h.summary::text AS summary,
                  coalesce(m.body, n.body) AS text, n.internal
           FROM intake.case_history h
           LEFT JOIN intake.case_messages m
             ON h.kind = 'message' AND m.message_id = (h.summary->>'message_id')::uuid
           LEFT JOIN intake.case_notes n
             ON h.kind = 'note' AND n.note_id = (h.summary->>'note_id')::uuid
           WHERE h.case_id = $1
           ORDER BY h.occurred_at, h.position""",
        case_id,
    )
    return [{**dict(row), "summary": json.loads(row["summary"])} for row in rows]


async def staff_names(conn: asyncpg.Connection | asyncpg.Pool, ids: set[str]) -> dict[str, str]:
    """The latest display name intake holds for each staff id: a name stored with a staff
    member's own action, or the owner name routing sent with an assignment."""
    if not ids:
        return {}
    # One index probe per id (case_history_actor_idx, cases_owner_idx), however many
    # cases a person has worked.
    rows = await conn.fetch(
        """SELECT wanted.id, coalesce(
               (SELECT h.actor_name FROM intake.case_history h
                WHERE h.actor_id = wanted.id AND h.actor_name IS NOT NULL
                  AND h.actor_type IN ('agent', 'service', 'system')
                ORDER BY h.occurred_at DESC LIMIT 1),
               (SELECT c.owner_name FROM intake.cases c
                WHERE c.owner_id = wanted.id AND c.owner_name IS NOT NULL
                ORDER BY c.submitted_at DESC LIMIT 1)) AS name
           FROM unnest($1::text[]) AS wanted (id)""",
        sorted(ids),
    )
    return {row["id"]: row["name"] for row in rows if row["name"] is not None}


async def same_reporter(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    case_id: UUID,
    reporter_employee_id: str,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Other cases the same employee reported (never anonymous ones), newest first, with the
    columns that decide who may read them (the caller filters)."""
    rows = await conn.fetch(
        f"""SELECT case_id, reference, subject, status, submitted_at, reporter_employee_id,
                  anonymous, sensitivity, owner_id, logged_by, submitted_by,
                  {process_role_holders()}
           FROM intake.cases
           WHERE reporter_employee_id = $1 AND NOT anonymous AND case_id <> $2
           ORDER BY submitted_at DESC LIMIT $3""",
        reporter_employee_id,
        case_id,
        limit,
    )
    return [dict(row) for row in rows]


async def case_before(
    conn: asyncpg.Connection, case_id: UUID, causation_id: UUID | None
) -> tuple[CaseBefore | None, Cause | None]:
    """The values a routing event is about to change, the case row locked until commit
    (the projection that follows takes the same lock), and the recorded entry of the
    event's cause (`causation_id`; None when not recorded): one round trip, as every event
    intake consumes asks both. (None, None) for a case intake does not hold."""
    row = await conn.fetchrow(
        """SELECT c.category, c.owner_id, c.owner_name,
                  h.kind, h.actor_type, h.actor_id, h.actor_name
           FROM intake.cases c LEFT JOIN intake.case_history h ON h.event_id = $2
           WHERE c.case_id = $1 FOR UPDATE OF c""",
        case_id,
        causation_id,
    )
    if row is None:
        return None, None
    before = CaseBefore(row["category"], row["owner_id"], row["owner_name"])
    if row["kind"] is None:
        return before, None
    cause = Cause(row["kind"], Actor(row["actor_type"], row["actor_id"], row["actor_name"]))
    return before, cause
