"""The HR director's dashboard (/portal/dashboard): hr_manager and admin only.

A GET form (period, team, category: a filtered dashboard is a link to share) over the same
use case as GET /api/v1/analytics/dashboard. Each figure is a section with its chart
(server-rendered SVG, services.intake.adapters.charts), its data table (the accessible
version of the chart), a CSV download of that table and, on rows, a drill-down link to
the staff work queue, whose own access rules decide which cases are then listed. No
figure names a case: restricted cases are counted, never listed.

The CSV downloads are portal routes (/portal/dashboard/<figure>.csv, same parameters):
the JSON API's `format=csv` takes a bearer token, which a browser signed in to the portal
does not hold; both write the same rows (http_analytics' table writers).
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import structlog
from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup
from pydantic import ValidationError

from services.intake.adapters import roster
from services.intake.application import analytics
from services.intake.domain.analytics import (
    CountRow,
    CountTable,
    Dashboard,
    FollowThroughRow,
    RecurringPerson,
    may_read_analytics,
)
from services.intake.domain.case import CATEGORIES, STAFF_ROLES
from services.intake.domain.refusals import Refused
from services.intake.domain.work_queue import viewer_of
from services.intake.entrypoints.http_analytics import (
    AnalyticsQuery,
    count_table_csv,
    sla_table_csv,
)
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.portal.pages import (
    field_errors,
    guarded,
    portal_router,
    render,
    sign_in_redirect,
)
from services.intake.entrypoints.web import runtime_of
from shared.auth import Principal

if TYPE_CHECKING:
    from services.intake.adapters import charts

router = portal_router()
log = structlog.get_logger()
FORM_FIELDS = ("from", "to", "team", "category")
STOPPED = "of the clocks stopped, all teams shown"
FORBIDDEN = "the dashboard is for HR managers and administrators"


@dataclass(frozen=True)
class CountFigure:
    """One count table's section: `key` is its anchor and CSV name."""

    key: str
    title: str
    intro: str
    label_heading: str
    table: CountTable
    chart: Markup


@dataclass(frozen=True)
class Headline:
    label: str
    value: str
    note: str = ""


# --- Reading the form ------------------------------------------------------------------------


def _asked(request: Request) -> dict[str, str]:
    """The form's fields (the last value of each); empty fields are no filter."""
    params = request.query_params
    return {name: params.getlist(name)[-1] for name in params if params.getlist(name)}


def _query(asked: dict[str, str], teams: dict[str, str]) -> tuple[AnalyticsQuery, dict[str, str]]:
    """The query behind the form, or the default one and the errors by field name (a team
    must be one of routing's roster, `teams`)."""
    unknown = sorted(set(asked) - set(FORM_FIELDS))
    wanted = {k: v for k, v in asked.items() if k in FORM_FIELDS and v != ""}
    try:
        query = AnalyticsQuery.model_validate(wanted)
    except ValidationError as exc:
        errors = field_errors(exc)
        # A person reads the form: a date that does not parse says how to write one.
        for name in ("from", "to"):
            if name in errors and "valid date" in errors[name]:
                errors[name] = "enter a date as YYYY-MM-DD, for example 2026-11-02"
        return AnalyticsQuery(), errors
    if unknown:
        return AnalyticsQuery(), {unknown[0]: "not a field of this form"}
    if query.team is not None and query.team not in teams:
        return AnalyticsQuery(), {"team": "not a team of the roster"}
    return query, {}


def _params(query: AnalyticsQuery) -> dict[str, str]:
    """The form's fields as they define the figures (the period made explicit)."""
    period = query.period()
    params = {"from": period.start.isoformat(), "to": period.end.isoformat()}
    if query.team:
        params["team"] = query.team
    if query.category:
        params["category"] = query.category
    return params


def csv_link(figure: str, params: dict[str, str]) -> str:
    return f"/portal/dashboard/{figure}.csv?{urlencode(params)}"


async def _figures(request: Request, principal: Principal, query: AnalyticsQuery) -> Dashboard:
    if not may_read_analytics(principal):
        raise Refused("forbidden", FORBIDDEN)
    runtime = runtime_of(request)
    viewer = viewer_of(principal)
    source = analytics.source_for(runtime)
    return await analytics.dashboard(source, viewer, query.period(), query.filters())


# --- The page ------------------------------------------------------------------------------


