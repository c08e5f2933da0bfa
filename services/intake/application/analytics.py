"""The HR dashboard's figures (issue #13), read from the case analytics projection.

Every figure counts the cases submitted in the period (Period: whole UTC days) under the
filters, restricted ones included, and obeys the disclosure policy of
services.intake.domain.analytics (small-cell suppression). The figures come from the
in-process DuckDB replica of `intake.case_analytics` (adapters/analytics_engine.py),
brought up to date with Postgres before each answer.

Use: `source = source_for(runtime)` (one per process, made on first use), then
`await dashboard(source, viewer, period, filters)`, `await case_counts(...)`,
`await sla_table(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from services.intake.domain.analytics import (
    CountTable,
    Dashboard,
    Filters,
    GroupBy,
    Period,
    SlaGroupBy,
    SlaTable,
)
from services.intake.domain.work_queue import Viewer

if TYPE_CHECKING:
    from services.intake.adapters.analytics_engine import AnalyticsEngine
    from shared.service import Runtime


@dataclass(frozen=True)
class AnalyticsSource:
    """Where the figures come from: Postgres (the truth) and the process's replica."""

    pool: asyncpg.Pool
    engine: AnalyticsEngine
    threshold: int


def source_for(runtime: Runtime) -> AnalyticsSource:
    """The process's one analytics source, made on first use (closed with the runtime)."""
    raise NotImplementedError


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
    raise NotImplementedError


async def case_counts(
    source: AnalyticsSource,
    viewer: Viewer,
    period: Period,
    filters: Filters,
    group_by: GroupBy,
) -> CountTable:
    """Cases submitted in the period per category, channel, week (Monday) or team."""
    raise NotImplementedError


async def sla_table(
    source: AnalyticsSource,
    viewer: Viewer,
    period: Period,
    filters: Filters,
    group_by: SlaGroupBy = "team",
) -> SlaTable:
    """Time to first response and to resolution (working hours) and compliance per team."""
    raise NotImplementedError
