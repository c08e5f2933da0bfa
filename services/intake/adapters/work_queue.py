"""The work queue's SQL: one page of cases in deadline order, and the counts per scope.

Visibility is `visible_sql`: case_access (domain/case.py) as a predicate, so lists, counts
and searches never show a case its page would hide (a test checks the two agree on a grid
of cases and principals). Pages are keyset pages over (queue_due, case_id): stable while
cases come and go, and each page an index range (migration 0012's indexes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any

import asyncpg

from services.intake.domain.clocks import DUE_SOON_WITHIN
from services.intake.domain.work_queue import (
    COUNT_LIMIT,
    SCOPES,
    Cursor,
    Scope,
    Viewer,
    WorkQueueQuery,
)

ROW_COLUMNS = """case_id, reference, subject, status, priority, category, requested_category,
    channel, sensitivity, team, owner_id, owner_name, submitted_at, assignment_needed,
    first_response_due, first_response_state, first_response_left,
    resolution_due, resolution_state, resolution_left, queue_due"""
# Written exactly as the partial indexes' predicate, so the planner can use them.
OPEN_CASES = "status NOT IN ('resolved', 'closed')"


class Params:
    """Positional parameters ($1, $2, ...) collected while a statement is written."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _equals_any(column: str, values: Sequence[str], p: Params) -> str:
    # One value as `=`: an index on (column, queue_due) then yields rows already in order.
    if len(values) == 1:
        return f"{column} = {p(values[0])}"
    return f"{column} = ANY({p(list(values))}::text[])"


def _holds_process_role(ids: Sequence[str], p: Params) -> str:
    # intake_case_process_roles_staff_idx answers it; the primary key (case_id, role) too.
    return (
        "EXISTS (SELECT 1 FROM intake.case_process_roles pr"
        f" WHERE pr.case_id = intake.cases.case_id AND {_equals_any('pr.staff_id', ids, p)})"
    )


def visible_sql(viewer: Viewer, p: Params) -> str:
    """case_access for a member of staff, as SQL over intake.cases.

    Non-restricted cases (sensitivity set and not 'restricted') for all staff; restricted
    and unrouted ones (NULL sensitivity) for an HR manager, or when the case's owner,
    logger or submitter is the viewer, or the viewer holds a process role on it
    (intake.case_process_roles); and, as for anyone, the cases they reported (never an
    anonymous one).
    """
    if viewer.reads_restricted:
        return "TRUE"
    parts = ["sensitivity <> 'restricted'"]
    if viewer.ids:
        parts += [
            _equals_any(column, viewer.ids, p)
            for column in ("owner_id", "logged_by", "submitted_by")
        ]
        parts.append(_holds_process_role(viewer.ids, p))
    if viewer.reporter_ids:
        reported = _equals_any("reporter_employee_id", viewer.reporter_ids, p)
        parts.append(f"({reported} AND NOT anonymous)")
    return "(" + " OR ".join(parts) + ")"


def scope_sql(scope: Scope, viewer: Viewer, p: Params) -> str:
    if scope == "mine":
        # The cases they own and those they hold a process role on (an investigator's,
        # a case manager's cases).
        if not viewer.ids:
            return "FALSE"
        owned = _equals_any("owner_id", viewer.ids, p)
        return f"({owned} OR {_holds_process_role(viewer.ids, p)})"
    if scope == "team":
        return _equals_any("team", viewer.teams, p) if viewer.teams else "FALSE"
    if scope == "unassigned":
        return "owner_id IS NULL"
    return "TRUE"


def _utc_midnight(day: Any) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def filters_sql(query: WorkQueueQuery, viewer: Viewer, p: Params, now: datetime) -> list[str]:
    """Every condition but the scope and the cursor (the counts share them)."""
    where = [visible_sql(viewer, p)]
    where.append(_equals_any("status", query.status, p) if query.status else OPEN_CASES)
    if query.priority:
        where.append(_equals_any("priority", query.priority, p))
    if query.category:
        where.append(_equals_any("category", query.category, p))
    if query.channel:
        where.append(_equals_any("channel", query.channel, p))
    if query.team:
        where.append(_equals_any("team", query.team, p))
    if query.owner:
        where.append(f"owner_id = {p(query.owner)}")
    if query.sla == "breached":
        where.append(
            f"(queue_due <= {p(now)}"
            " OR (first_response_state = 'paused' AND first_response_left <= interval '0')"
            " OR (resolution_state = 'paused' AND resolution_left <= interval '0'))"
        )
    elif query.sla == "due_soon":
        where.append(f"queue_due > {p(now)} AND queue_due <= {p(now + DUE_SOON_WITHIN)}")
    if query.submitted_from:
        where.append(f"submitted_at >= {p(_utc_midnight(query.submitted_from))}")
    if query.submitted_to:
        where.append(f"submitted_at < {p(_utc_midnight(query.submitted_to) + timedelta(days=1))}")
    if query.q:
        text = f"search @@ websearch_to_tsquery('english', {p(query.q)})"
        prefix = query.reference_prefix
        if prefix:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            text = f"({text} OR reference LIKE {p(escaped + '%')})"
        where.append(text)
    return where


def page_sql(query: WorkQueueQuery, viewer: Viewer, now: datetime) -> tuple[str, list[Any]]:
    """The statement for one page (limit + 1 rows: the extra one says there is more)."""
    p = Params()
    where = filters_sql(query, viewer, p, now)
    where.append(scope_sql(query.scope, viewer, p))
    after: Cursor | None = query.after()
    if after is not None:
        where.append(f"(queue_due, case_id) > ({p(after.due)}, {p(after.case_id)})")
    statement = (
        f"SELECT {ROW_COLUMNS} FROM intake.cases WHERE {' AND '.join(where)}"
        f" ORDER BY queue_due, case_id LIMIT {p(query.limit + 1)}"
    )
    return statement, p.values


def counts_sql(query: WorkQueueQuery, viewer: Viewer, now: datetime) -> tuple[str, list[Any]]:
    """Each scope's count under the same filters as the page, counted up to COUNT_LIMIT + 1
    rows: each count reads at most that many matching index entries (covering indexes, no
    heap visit), where an exact count of every open case read them all (bench/work_queue)."""
    p = Params()
    columns = []
    for scope in SCOPES:
        where = [*filters_sql(query, viewer, p, now), scope_sql(scope, viewer, p)]
        columns.append(
            f"(SELECT count(*) FROM (SELECT 1 FROM intake.cases WHERE {' AND '.join(where)}"
            f" LIMIT {COUNT_LIMIT + 1}) AS capped) AS {scope}"
        )
    return f"SELECT {', '.join(columns)}", p.values


async def fetch_page(
    conn: asyncpg.Connection | asyncpg.Pool, query: WorkQueueQuery, viewer: Viewer, now: datetime
) -> tuple[list[dict[str, Any]], bool]:
    """(rows, more): at most `query.limit` rows and whether another page follows."""
    statement, values = page_sql(query, viewer, now)
    rows = [dict(row) for row in await conn.fetch(statement, *values)]
    return rows[: query.limit], len(rows) > query.limit


async def count_scopes(
    conn: asyncpg.Connection | asyncpg.Pool, query: WorkQueueQuery, viewer: Viewer, now: datetime
) -> dict[str, int]:
    """Scope -> cases, exact up to COUNT_LIMIT; COUNT_LIMIT + 1 means more than that."""
    statement, values = counts_sql(query, viewer, now)
    row = await conn.fetchrow(statement, *values)
    assert row is not None
    return {scope: int(row[scope]) for scope in SCOPES}
