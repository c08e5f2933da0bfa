"""SQL of the case analytics projection (intake.case_analytics, intake.employee_departments)
and of the follow-through figures read straight from the conference and agreement tables."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.adapters.analytics_engine import VERSION_LOCK
from services.intake.domain.analytics_facts import HistoryFact


async def case_inputs(
    conn: asyncpg.Connection, case_id: UUID
) -> tuple[asyncpg.Record, list[HistoryFact]] | None:
    """The case's row (with process, conference, department, respondents and the owning
    team's calendar) and its history in order, in one round trip; None for a case intake
    does not hold."""
    row = await conn.fetchrow(
        """SELECT c.case_id, c.category, c.channel, c.team, c.status, c.submitted_at,
                  c.routed_at, c.anonymous, c.reporter_employee_id,
                  coalesce(c.sensitivity, 'restricted') = 'restricted' AS restricted,
                  c.first_response_due, c.resolution_due, c.conference_required_at,
                  p.process, p.stage,
                  (SELECT CASE WHEN bool_or(f.status IN ('held', 'summarised', 'completed'))
                               THEN 'held'
                               WHEN bool_or(f.status IN ('requested', 'planned'))
                               THEN 'planned' END
                   FROM intake.conferences f WHERE f.case_id = c.case_id) AS conference,
                  (SELECT d.department FROM intake.employee_departments d
                   WHERE d.employee_id = c.reporter_employee_id) AS department,
                  ARRAY(SELECT DISTINCT r.resolved_employee_id FROM intake.case_respondents r
                        WHERE r.case_id = c.case_id AND r.resolved_employee_id IS NOT NULL
                        ORDER BY 1) AS respondent_ids,
                  -- The history in the same round trip, as (occurred_at, kind, summary)
                  -- records; summary as text (a record's jsonb skips the JSON codec).
                  ARRAY(SELECT ROW(h.occurred_at, h.kind, h.summary::text)
                        FROM intake.case_history h
                        WHERE h.case_id = c.case_id AND h.kind IN
                            ('status_changed', 'message', 'reopened', 'sla_breached', 'escalated')
                        ORDER BY h.occurred_at, h.position) AS history,
                  -- The owning team's calendar (roster.calendar_of; NULL: none named).
                  k.time_zone AS calendar_time_zone, k.hours::text AS calendar_hours,
                  k.holidays AS calendar_holidays
           FROM intake.cases c LEFT JOIN intake.case_processes p ON p.case_id = c.case_id
                LEFT JOIN intake.teams t ON t.team = c.team
                LEFT JOIN intake.calendars k ON k.name = t.calendar
           WHERE c.case_id = $1""",
        case_id,
    )
    if row is None:
        return None
    history = [
        HistoryFact(occurred_at, kind, json.loads(summary))
        for occurred_at, kind, summary in row["history"]
    ]
    return row, history


FACT_COLUMNS = (
    "category",
    "channel",
    "team",
    "department",
    "reporter_key",
    "respondent_ids",
    "restricted",
    "status",
    "submitted_at",
    "first_response_at",
    "first_response_due",
    "first_response_working_s",
    "first_response_met",
    "resolved_at",
    "resolution_due",
    "resolution_working_s",
    "resolution_met",
    "reopen_count",
    "first_response_breached",
    "resolution_breached",
    "escalations",
    "process",
    "stage",
    "conference",
)


async def upsert_fact(conn: asyncpg.Connection, case_id: UUID, fact: dict[str, Any]) -> None:
    """Write the case's fact row, taking a new version only when something changed (so an
    event that changes nothing the dashboard counts syncs nothing)."""
    names = ", ".join(FACT_COLUMNS)
    params = ", ".join(f"${i}" for i in range(2, len(FACT_COLUMNS) + 2))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in FACT_COLUMNS)
    changed = " OR ".join(f"a.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in FACT_COLUMNS)
    lock = f"${len(FACT_COLUMNS) + 2}"
    # The shared version lock (see engine) is taken by the same statement, before the row
    # and its version are written: one round trip instead of two on every event.
    await conn.execute(
        f"""INSERT INTO intake.case_analytics AS a (case_id, {names})
            SELECT $1, {params} FROM (SELECT pg_advisory_xact_lock_shared({lock})) AS version_lock
            ON CONFLICT (case_id) DO UPDATE SET {updates},
                version = nextval('intake.case_analytics_version_seq')
            WHERE {changed}""",
        case_id,
        *(fact[c] for c in FACT_COLUMNS),
        VERSION_LOCK,
    )


async def set_department(
    conn: asyncpg.Connection, employee_id: str, department: str | None, at: datetime
) -> None:
    """Remember the employee's department and fill it on their cases' fact rows."""
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", VERSION_LOCK)  # see engine
    await conn.execute(
        """INSERT INTO intake.employee_departments (employee_id, department, updated_at)
           VALUES ($1, $2, $3)
           ON CONFLICT (employee_id) DO UPDATE SET department = EXCLUDED.department,
               updated_at = EXCLUDED.updated_at
           WHERE intake.employee_departments.updated_at <= EXCLUDED.updated_at""",
        employee_id,
        department,
        at,
    )
    await conn.execute(
        """UPDATE intake.case_analytics a
           SET department = d.department, version = nextval('intake.case_analytics_version_seq')
           FROM intake.employee_departments d
           WHERE d.employee_id = $1 AND a.reporter_key = $1
             AND a.department IS DISTINCT FROM d.department""",
        employee_id,
    )


async def follow_through(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    starts_at: datetime,
    ends_before: datetime,
    now: datetime,
    team: str | None,
    category: str | None,
) -> dict[str, dict[str, int]]:
    """Conference actions and agreement obligations due in [starts_at, ends_before) of the
    cases under the filters: {kind: {on_time, late, overdue_open, open}}."""
    rows = await conn.fetch(
        """WITH scope AS (
               SELECT case_id FROM intake.cases
               WHERE ($4::text IS NULL OR team = $4) AND ($5::text IS NULL OR category = $5)
           ), items AS (
               SELECT 'conference_action' AS kind,
                      (a ->> 'due_at')::timestamptz AS due_at,
                      a ->> 'status' = 'done' AS done,
                      coalesce((a ->> 'on_time')::boolean, false) AS on_time
               FROM intake.conferences f JOIN scope USING (case_id),
                    jsonb_array_elements(f.actions) a
               WHERE f.status NOT IN ('cancelled', 'refused')
                 AND coalesce(a ->> 'status', 'open') IN ('open', 'replanned', 'done')
               UNION ALL
               SELECT 'agreement_obligation', o.due_at, o.state = 'met',
                      o.state = 'met' AND o.met_on <= (o.due_at AT TIME ZONE 'UTC')::date
               FROM intake.mediation_obligations o JOIN scope USING (case_id)
           )
           SELECT kind,
                  count(*) FILTER (WHERE done AND on_time) AS on_time,
                  count(*) FILTER (WHERE done AND NOT on_time) AS late,
                  count(*) FILTER (WHERE NOT done AND due_at <= $3) AS overdue_open,
                  count(*) FILTER (WHERE NOT done AND due_at > $3) AS open
           FROM items WHERE due_at >= $1 AND due_at < $2 GROUP BY kind""",
        starts_at,
        ends_before,
        now,
        team,
        category,
    )
    return {
        r["kind"]: {k: int(r[k]) for k in ("on_time", "late", "overdue_open", "open")} for r in rows
    }
