"""GET /api/v1/analytics/...: the HR dashboard's figures as JSON or CSV (issue #13).

- /analytics/cases?from=&to=&group_by=category|channel|week|team[&team=&category=]:
  cases submitted per group;
- /analytics/sla?from=&to=&group_by=team: first response and resolution in working hours
  (median, p90), % met, breaches and escalations per team;
- /analytics/dashboard?from=&to=[&team=&category=]: every figure of the dashboard page.

`from`/`to` are whole UTC days, both included (default: the 90 days to today); a period
covers at most MAX_PERIOD_DAYS. `format=csv` answers the table as CSV. A suppressed count
is `{"count": null, "suppressed": true, "display": "fewer than 5"}` (CSV: "fewer than 5").
hr_manager and admin only (403 otherwise); a bad parameter is a 422 naming it. Reading
figures reads no case, so nothing is audited as a case view; a CSV download is logged.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from services.intake.application import analytics
from services.intake.domain.analytics import (
    ANALYTICS_ROLES,
    MAX_PERIOD_DAYS,
    BadPeriod,
    Cell,
    CountTable,
    Dashboard,
    Filters,
    GroupBy,
    Period,
    SlaTable,
)
from services.intake.domain.case import CATEGORIES
from services.intake.domain.work_queue import viewer_of
from services.intake.entrypoints.web import RefusalRoute, runtime_of
from shared.auth import Principal, require_roles

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"], route_class=RefusalRoute)
log = structlog.get_logger()

EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2100, 12, 31)
DEFAULT_DAYS = 90
HrLeader = Annotated[Principal, Depends(require_roles(*ANALYTICS_ROLES))]


class AnalyticsQuery(BaseModel):
    """The period and filters every analytics door takes (422 naming the parameter)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    team: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
    category: str | None = None

    @field_validator("team", "category", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("from_", "to")
    @classmethod
    def _in_range(cls, value: date | None) -> date | None:
        if value is not None and not EARLIEST_DAY <= value <= LATEST_DAY:
            raise ValueError(f"must be between {EARLIEST_DAY} and {LATEST_DAY}")
        return value

    @field_validator("to")
    @classmethod
    def _period(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("from_")
        if value is not None and start is not None:
            if value < start:
                raise ValueError("must not be before from")
            if (value - start).days + 1 > MAX_PERIOD_DAYS:
                raise ValueError(f"a period covers at most {MAX_PERIOD_DAYS} days")
        return value

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str | None) -> str | None:
        if value is not None and value not in CATEGORIES:
            raise ValueError(f"unknown category; one of: {', '.join(CATEGORIES)}")
        return value

    @model_validator(mode="after")
    def _answerable_period(self) -> AnalyticsQuery:
        """The period the doors will answer, with its defaults filled in, is one they
        can: `from` alone, too far back for the default end (today), is a 422 on `from`
        (not a 500 when the figures are read)."""
        try:
            self.period()
        except BadPeriod as bad:
            field = "from" if self.to is None else bad.field
            message = bad.message
            if self.to is None:
                message += " (to defaults to today: give a later from, or a to)"
            given = self.from_ if field == "from" else self.to
            detail = InitErrorDetails(
                type=PydanticCustomError("value_error", message),
                loc=(field,),
                input=given.isoformat() if given is not None else None,
            )
            raise ValidationError.from_exception_data(type(self).__name__, [detail]) from None
        return self

    def period(self) -> Period:
        end = self.to or datetime.now(UTC).date()
        start = self.from_ or max(EARLIEST_DAY, end - timedelta(days=DEFAULT_DAYS - 1))
        if start > end:  # only `from` given, in the future
            end = min(LATEST_DAY, start + timedelta(days=DEFAULT_DAYS - 1))
        return Period(start, end)

    def filters(self) -> Filters:
        return Filters(team=self.team, category=self.category)


class CasesQuery(AnalyticsQuery):
    group_by: GroupBy = "category"
    format: Literal["json", "csv"] = "json"


class SlaQuery(AnalyticsQuery):
    group_by: Literal["team"] = "team"
    format: Literal["json", "csv"] = "json"


# --- Answers -------------------------------------------------------------------------------


class CellOut(BaseModel):
    count: int | None  # null when suppressed
    suppressed: bool
    # Why it is not shown: "small" (1 .. threshold-1 cases) or "complement" (hidden so
    # that a small count cannot be worked out from the total); null when shown.
    why: Literal["small", "complement"] | None = None
    display: str  # "12", "fewer than 5" or "hidden"


class CountRowOut(BaseModel):
    key: str
    label: str
    count: CellOut
    link: str | None  # the staff work queue with this row's filters


class CountTableOut(BaseModel):
    group_by: str
    from_: date = Field(serialization_alias="from")
    to: date
    threshold: int
    rows: list[CountRowOut]
    total: CellOut


class SlaRowOut(BaseModel):
    team: str
    label: str  # the team's name in routing's roster
    cases: CellOut
    first_response_median_h: float | None  # working hours; null: suppressed or none
    first_response_p90_h: float | None
    first_response_met_pct: float | None
    resolution_median_h: float | None
    resolution_p90_h: float | None
    resolution_met_pct: float | None
    breaches: CellOut
    escalations: CellOut


class SlaTableOut(BaseModel):
    group_by: str
    from_: date = Field(serialization_alias="from")
    to: date
    threshold: int
    rows: list[SlaRowOut]


class ReopenRateOut(BaseModel):
    reopened: CellOut
    resolved: CellOut
    rate_pct: float | None


class PersonOut(BaseModel):
    person_id: str | None  # null: withheld (restricted cases only)
    label: str
    cases: CellOut


class RisingOut(BaseModel):
    department: str
    category: str
    label: str
    current: CellOut
    previous: CellOut


class RecurringOut(BaseModel):
    respondents: list[PersonOut]
    reporters: list[PersonOut]
    rising: list[RisingOut]


class FollowThroughOut(BaseModel):
    kind: str
    label: str
    on_time: CellOut
    late: CellOut
    overdue_open: CellOut
    open: CellOut
    total: CellOut


class LegalHoldsOut(BaseModel):
    """Legal holds: active now, placed and released in the period (counts only)."""

    active: int
    placed: int
    released: int


class DashboardOut(BaseModel):
    from_: date = Field(serialization_alias="from")
    to: date
    team: str | None
    category: str | None
    threshold: int
    as_of: datetime
    volume_by_category: CountTableOut
    volume_by_channel: CountTableOut
    volume_by_week: CountTableOut
    volume_by_team: CountTableOut
    backlog_by_age: CountTableOut
    sla_by_team: SlaTableOut
    reopen_rate: ReopenRateOut
    cases_by_stage: CountTableOut
    conferences: CountTableOut
    recurring: RecurringOut
    follow_through: list[FollowThroughOut]
    legal_holds: LegalHoldsOut


def cell_out(value: Cell, threshold: int) -> CellOut:
    return CellOut(
        count=value.value,
        suppressed=value.suppressed,
        why=value.why,
        display=value.display(threshold),
    )


def table_out(table: CountTable, period: Period) -> CountTableOut:
    t = table.threshold
    return CountTableOut(
        group_by=table.group_by,
        from_=period.start,
        to=period.end,
        threshold=t,
        rows=[
            CountRowOut(key=r.key, label=r.label, count=cell_out(r.count, t), link=r.link)
            for r in table.rows
        ],
        total=cell_out(table.total, t),
    )


def sla_out(table: SlaTable, period: Period) -> SlaTableOut:
    t = table.threshold
    return SlaTableOut(
        group_by=table.group_by,
        from_=period.start,
        to=period.end,
        threshold=t,
        rows=[
            SlaRowOut(
                team=r.team,
                label=r.label or r.team,
                cases=cell_out(r.cases, t),
                first_response_median_h=r.first_response_median_h,
                first_response_p90_h=r.first_response_p90_h,
                first_response_met_pct=r.first_response_met_pct,
                resolution_median_h=r.resolution_median_h,
                resolution_p90_h=r.resolution_p90_h,
                resolution_met_pct=r.resolution_met_pct,
                breaches=cell_out(r.breaches, t),
                escalations=cell_out(r.escalations, t),
            )
            for r in table.rows
        ],
    )


def dashboard_out(found: Dashboard) -> DashboardOut:
    t = found.threshold
    p = found.period
    return DashboardOut(
        from_=p.start,
        to=p.end,
        team=found.filters.team,
        category=found.filters.category,
        threshold=t,
        as_of=found.as_of,
        volume_by_category=table_out(found.volume_by_category, p),
        volume_by_channel=table_out(found.volume_by_channel, p),
        volume_by_week=table_out(found.volume_by_week, p),
        volume_by_team=table_out(found.volume_by_team, p),
        backlog_by_age=table_out(found.backlog_by_age, p),
        sla_by_team=sla_out(found.sla_by_team, p),
        reopen_rate=ReopenRateOut(
            reopened=cell_out(found.reopen_rate.reopened, t),
            resolved=cell_out(found.reopen_rate.resolved, t),
            rate_pct=found.reopen_rate.rate_pct,
        ),
        cases_by_stage=table_out(found.cases_by_stage, p),
        conferences=table_out(found.conferences, p),
        recurring=RecurringOut(
            respondents=[
                PersonOut(person_id=x.person_id, label=x.label, cases=cell_out(x.cases, t))
                for x in found.recurring.respondents
            ],
            reporters=[
                PersonOut(person_id=x.person_id, label=x.label, cases=cell_out(x.cases, t))
                for x in found.recurring.reporters
            ],
            rising=[
                RisingOut(
                    department=x.department,
                    category=x.category,
                    label=x.label,
                    current=cell_out(x.current, t),
                    previous=cell_out(x.previous, t),
                )
                for x in found.recurring.rising
            ],
        ),
        follow_through=[
            FollowThroughOut(
                kind=x.kind,
                label=x.label,
                on_time=cell_out(x.on_time, t),
                late=cell_out(x.late, t),
                overdue_open=cell_out(x.overdue_open, t),
                open=cell_out(x.open, t),
                total=cell_out(x.total, t),
            )
            for x in found.follow_through
        ],
        legal_holds=LegalHoldsOut(
            active=found.legal_holds.active,
            placed=found.legal_holds.placed,
            released=found.legal_holds.released,
        ),
    )


# --- CSV -----------------------------------------------------------------------------------


def _csv(rows: list[list[str]], filename: str, principal: Principal) -> Response:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    # Aggregates only (no case, no name): logged for the operators, not a case read.
    log.info("analytics export", export=filename, by=principal.subject)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def count_table_csv(table: CountTable) -> list[list[str]]:
    t = table.threshold
    rows = [[table.group_by, "label", "cases"]]
    rows += [[r.key, r.label, r.count.display(t)] for r in table.rows]
    rows.append(["total", "Total", table.total.display(t)])
    return rows


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def sla_table_csv(table: SlaTable) -> list[list[str]]:
    t = table.threshold
    rows = [
        [
            "team",
            "label",
            "cases",
            "first_response_median_h",
            "first_response_p90_h",
            "first_response_met_pct",
            "resolution_median_h",
            "resolution_p90_h",
            "resolution_met_pct",
            "breaches",
            "escalations",
        ]
    ]
    for r in table.rows:
        rows.append(
            [
                r.team,
                r.label or r.team,
                r.cases.display(t),
                _number(r.first_response_median_h),
                _number(r.first_response_p90_h),
                _number(r.first_response_met_pct),
                _number(r.resolution_median_h),
                _number(r.resolution_p90_h),
                _number(r.resolution_met_pct),
                r.breaches.display(t),
                r.escalations.display(t),
            ]
        )
    return rows


# --- Doors ---------------------------------------------------------------------------------


@router.get(
    "/cases",
    response_model=CountTableOut,
    response_model_by_alias=True,
    responses={200: {"content": {"text/csv": {}}}},
)
async def read_case_counts(
    request: Request, principal: HrLeader, query: Annotated[CasesQuery, Query()]
) -> CountTableOut | Response:
    period = query.period()
    source = analytics.source_for(runtime_of(request))
    table = await analytics.case_counts(
        source, viewer_of(principal), period, query.filters(), query.group_by
    )
    if query.format == "csv":
        return _csv(
            count_table_csv(table),
            f"cases-by-{query.group_by}-{period.start}-{period.end}.csv",
            principal,
        )
    return table_out(table, period)


@router.get(
    "/sla",
    response_model=SlaTableOut,
    response_model_by_alias=True,
    responses={200: {"content": {"text/csv": {}}}},
)
async def read_sla(
    request: Request, principal: HrLeader, query: Annotated[SlaQuery, Query()]
) -> SlaTableOut | Response:
    period = query.period()
    source = analytics.source_for(runtime_of(request))
    table = await analytics.sla_table(source, viewer_of(principal), period, query.filters())
    if query.format == "csv":
        return _csv(sla_table_csv(table), f"sla-by-team-{period.start}-{period.end}.csv", principal)
    return sla_out(table, period)


@router.get("/dashboard", response_model=DashboardOut, response_model_by_alias=True)
async def read_dashboard(
    request: Request, principal: HrLeader, query: Annotated[AnalyticsQuery, Query()]
) -> DashboardOut:
    """Every figure of the dashboard (JSON only; each table has its own CSV door)."""
    period = query.period()
    source = analytics.source_for(runtime_of(request))
    found = await analytics.dashboard(source, viewer_of(principal), period, query.filters())
    return dashboard_out(found)
