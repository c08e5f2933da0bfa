"""The analytics fact rows on a real database: cases intake held before migration 0024 get
theirs from the startup backfill, and the DuckDB replica follows every later change of
Postgres (a delta sync by version) before it answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import cast
from uuid import UUID, uuid4

import psycopg
import pytest
from alembic import command

from services.intake.adapters import analytics_sql
from services.intake.adapters.analytics_engine import AnalyticsEngine
from services.intake.application import analytics
from services.intake.application.analytics_projection import backfill, refresh_case
from services.intake.domain.analytics import Filters, Period
from services.intake.domain.work_queue import Viewer
from shared.db import create_pool
from shared.migrations import alembic_config, ensure_database
from shared.service import Runtime
from tests.support.infra import RUN_ID, admin_database_url, drop_database

CASE = "00000000-0000-0000-0000-00000000a001"
MANAGER = Viewer(ids=("M-9001",), reporter_ids=("M-9001",), reads_restricted=True)
NOVEMBER = Period(date(2026, 11, 1), date(2026, 11, 30))


@pytest.fixture
async def database(infrastructure: None) -> AsyncIterator[str]:
    url = admin_database_url(f"analytics_store_{RUN_ID}")
    drop_database(url)
    ensure_database(url)
    config = alembic_config("intake", url)
    command.upgrade(config, "0023")
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute(
            """INSERT INTO intake.cases (case_id, reference, channel, subject, description,
                   reporter_employee_id, reporter_name, reporter_email, status, category,
                   sensitivity, submitted_at, routed_at, updated_at, first_response_due)
               VALUES (%s, 'HR-2026-000001', 'phone', 'Payslip', 'Overtime missing.', 'E-1',
                   'Sam Rivera', 'sam@example.com', 'in_progress', 'payroll_query', 'normal',
                   '2026-11-02T09:00Z', '2026-11-02T09:00Z', '2026-11-02T09:00Z',
                   '2026-11-02T12:00Z')""",
            (CASE,),
        )
        # Answered 2 h 30 min after submission (no team calendar yet: round the clock).
        conn.execute(
            """INSERT INTO intake.case_history (event_id, case_id, occurred_at, event_type,
                   kind, actor_type, summary)
               VALUES (gen_random_uuid(), %s, '2026-11-02T09:00Z', 'case.submitted',
                       'submitted', 'employee', '{}'),
                      (gen_random_uuid(), %s, '2026-11-02T11:30Z', 'case.status_changed',
                       'status_changed', 'system', '{"to_status": "in_progress"}')""",
            (CASE, CASE),
        )
    command.upgrade(config, "head")
    yield url
    drop_database(url)


async def test_a_case_held_before_the_projection_gets_its_row_and_the_replica_follows(
    database: str,
) -> None:
    pool = await create_pool(database, size=2)
    engine = AnalyticsEngine(memory_limit="64MB")
    source = analytics.AnalyticsSource(pool, engine, threshold=1)
    try:
        assert await backfill(pool) == 1
        assert await backfill(pool) == 0  # idempotent
        row = await pool.fetchrow("SELECT * FROM intake.case_analytics WHERE case_id = $1", CASE)
        assert row["first_response_working_s"] == 2 * 3600 + 30 * 60
        assert row["first_response_met"] is True  # 11:30 <= 12:00
        assert row["reporter_key"] == "E-1" and row["department"] is None

        table = await analytics.case_counts(source, MANAGER, NOVEMBER, Filters(), "channel")
        assert {r.key: r.count.value for r in table.rows}["phone"] == 1
        first = engine.watermark

        # The directory's word arrives later: the department fills in, the version moves,
        # and the next answer has it (rising categories count by department).
        async with pool.acquire() as conn, conn.transaction():
            await analytics_sql.set_department(conn, "E-1", "Finance", datetime.now(UTC))
        board = await analytics.dashboard(source, MANAGER, NOVEMBER, Filters())
        assert engine.watermark > first
        assert board.volume_by_channel.total.value == 1
        resolved = await pool.fetchval(
            "SELECT department FROM intake.case_analytics WHERE case_id = $1", CASE
        )
        assert resolved == "Finance"

        # A resolution, as a handler would record it: one more version, counted at once.
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO intake.case_history (event_id, case_id, occurred_at,
                       event_type, kind, actor_type, summary)
                   VALUES (gen_random_uuid(), $1, '2026-11-02T15:00Z', 'case.status_changed',
                           'status_changed', 'system', '{"to_status": "resolved"}')""",
                CASE,
            )
            await conn.execute(
                "UPDATE intake.cases SET status = 'resolved' WHERE case_id = $1", CASE
            )
            await refresh_case(conn, UUID(CASE))
        sla = await analytics.sla_table(source, MANAGER, NOVEMBER, Filters())
        (row_,) = sla.rows
        assert row_.resolution_median_h == 6.0  # 09:00 -> 15:00 round the clock
        assert engine.rows_held == 1  # replaced, not duplicated
    finally:
        engine.close()
        await pool.close()


