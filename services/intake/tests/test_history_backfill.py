"""Migration 0013 gives the cases intake already holds a history (submission, messages,
notes), on a database of this test's own migrated to 0010 first."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from alembic import command

from shared.migrations import alembic_config, ensure_database
from tests.support.infra import RUN_ID, admin_database_url, drop_database


@pytest.fixture
def database(infrastructure: None) -> Iterator[str]:
    url = admin_database_url(f"backfill_{RUN_ID}")
    drop_database(url)
    ensure_database(url)
    yield url
    drop_database(url)


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_existing_cases_get_their_history(database: str) -> None:
    config = alembic_config("intake", database)
    command.upgrade(config, "0010")
    with psycopg.connect(_conninfo(database), autocommit=True) as conn:
        conn.execute(
            """INSERT INTO intake.cases (case_id, reference, channel, subject, description,
                   reporter_employee_id, reporter_name, reporter_email, status, submitted_at,
                   updated_at)
               VALUES ('00000000-0000-0000-0000-000000000001', 'HR-2026-000001', 'api',
                   'Payslip', 'Overtime missing from my payslip.', 'E-1', 'Sam Rivera',
                   'sam@example.com', 'assigned', '2026-11-01T09:00Z', '2026-11-01T09:00Z')"""
        )
        conn.execute(
            """INSERT INTO intake.case_messages (message_id, case_id, channel, sender_role,
                   body, received_at)
               VALUES ('00000000-0000-0000-0000-000000000002',
                   '00000000-0000-0000-0000-000000000001', 'portal', 'reporter',
                   'Any news?', '2026-11-02T09:00Z')"""
        )
        conn.execute(
            """INSERT INTO intake.case_notes (note_id, case_id, author_id, body, internal,
                   created_at)
               VALUES ('00000000-0000-0000-0000-000000000003',
                   '00000000-0000-0000-0000-000000000001', 'A-1001', 'Asked payroll.', true,
                   '2026-11-03T09:00Z')"""
        )
    command.upgrade(config, "0013")
    with psycopg.connect(_conninfo(database)) as conn:
        rows = conn.execute(
            """SELECT kind, actor_type, actor_id, actor_name, summary->>'channel'
               FROM intake.case_history ORDER BY occurred_at"""
        ).fetchall()
    assert rows == [
        ("submitted", "employee", "E-1", "Sam Rivera", "api"),
        ("message", "employee", "E-1", "Sam Rivera", "portal"),
        ("note", "agent", "A-1001", None, None),
    ]
    command.downgrade(config, "0010")
    command.upgrade(config, "0013")  # and back: the backfill runs again, once per row
    with psycopg.connect(_conninfo(database)) as conn:
        assert conn.execute("SELECT count(*) FROM intake.case_history").fetchone() == (3,)