@router.get("/portal/dashboard")
async def dashboard_page(request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        if not may_read_analytics(principal):
            raise Refused("forbidden", FORBIDDEN)
        asked = _asked(request)
        teams = await roster.team_labels(runtime_of(request).pool)
        query, errors = _query(asked, teams)
        found = await _figures(request, principal, query)
        params = _params(query)
        figures, sla_charts = await asyncio.to_thread(_draw, found, teams)
        return render(
            request,
            "dashboard.html.j2",
            422 if errors else 200,
            principal=principal,
            found=found,
            # Rows link to the work queue only for those who may open it (not an admin).
            drill_down=principal.has_any(*STAFF_ROLES),
            errors=errors,
            # On a refused form the fields keep what was typed, the figures the default.
            values=asked if errors else params,
            params=params,
            csv_link=csv_link,
            figures=figures,
            sla_charts=sla_charts,
            headlines=headlines(found),
            team_label=lambda key: teams.get(key, key),
            row_label=lambda table, row: row_label(table, row, teams),
            team_choices=list(teams.items()),
            category_choices=sorted(CATEGORIES.items(), key=lambda item: item[1]),
        )

    return await guarded(request, page)


def headlines(found: Dashboard) -> list[Headline]:
    """The numbers on top: volume, backlog, both clocks' compliance, reopen rate."""
    t = found.threshold
    sla = found.sla_by_team
    reopen = found.reopen_rate
    return [
        Headline("Cases raised in the period", found.volume_by_category.total.display(t)),
        Headline("Open backlog", found.backlog_by_age.total.display(t), "open now"),
        Headline("First response on time", _percent(sla.first_response_met_pct), STOPPED),
        Headline("Resolution on time", _percent(sla.resolution_met_pct), STOPPED),
        Headline(
            "Reopen rate",
            _percent(reopen.rate_pct),
            f"{reopen.reopened.display(t)} of {reopen.resolved.display(t)} resolved",
        ),
    ]


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


# --- Charts ---------------------------------------------------------------------------------

# (attribute of Dashboard, title, intro, heading of the label column, horizontal?)
COUNT_FIGURES: tuple[tuple[str, str, str, str, bool], ...] = (
    ("volume_by_week", "Cases raised per week", "Weeks start on Monday.", "Week of", False),
    (
        "volume_by_category",
        "Cases raised by category",
        "As categorised now.",
        "Category",
        True,
    ),
    ("volume_by_channel", "Cases raised by channel", "How each case came in.", "Channel", True),
    ("volume_by_team", "Cases raised by team", "The team that owns the case.", "Team", True),
    (
        "backlog_by_age",
        "Open backlog by age",
        "Cases open now, by time since they were raised.",
        "Age",
        True,
    ),
    (
        "cases_by_stage",
        "Open cases by process stage",
        "Investigation, case management and conference stages of the cases open now.",
        "Stage",
        True,
    ),
    (
        "conferences",
        "Case conferences",
        "Conferences of the cases raised in the period, by state.",
        "State",
        True,
    ),
)


def _bars(table: CountTable, teams: dict[str, str]) -> list[charts.Bar]:
    from services.intake.adapters import charts

    # A suppressed cell's value is None in the table already: the chart never has it.
    return [
        charts.Bar(
            _short(table, row.key, row_label(table, row, teams)),
            row.count.value,
            hidden=row.count.why == "complement",
        )
        for row in table.rows
    ]


def row_label(table: CountTable, row: CountRow, teams: dict[str, str]) -> str:
    """A team row reads as the team's name in the roster (the figures key on its id)."""
    return teams.get(row.key, row.label) if table.group_by == "team" else row.label


def _short(table: CountTable, key: str, label: str) -> str:
    """A week's axis label is its Monday ("23 Nov"); the table keeps the full label."""
    if table.group_by == "week":
        try:
            return date.fromisoformat(key).strftime("%d %b")
        except ValueError:
            return label
    return label


def _draw(found: Dashboard, teams: dict[str, str]) -> tuple[list[CountFigure], dict[str, Markup]]:
    """Every chart of the page (run in a worker thread: drawing is CPU work)."""
    # matplotlib is imported on the first dashboard, not when intake starts (~1.5 s).
    from services.intake.adapters import charts

    counts = charts.counts_suppression(found.threshold)
    figures = []
    for key, title, intro, heading, horizontal in COUNT_FIGURES:
        table: CountTable = getattr(found, key)
        draw = charts.bar_chart if horizontal else charts.column_chart
        svg = draw(
            f"chart-{key.replace('_', '-')}",
            title,
            _bars(table, teams),
            axis_label="cases",
            suppression=counts,
        )
        figures.append(CountFigure(key, title, intro, heading, table, Markup(svg)))
    sla = found.sla_by_team
    groups = [teams.get(row.team, row.team) for row in sla.rows]
    few = charts.Suppression(label=f"fewer than {found.threshold} cases")
    met = charts.grouped_bar_chart(
        "chart-sla-met",
        "SLA met by team (% of clocks stopped by the deadline)",
        groups,
        [
            charts.Series("First response", tuple(r.first_response_met_pct for r in sla.rows)),
            charts.Series("Resolution", tuple(r.resolution_met_pct for r in sla.rows)),
        ],
        axis_label="% met",
        suppression=few,
        value_format="{:.0f}%",
        limit=100,
    )
    first = charts.grouped_bar_chart(
        "chart-first-response-hours",
        "Time to first response by team (working hours)",
        groups,
        [
            charts.Series("Median", tuple(r.first_response_median_h for r in sla.rows)),
            charts.Series("90th percentile", tuple(r.first_response_p90_h for r in sla.rows)),
        ],
        axis_label="working hours",
        suppression=few,
        value_format="{:,.1f} h",
    )
    resolution = charts.grouped_bar_chart(
        "chart-resolution-hours",
        "Time to resolution by team (working hours)",
        groups,
        [
            charts.Series("Median", tuple(r.resolution_median_h for r in sla.rows)),
            charts.Series("90th percentile", tuple(r.resolution_p90_h for r in sla.rows)),
        ],
        axis_label="working hours",
        suppression=few,
        value_format="{:,.1f} h",
    )
    return figures, {
        "met": Markup(met),
        "first_response": Markup(first),
        "resolution": Markup(resolution),
    }


# --- CSV ------------------------------------------------------------------------------------


def _people_csv(people: list[RecurringPerson], threshold: int) -> list[list[str]]:
    return [["person_id", "label", "cases"]] + [
        [p.person_id or "", p.label, p.cases.display(threshold)] for p in people
    ]


def _follow_through_csv(rows: list[FollowThroughRow], threshold: int) -> list[list[str]]:
    head = ["kind", "label", "on_time", "late", "overdue_open", "open", "total"]
    return [head] + [
        [
            r.kind,
            r.label,
            *(c.display(threshold) for c in (r.on_time, r.late, r.overdue_open, r.open, r.total)),
        ]
        for r in rows
    ]


def _rising_csv(found: Dashboard) -> list[list[str]]:
    t = found.threshold
    return [["department", "category", "label", "cases_in_period", "cases_in_period_before"]] + [
        [r.department, r.category, r.label, r.current.display(t), r.previous.display(t)]
        for r in found.recurring.rising
    ]


def _count_csv(key: str) -> Callable[[Dashboard], list[list[str]]]:
    def write(found: Dashboard) -> list[list[str]]:
        table: CountTable = getattr(found, key)
        return count_table_csv(table)

    return write


CSV_TABLES: dict[str, Callable[[Dashboard], list[list[str]]]] = {
    **{key: _count_csv(key) for key, *_ in COUNT_FIGURES},
    "sla_by_team": lambda found: sla_table_csv(found.sla_by_team),
    "recurring_respondents": lambda found: _people_csv(
        found.recurring.respondents, found.threshold
    ),
    "recurring_reporters": lambda found: _people_csv(found.recurring.reporters, found.threshold),
    "rising_categories": _rising_csv,
    "follow_through": lambda found: _follow_through_csv(found.follow_through, found.threshold),
}


@router.get("/portal/dashboard/{figure}.csv")
async def dashboard_csv(figure: str, request: Request) -> Response:
    """One figure's table as CSV (the figures of the page with the same parameters)."""
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def download() -> Response:
        if not may_read_analytics(principal):
            raise Refused("forbidden", FORBIDDEN)
        write = CSV_TABLES.get(figure)
        if write is None:
            raise Refused("not_found", f"no figure {figure!r} on the dashboard")
        teams = await roster.team_labels(runtime_of(request).pool)
        query, errors = _query(_asked(request), teams)
        if errors:
            name, message = next(iter(errors.items()))
            raise Refused("invalid", f"{name}: {message}")
        found = await _figures(request, principal, query)
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(write(found))
        period = found.period
        filename = f"{figure.replace('_', '-')}-{period.start}-{period.end}.csv"
        log.info("analytics export", export=filename, by=principal.subject)
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",
            },
        )

    return await guarded(request, download)
