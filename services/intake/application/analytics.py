"""The HR dashboard's figures (issue #13), read from the case analytics projection.

Every figure counts the cases submitted in the period (Period: whole UTC days) under the
filters, restricted ones included, and obeys the disclosure policy of
services.intake.domain.analytics (small-cell suppression). The backlog and the cases per
process stage are the cases open now that were submitted up to the period's end. The
figures come from the in-process DuckDB replica of `intake.case_analytics`
(adapters/analytics_engine.py), brought up to date with Postgres before each answer;
follow-through is read from the conference and agreement tables in Postgres.

Use: `source = source_for(runtime)` (one per process, made on first use), then
`await dashboard(source, viewer, period, filters)`, `await case_counts(...)`,
`await sla_table(...)`. Reading figures views no case: nothing is audited as a case read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import asyncpg
import structlog

from services.intake.adapters import analytics_sql, legal_hold_sql, roster
from services.intake.adapters.analytics_engine import AnalyticsEngine
from services.intake.application import analytics_projection
from services.intake.config import AnalyticsConfig
from services.intake.domain.analytics import (
    AGE_BANDS,
    Cell,
    CountRow,
    CountTable,
    Dashboard,
    Filters,
    FollowThroughRow,
    GroupBy,
    Period,
    Recurring,
    RecurringPerson,
    ReopenRate,
    RisingCategory,
    SlaGroupBy,
    SlaRow,
    SlaTable,
    cell,
    disclosed_stat,
    hours,
    percent,
    recurring_label,
    suppress_table,
    week_start,
)
from services.intake.domain.case import CATEGORIES
from services.intake.domain.legal_holds import LegalHoldCounts
from services.intake.domain.work_queue import OPEN_STATUSES, Viewer

if TYPE_CHECKING:
    import duckdb

    from shared.service import Runtime

log = structlog.get_logger()

CHANNEL_LABELS = {"portal": "Portal", "email": "Email", "phone": "Phone", "api": "API"}
UNSET = "(none)"  # the key of cases without a category or team yet
RECURRING_LIMIT = 20
WORK_QUEUE = "/portal/work-queue"


@dataclass(frozen=True)
class AnalyticsSource:
    """Where the figures come from: Postgres (the truth) and the process's replica."""

    pool: asyncpg.Pool
    engine: AnalyticsEngine
    threshold: int


def source_for(runtime: Runtime) -> AnalyticsSource:
    """The process's one analytics source, made on first use (closed with the runtime)."""
    source = runtime.state.get("analytics")
    if isinstance(source, AnalyticsSource):
        return source
    config = AnalyticsConfig.from_env()
    engine = AnalyticsEngine(config.cache_dir, memory_limit=config.memory_limit)

    async def close() -> None:
        engine.close()

    runtime.closers.append(close)
    source = AnalyticsSource(runtime.pool, engine, config.min_cell)
    runtime.state["analytics"] = source
    return source


async def prepare_at_start(runtime: Runtime) -> None:
    """At service start, in the background: fact rows for the cases held before the
    projection existed (application/analytics_projection.backfill), then, when
    ANALYTICS_WARM_AT_START is on (default off), the replica loaded, so the first dashboard
    after a restart does not wait for the cold load. Failures are logged; both run again
    at the next start and the first dashboard loads the replica anyway."""
    try:
        written = await analytics_projection.backfill(runtime.pool)
    except Exception:
        log.exception("analytics backfill failed; it runs again at the next start")
        return
    if written:
        log.info("analytics fact rows backfilled", rows=written)
    if not AnalyticsConfig.from_env().warm_at_start:
        return
    source = source_for(runtime)
    try:
        await source.engine.read(runtime.pool, lambda _db: None)
    except Exception:
        log.exception("analytics replica not loaded; the first dashboard loads it")
        return
    log.info("analytics replica loaded", rows=source.engine.rows_held)


# --- Queries over the replica (run in its worker thread) ---------------------------------


def _scope(period: Period, filters: Filters, *, open_now: bool = False) -> tuple[str, list[Any]]:
    """WHERE clause and parameters: submitted in the period (or open and submitted by its
    end) under the filters."""
    start = period.starts_at.replace(tzinfo=None)
    end = period.ends_before.replace(tzinfo=None)
    if open_now:
        where = ["submitted_at < ?", f"status IN {OPEN_STATUSES!r}"]
        params: list[Any] = [end]
    else:
        where, params = ["submitted_at >= ?", "submitted_at < ?"], [start, end]
    if filters.team is not None:
        where.append("team = ?")
        params.append(filters.team)
    if filters.category is not None:
        where.append("category = ?")
        params.append(filters.category)
    return " AND ".join(where), params


