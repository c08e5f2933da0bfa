"""Routing's roster as intake keeps it (intake.roster, teams, staff, calendars)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.domain.clocks import CLOCK_NAMES
from shared.events import RoutingRosterPublished
from shared.working_time import WorkingCalendar, calendar_from_spec

# Built calendars memoise their days: keep one per distinct definition across requests.
_CALENDARS: dict[tuple[str, str, tuple[date, ...]], WorkingCalendar] = {}


async def replace_roster(
    conn: asyncpg.Connection, roster: RoutingRosterPublished, published_at: datetime
) -> bool:
    """Store `roster` unless a later one is stored already (redeliveries, an older
    process's roster arriving late). Returns whether it was stored."""
    stored = await conn.fetchval(
        "SELECT published_at FROM intake.roster WHERE singleton FOR UPDATE"
    )
    if stored is not None and stored > published_at:
        return False
    await conn.execute(
        """INSERT INTO intake.roster (singleton, policy_hash, version, published_at)
           VALUES (true, $1, $2, $3) ON CONFLICT (singleton) DO UPDATE
           SET policy_hash = $1, version = $2, published_at = $3""",
        roster.policy_hash,
        roster.version,
        published_at,
    )
    await conn.execute("DELETE FROM intake.calendars")
    await conn.execute("DELETE FROM intake.teams")
    await conn.execute("DELETE FROM intake.staff")
    await conn.executemany(
        "INSERT INTO intake.calendars (name, time_zone, hours, holidays) VALUES ($1, $2, $3, $4)",
        [(c.name, c.time_zone, c.hours, c.holidays) for c in roster.calendars],
    )
    await conn.executemany(
        "INSERT INTO intake.teams (team, label, lead_id, calendar) VALUES ($1, $2, $3, $4)",
        [(t.team, t.label, t.lead, t.calendar) for t in roster.teams],
    )
    people: dict[str, dict[str, Any]] = {}
    for team in roster.teams:
        for member in team.members:
            person = people.setdefault(
                member.id, {"name": member.name, "email": str(member.email), "teams": []}
            )
            person["teams"].append(team.team)
    for member in roster.staff:
        people.setdefault(member.id, {"name": member.name, "email": str(member.email), "teams": []})
    await conn.executemany(
        "INSERT INTO intake.staff (staff_id, name, email, teams) VALUES ($1, $2, $3, $4)",
        [(key, v["name"], v["email"], v["teams"]) for key, v in people.items()],
    )
    return True


async def teams_of(
    conn: asyncpg.Connection | asyncpg.Pool, ids: tuple[str, ...]
) -> tuple[str, ...]:
    """The teams the person with any of `ids` belongs to or leads."""
    rows = await conn.fetch(
        """SELECT unnest(teams) AS team FROM intake.staff WHERE staff_id = ANY($1::text[])
           UNION SELECT team FROM intake.teams WHERE lead_id = ANY($1::text[])""",
        list(ids),
    )
    return tuple(sorted(row["team"] for row in rows))


async def team_calendars(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, WorkingCalendar]:
    """Each team's working calendar (empty until the first roster arrives)."""
    rows = await conn.fetch(
        """SELECT t.team, c.time_zone, c.hours, c.holidays
           FROM intake.teams t JOIN intake.calendars c ON c.name = t.calendar"""
    )
    return {
        row["team"]: calendar_of(row["time_zone"], row["hours"], row["holidays"]) for row in rows
    }


def calendar_of(time_zone: str, hours: dict[str, Any] | str, holidays: Any) -> WorkingCalendar:
    """The working calendar of one intake.calendars row (`hours` decoded or as JSON text),
    built once per distinct spec."""
    # The service's pools decode jsonb (shared.db); a raw pool or a ::text column gives
    # text, which jsonb prints in one canonical form: a key as it is, parsed on a miss only.
    text = hours if isinstance(hours, str) else json.dumps(hours, sort_keys=True)
    key = (time_zone, text, tuple(holidays))
    calendar = _CALENDARS.get(key)
    if calendar is None:
        spec = hours if isinstance(hours, dict) else json.loads(hours)
        calendar = calendar_from_spec(time_zone, spec, tuple(holidays))
        _CALENDARS[key] = calendar
    return calendar


async def case_clocks(
    conn: asyncpg.Connection, case_id: UUID, new_team: str | None = None
) -> tuple[dict[str, Any], WorkingCalendar | None, WorkingCalendar | None] | None:
    """The case's team and clock columns (`<clock>_state/_due/_left`), with the working
    calendar of its team and of `new_team` (default: its team; None: no calendar named),
    in one round trip instead of the case row and every team's calendar; None for a case
    intake does not hold."""
    clock_columns = ", ".join(
        f"c.{name}_{part}" for name in CLOCK_NAMES for part in ("state", "due", "left")
    )
    row = await conn.fetchrow(
        f"""SELECT c.team, {clock_columns},
                   old.time_zone AS old_time_zone, old.hours::text AS old_hours,
                   old.holidays AS old_holidays,
                   new.time_zone AS new_time_zone, new.hours::text AS new_hours,
                   new.holidays AS new_holidays
            FROM intake.cases c
            LEFT JOIN intake.teams ot ON ot.team = c.team
            LEFT JOIN intake.calendars old ON old.name = ot.calendar
            LEFT JOIN intake.teams nt ON nt.team = coalesce($2, c.team)
            LEFT JOIN intake.calendars new ON new.name = nt.calendar
            WHERE c.case_id = $1""",
        case_id,
        new_team,
    )
    if row is None:
        return None
    calendars = [
        calendar_of(row[f"{side}_time_zone"], row[f"{side}_hours"], row[f"{side}_holidays"])
        if row[f"{side}_time_zone"] is not None
        else None
        for side in ("old", "new")
    ]
    return dict(row), calendars[0], calendars[1]


async def staff_names(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, str]:
    rows = await conn.fetch("SELECT staff_id, name FROM intake.staff")
    return {row["staff_id"]: row["name"] for row in rows}


async def team_labels(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, str]:
    """Each team's label by its key (routing's roster), in label order."""
    rows = await conn.fetch("SELECT team, label FROM intake.teams ORDER BY label, team")
    return {row["team"]: row["label"] for row in rows}