async def test_follow_through_counts_actions_and_obligations_by_their_due_date(
    database: str,
) -> None:
    """Conference actions and agreement obligations due in the period: on time, late,
    overdue and still open, and open not yet due; those due outside the period are not
    counted, nor actions carried out of tracking."""
    pool = await create_pool(database, size=2)
    engine = AnalyticsEngine(memory_limit="64MB")
    source = analytics.AnalyticsSource(pool, engine, threshold=1)

    def action(due: str, status: str, on_time: bool | None) -> str:
        return (
            f'{{"action_id": "{uuid4()}", "due_at": "{due}", "status": "{status}",'
            f' "on_time": {"null" if on_time is None else str(on_time).lower()}}}'
        )

    actions = ",".join(
        [
            action("2026-11-05T17:00:00+00:00", "done", True),
            action("2026-11-06T17:00:00+00:00", "done", False),
            action("2026-11-07T17:00:00+00:00", "open", None),  # overdue at NOW
            action("2026-11-28T17:00:00+00:00", "replanned", None),  # open, not yet due
            action("2026-11-08T17:00:00+00:00", "ended", None),  # out of tracking
            action("2026-12-05T17:00:00+00:00", "open", None),  # due after the period
        ]
    )
    try:
        await pool.execute(
            """INSERT INTO intake.conferences (conference_id, case_id, status, plan,
                   participants, actions, requested_by, request_event_id, created_at)
               VALUES ($1, $2, 'summarised', '{}', '[]', $3::text::jsonb, 'A-1', $4,
                       '2026-11-03T09:00Z')""",
            uuid4(),
            UUID(CASE),
            f"[{actions}]",
            uuid4(),
        )
        agreement = uuid4()
        await pool.execute(
            """INSERT INTO intake.mediation_agreements (agreement_id, case_id, version, terms,
                   parties, drafted_by, drafted_at)
               VALUES ($1, $2, 1, '[]', '[]', 'A-2', '2026-11-03T09:00Z')""",
            agreement,
            UUID(CASE),
        )
        await pool.executemany(
            """INSERT INTO intake.mediation_obligations (agreement_id, term_id, case_id,
                   owner_role, due_at, state, met_on)
               VALUES ($1, $2, $3, 'employee', $4, $5, $6)""",
            [
                (agreement, uuid4(), UUID(CASE), datetime(2026, 11, 10, 17, tzinfo=UTC),
                 "met", date(2026, 11, 10)),
                (agreement, uuid4(), UUID(CASE), datetime(2026, 11, 11, 17, tzinfo=UTC),
                 "met", date(2026, 11, 12)),
                (agreement, uuid4(), UUID(CASE), datetime(2026, 11, 12, 17, tzinfo=UTC),
                 "overdue", None),
            ],
        )  # fmt: skip
        now = datetime(2026, 11, 20, 12, tzinfo=UTC)
        rows = {r.kind: r for r in await analytics.follow_through(source, NOVEMBER, Filters(), now)}
        actions_row = rows["conference_action"]
        assert [
            c.value
            for c in (
                actions_row.on_time,
                actions_row.late,
                actions_row.overdue_open,
                actions_row.open,
                actions_row.total,
            )
        ] == [1, 1, 1, 1, 4]
        obligations = rows["agreement_obligation"]
        assert [
            c.value for c in (obligations.on_time, obligations.late, obligations.overdue_open)
        ] == [1, 1, 1]
        other_team = await analytics.follow_through(
            source, NOVEMBER, Filters(team="investigations"), now
        )
        assert all(r.total.value == 0 for r in other_team)
    finally:
        engine.close()
        await pool.close()


async def test_at_start_the_backfill_runs_and_the_replica_is_loaded_before_any_dashboard(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first dashboard after a restart does not wait for the cold load: the service's
    start backfills the fact rows and loads the replica in the background; with
    ANALYTICS_WARM_AT_START off (the default) it leaves the replica to the first dashboard."""
    pool = await create_pool(database, size=2)
    runtime = SimpleNamespace(pool=pool, state={}, closers=[])
    try:
        monkeypatch.delenv("ANALYTICS_WARM_AT_START", raising=False)
        await analytics.prepare_at_start(cast(Runtime, runtime))
        assert await pool.fetchval("SELECT count(*) FROM intake.case_analytics") == 1
        assert "analytics" not in runtime.state

        monkeypatch.setenv("ANALYTICS_WARM_AT_START", "on")
        await analytics.prepare_at_start(cast(Runtime, runtime))
        source = runtime.state["analytics"]
        assert source.engine.rows_held == 1
        assert source.engine.watermark > 0
    finally:
        for close in runtime.closers:
            await close()
        await pool.close()