def _counts(
    db: duckdb.DuckDBPyConnection, key: str, period: Period, filters: Filters
) -> dict[str, int]:
    where, params = _scope(period, filters)
    rows = db.execute(
        f"SELECT coalesce(CAST({key} AS VARCHAR), '{UNSET}'), count(*) FROM facts"
        f" WHERE {where} GROUP BY 1",
        params,
    ).fetchall()
    return {str(k): int(n) for k, n in rows}


def _week_counts(
    db: duckdb.DuckDBPyConnection,
    period: Period,
    filters: Filters,
    counts: dict[str, int] | None = None,
) -> dict[str, int]:
    """Every week (its Monday) the period touches, zeros included."""
    if counts is None:
        where, params = _scope(period, filters)
        rows = db.execute(
            f"SELECT CAST(date_trunc('week', submitted_at) AS DATE), count(*) FROM facts"
            f" WHERE {where} GROUP BY 1",
            params,
        ).fetchall()
        counts = {monday.isoformat(): int(n) for monday, n in rows}
    weeks: dict[str, int] = {}
    day = week_start(period.start)
    while day <= period.end:
        weeks[day.isoformat()] = counts.get(day.isoformat(), 0)
        day += timedelta(days=7)
    return weeks


# GROUPING(category, channel, team, week) of each grouping set: the bit of every column
# the set leaves out is 1.
_VOLUME_SETS = {7: "category", 11: "channel", 13: "team", 14: "week"}


def _volumes(
    db: duckdb.DuckDBPyConnection, period: Period, filters: Filters
) -> dict[str, dict[str, int]]:
    """Cases per category, channel, team and week in one scan (the dashboard's four)."""
    where, params = _scope(period, filters)
    rows = db.execute(
        f"""SELECT GROUPING(category, channel, team, week), category, channel, team, week,
                   count(*)
            FROM (SELECT coalesce(category, '{UNSET}') AS category, channel,
                         coalesce(team, '{UNSET}') AS team,
                         CAST(date_trunc('week', submitted_at) AS DATE) AS week
                  FROM facts WHERE {where})
            GROUP BY GROUPING SETS ((category), (channel), (team), (week))""",
        params,
    ).fetchall()
    found: dict[str, dict[str, int]] = {name: {} for name in _VOLUME_SETS.values()}
    for grouping, category, channel, team, week, n in rows:
        name = _VOLUME_SETS[int(grouping)]
        key = {"category": category, "channel": channel, "team": team, "week": week}[name]
        found[name][key.isoformat() if name == "week" else str(key)] = int(n)
    return found


def _stats(
    db: duckdb.DuckDBPyConnection, period: Period, filters: Filters
) -> dict[str, tuple[Any, ...]]:
    where, params = _scope(period, filters)
    rows = db.execute(
        f"""SELECT coalesce(team, '{UNSET}'),
               count(*),
               count(first_response_working_s),
               quantile_cont(first_response_working_s, 0.5),
               quantile_cont(first_response_working_s, 0.9),
               count(first_response_met), count(*) FILTER (WHERE first_response_met),
               count(resolution_working_s),
               quantile_cont(resolution_working_s, 0.5),
               quantile_cont(resolution_working_s, 0.9),
               count(resolution_met), count(*) FILTER (WHERE resolution_met),
               sum(first_response_breached::INTEGER + resolution_breached::INTEGER),
               sum(escalations)
            FROM facts WHERE {where} GROUP BY 1""",
        params,
    ).fetchall()
    return {str(r[0]): tuple(r[1:]) for r in rows}


def _backlog(
    db: duckdb.DuckDBPyConnection, period: Period, filters: Filters, now: datetime
) -> dict[str, int]:
    where, params = _scope(period, filters, open_now=True)
    naive_now = now.astimezone(UTC).replace(tzinfo=None)
    bands = " ".join(
        f"WHEN submitted_at <= ? - INTERVAL '{int(lower.total_seconds())} seconds' THEN '{key}'"
        for key, _label, lower in reversed(AGE_BANDS[1:])
    )
    rows = db.execute(
        f"SELECT CASE {bands} ELSE '{AGE_BANDS[0][0]}' END, count(*) FROM facts"
        f" WHERE {where} GROUP BY 1",
        [naive_now] * (len(AGE_BANDS) - 1) + params,
    ).fetchall()
    found = {str(k): int(n) for k, n in rows}
    return {key: found.get(key, 0) for key, _label, _lower in AGE_BANDS}


