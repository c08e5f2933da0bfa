"""Intake's statutory clock table (intake.statutory_clocks); only this module knows its SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

_LIST_COLUMNS = (
    "pack, clock, clock_key, conference_id, label, citation, basis, trigger, started_at,"
    " due_at, due_soon_at, state, breached_at, escalated_to_name, met_at, met_by, met_on_time"
)


async def insert_clock(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    pack: str,
    clock: str,
    conference_id: UUID | None,
    label: str,
    citation: str,
    basis: str,
    trigger: str,
    started_at: datetime,
    due_at: datetime,
    due_soon_at: datetime | None,
) -> None:
    """A started clock (a redelivered start changes nothing)."""
    await conn.execute(
        """INSERT INTO intake.statutory_clocks (case_id, pack, clock, clock_key, conference_id,
               label, citation, basis, trigger, started_at, due_at, due_soon_at, state)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'running')
           ON CONFLICT (case_id, pack, clock, clock_key) DO NOTHING""",
        case_id,
        pack,
        clock,
        str(conference_id) if conference_id else "",
        conference_id,
        label,
        citation,
        basis,
        trigger,
        started_at,
        due_at,
        due_soon_at,
    )


_UPDATABLE = frozenset(
    {"state", "breached_at", "escalated_to_name", "met_at", "met_by", "met_on_time"}
)


async def update_clock(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    pack: str,
    clock: str,
    conference_id: UUID | None,
    unless_state: tuple[str, ...] = (),
    **fields: Any,
) -> bool:
    """Set projected columns of one clock (skipped when it is in one of `unless_state`:
    a met clock never goes back to breached). False when intake has no such clock."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    exists = await conn.fetchval(
        """SELECT state FROM intake.statutory_clocks
           WHERE case_id = $1 AND pack = $2 AND clock = $3 AND clock_key = $4 FOR UPDATE""",
        case_id,
        pack,
        clock,
        str(conference_id) if conference_id else "",
    )
    if exists is None:
        return False
    if exists in unless_state:
        return True
    names = list(fields)
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=5))
    await conn.execute(
        f"""UPDATE intake.statutory_clocks SET {assignments}, updated_at = now()
            WHERE case_id = $1 AND pack = $2 AND clock = $3 AND clock_key = $4""",
        case_id,
        pack,
        clock,
        str(conference_id) if conference_id else "",
        *fields.values(),
    )
    return True


async def list_clocks(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID
) -> list[dict[str, Any]]:
    """A case's clocks: running ones first by due time, then the met ones."""
    rows = await conn.fetch(
        f"""SELECT {_LIST_COLUMNS} FROM intake.statutory_clocks WHERE case_id = $1
            ORDER BY state = 'met', due_at, pack, clock""",
        case_id,
    )
    return [dict(row) for row in rows]


async def clock_states(conn: asyncpg.Connection, case_id: UUID, pack: str, clock: str) -> list[str]:
    """The states of the case's instances of one clock (several per conference)."""
    rows = await conn.fetch(
        "SELECT state FROM intake.statutory_clocks WHERE case_id = $1 AND pack = $2 AND clock = $3",
        case_id,
        pack,
        clock,
    )
    return [row["state"] for row in rows]


async def team_time_zone(conn: asyncpg.Connection | asyncpg.Pool, team: str | None) -> str | None:
    """The IANA zone of the team's calendar, from routing's roster (None: unknown)."""
    if not team:
        return None
    value: Any = await conn.fetchval(
        """SELECT c.time_zone FROM intake.teams t JOIN intake.calendars c ON c.name = t.calendar
           WHERE t.team = $1""",
        team,
    )
    return value if isinstance(value, str) else None