def _reopens(db: duckdb.DuckDBPyConnection, period: Period, filters: Filters) -> tuple[int, int]:
    where, params = _scope(period, filters)
    row = db.execute(
        "SELECT count(*) FILTER (WHERE reopen_count > 0),"
        " count(*) FILTER (WHERE resolved_at IS NOT NULL OR reopen_count > 0)"
        f" FROM facts WHERE {where}",
        params,
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _words(key: str) -> str:
    return key.replace("_", " ")


def _stages(
    db: duckdb.DuckDBPyConnection, period: Period, filters: Filters
) -> tuple[dict[str, int], dict[str, int]]:
    where, params = _scope(period, filters, open_now=True)
    stages = [
        (f"{_words(process).capitalize()}: {_words(stage) if stage else 'not started'}", n)
        for process, stage, n in db.execute(
            f"SELECT process, stage, count(*) FROM facts"
            f" WHERE {where} AND process IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
            params,
        ).fetchall()
    ]
    conferences = db.execute(
        f"SELECT conference, count(*) FROM facts WHERE {where} AND conference IS NOT NULL"
        " GROUP BY 1",
        params,
    ).fetchall()
    found = {str(k): int(n) for k, n in conferences}
    return (
        {str(k): int(n) for k, n in stages},
        {k: found.get(k, 0) for k in ("required", "planned", "held")},
    )


def _people(
    db: duckdb.DuckDBPyConnection, column: str, period: Period, filters: Filters
) -> list[tuple[str, int, bool]]:
    """(person id, cases, all of them restricted) for people in two cases or more."""
    where, params = _scope(period, filters)
    source = (
        f"(SELECT unnest(respondent_ids) AS person, restricted FROM facts WHERE {where})"
        if column == "respondent_ids"
        else f"(SELECT reporter_key AS person, restricted FROM facts WHERE {where}"
        " AND reporter_key IS NOT NULL)"
    )
    rows = db.execute(
        f"SELECT person, count(*), bool_and(restricted) FROM {source}"
        " GROUP BY 1 HAVING count(*) >= 2 ORDER BY 2 DESC, 1 LIMIT ?",
        [*params, RECURRING_LIMIT],
    ).fetchall()
    return [(str(p), int(n), bool(r)) for p, n, r in rows]


def _rising(
    db: duckdb.DuckDBPyConnection, period: Period, filters: Filters
) -> list[tuple[str, str, int, int]]:
    now_where, now_params = _scope(period, filters)
    before_where, before_params = _scope(period.previous(), filters)
    rows = db.execute(
        f"""WITH cur AS (SELECT department, category, count(*) AS n FROM facts
                         WHERE {now_where} AND department IS NOT NULL
                           AND category IS NOT NULL GROUP BY 1, 2),
                 prev AS (SELECT department, category, count(*) AS n FROM facts
                          WHERE {before_where} AND department IS NOT NULL
                            AND category IS NOT NULL GROUP BY 1, 2)
            SELECT cur.department, cur.category, cur.n, coalesce(prev.n, 0)
            FROM cur LEFT JOIN prev USING (department, category)
            WHERE cur.n >= 2 AND cur.n > coalesce(prev.n, 0)
            ORDER BY cur.n - coalesce(prev.n, 0) DESC, 1, 2 LIMIT ?""",
        [*now_params, *before_params, RECURRING_LIMIT],
    ).fetchall()
    return [(str(d), str(c), int(n), int(p)) for d, c, n, p in rows]


# --- Figures -------------------------------------------------------------------------------


ALL_STATUSES = (*OPEN_STATUSES, "resolved", "closed")


def _link(period: Period | None, **filters: str | None) -> str:
    """The staff work queue ("all I may see") with the row's filters: with a period, every
    case submitted in it whatever its status; without, the open cases (the backlog)."""
    pairs: list[tuple[str, str]] = [("scope", "all")]
    if period is not None:
        pairs += [("status", status) for status in ALL_STATUSES]
        pairs += [
            ("submitted_from", period.start.isoformat()),
            ("submitted_to", period.end.isoformat()),
        ]
    pairs += [(k, v) for k, v in filters.items() if v is not None]
    return f"{WORK_QUEUE}?{urlencode(pairs)}"


def _label(group_by: str, key: str) -> str:
    if key == UNSET:
        return "Not yet known"
    if group_by == "category":
        return CATEGORIES.get(key, key)
    if group_by == "channel":
        return CHANNEL_LABELS.get(key, key)
    if group_by == "week":
        return f"Week of {date.fromisoformat(key):%d %b %Y}"
    return key


def _table(
    group_by: str,
    counts: dict[str, int],
    threshold: int,
    links: dict[str, str | None] | None = None,
    labels: dict[str, str] | None = None,
) -> CountTable:
    cells, total = suppress_table(counts, threshold)
    rows = [
        CountRow(
            key,
            (labels or {}).get(key) or _label(group_by, key),
            cells[key],
            (links or {}).get(key),
        )
        for key in counts
    ]
    return CountTable(group_by, rows, total, threshold)


def _ordered(group_by: GroupBy, counts: dict[str, int]) -> dict[str, int]:
    """Every known category or channel (zeros too), then any other key; teams by name."""
    known: Sequence[str] = (
        list(CATEGORIES)
        if group_by == "category"
        else list(CHANNEL_LABELS)
        if group_by == "channel"
        else []
    )
    ordered = {k: counts.get(k, 0) for k in known}
    for key in sorted(counts):
        ordered.setdefault(key, counts[key])
    return ordered


def _count_table(
    db: duckdb.DuckDBPyConnection,
    period: Period,
    filters: Filters,
    group_by: GroupBy,
    threshold: int,
    counted: dict[str, int] | None = None,
    team_labels: dict[str, str] | None = None,
) -> CountTable:
    """The table of one grouping; `counted`: its counts if already taken (_volumes);
    `team_labels`: teams' names by key (routing's roster), for the team grouping."""
    if group_by == "week":
        counts = _week_counts(db, period, filters, counted)
        links: dict[str, str | None] = {
            k: _link(
                Period(
                    max(date.fromisoformat(k), period.start),
                    min(date.fromisoformat(k) + timedelta(days=6), period.end),
                ),
                category=filters.category,
                team=filters.team,
            )
            for k in counts
        }
        return _table("week", counts, threshold, links)
    found = counted if counted is not None else _counts(db, group_by, period, filters)
    counts = _ordered(group_by, found)
    links = {}
    for key in counts:
        if key == UNSET:
            links[key] = None  # the work queue has no "not yet known" filter
        else:
            row = {"category": filters.category, "team": filters.team, group_by: key}
            links[key] = _link(period, **row)
    labels = team_labels if group_by == "team" else None
    return _table(group_by, counts, threshold, links, labels)


def _sla(
    db: duckdb.DuckDBPyConnection,
    period: Period,
    filters: Filters,
    threshold: int,
    team_labels: dict[str, str] | None = None,
) -> SlaTable:
    stats = _stats(db, period, filters)
    team_cells, _total = suppress_table({t: int(s[0]) for t, s in sorted(stats.items())}, threshold)
    rows = []
    for team, s in sorted(stats.items()):
        (_n, fr_n, fr_med, fr_p90, frm_n, frm_yes, rs_n, rs_med, rs_p90, rsm_n, rsm_yes) = s[:11]
        breaches, escalations = int(s[11] or 0), int(s[12] or 0)
        rows.append(
            SlaRow(
                team=team if team != UNSET else "Not yet known",
                cases=team_cells[team],
                first_response_median_h=disclosed_stat(hours(fr_med), fr_n, threshold),
                first_response_p90_h=disclosed_stat(hours(fr_p90), fr_n, threshold),
                first_response_met_pct=percent(frm_yes, frm_n, threshold),
                resolution_median_h=disclosed_stat(hours(rs_med), rs_n, threshold),
                resolution_p90_h=disclosed_stat(hours(rs_p90), rs_n, threshold),
                resolution_met_pct=percent(rsm_yes, rsm_n, threshold),
                breaches=cell(breaches, threshold),
                escalations=cell(escalations, threshold),
                link=None if team == UNSET else _link(period, team=team, category=filters.category),
                label=(team_labels or {}).get(team, team if team != UNSET else "Not yet known"),
            )
        )
    # The headline over all teams: the met and stopped clocks summed (not an average of %).
    met = [sum(int(s[i] or 0) for s in stats.values()) for i in (4, 5, 9, 10)]
    return SlaTable(
        "team",
        rows,
        threshold,
        first_response_met_pct=percent(met[1], met[0], threshold),
        resolution_met_pct=percent(met[3], met[2], threshold),
    )


def _recurring(
    db: duckdb.DuckDBPyConnection,
    viewer: Viewer,
    period: Period,
    filters: Filters,
    threshold: int,
) -> Recurring:
    def people(column: str) -> list[RecurringPerson]:
        listed = []
        for person, n, all_restricted in _people(db, column, period, filters):
            shown = person if viewer.reads_restricted or not all_restricted else None
            listed.append(RecurringPerson(shown, recurring_label(shown), cell(n, threshold)))
        return listed

    rising = [
        RisingCategory(
            department,
            category,
            f"{CATEGORIES.get(category, category)} in {department}",
            cell(n, threshold),
            cell(before, threshold),
        )
        for department, category, n, before in _rising(db, period, filters)
    ]
    return Recurring(people("respondent_ids"), people("reporter_key"), rising)


async def case_counts(
    source: AnalyticsSource,
    viewer: Viewer,
    period: Period,
    filters: Filters,
    group_by: GroupBy,
) -> CountTable:
    """Cases submitted in the period per category, channel, week (Monday) or team."""
    teams = await roster.team_labels(source.pool)
    return await source.engine.read(
        source.pool,
        lambda db: _count_table(db, period, filters, group_by, source.threshold, None, teams),
    )


async def sla_table(
    source: AnalyticsSource,
    viewer: Viewer,
    period: Period,
    filters: Filters,
    group_by: SlaGroupBy = "team",
) -> SlaTable:
    """Time to first response and to resolution (working hours) and compliance per team."""
    teams = await roster.team_labels(source.pool)
    return await source.engine.read(
        source.pool, lambda db: _sla(db, period, filters, source.threshold, teams)
    )


async def follow_through(
    source: AnalyticsSource, period: Period, filters: Filters, now: datetime
) -> list[FollowThroughRow]:
    """Conference actions and agreement obligations due in the period (Postgres)."""
    found = await analytics_sql.follow_through(
        source.pool,
        starts_at=period.starts_at,
        ends_before=period.ends_before,
        now=now,
        team=filters.team,
        category=filters.category,
    )
    rows = []
    for kind, label in (
        ("conference_action", "Conference actions"),
        ("agreement_obligation", "Agreement obligations"),
    ):
        counts = found.get(kind, {"on_time": 0, "late": 0, "overdue_open": 0, "open": 0})
        cells, total = suppress_table(counts, source.threshold)
        rows.append(
            FollowThroughRow(
                kind,  # type: ignore[arg-type]
                label,
                cells["on_time"],
                cells["late"],
                cells["overdue_open"],
                cells["open"],
                total,
            )
        )
    return rows


async def dashboard(
    source: AnalyticsSource,
    viewer: Viewer,
    period: Period,
    filters: Filters,
    *,
    now: datetime | None = None,
) -> Dashboard:
    """Everything the dashboard page shows, for cases submitted in `period` (backlog: the
    cases open at `now`, default the current time, submitted up to the period's end)."""
    at = now or datetime.now(UTC)
    threshold = source.threshold
    teams = await roster.team_labels(source.pool)

    def figures(db: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        backlog = _backlog(db, period, filters, at)
        stages, conferences = _stages(db, period, filters)
        reopened, resolved = _reopens(db, period, filters)
        volumes = _volumes(db, period, filters)
        tables = {
            f"volume_by_{name}": _count_table(
                db, period, filters, name, threshold, volumes[name], teams
            )
            for name in ("category", "channel", "week", "team")
        }
        return {
            **tables,
            "backlog_by_age": _table(
                "age",
                backlog,
                threshold,
                labels={key: label for key, label, _lower in AGE_BANDS},
                # No drill-down: the work queue has no filter for a case's age.
            ),
            "sla_by_team": _sla(db, period, filters, threshold, teams),
            "reopen_rate": ReopenRate(
                cell(reopened, threshold),
                cell(resolved, threshold),
                percent(reopened, resolved, threshold),
            ),
            "cases_by_stage": _table("stage", stages, threshold),
            "conferences": _table(
                "conference",
                conferences,
                threshold,
                labels={
                    "required": "Required, not yet planned",
                    "planned": "Planned",
                    "held": "Held",
                },
            ),
            "recurring": _recurring(db, viewer, period, filters, threshold),
        }

    found = await source.engine.read(source.pool, figures)
    return Dashboard(
        period=period,
        filters=filters,
        threshold=threshold,
        as_of=at,
        follow_through=await follow_through(source, period, filters, at),
        legal_holds=LegalHoldCounts(
            *await legal_hold_sql.hold_counts(
                source.pool, starts_at=period.starts_at, ends_before=period.ends_before
            )
        ),
        **found,
    )


def cell_display(value: Cell, threshold: int) -> str:
    """How a cell reads in a table or CSV: a number or "fewer than 5"."""
    return value.display(threshold)
