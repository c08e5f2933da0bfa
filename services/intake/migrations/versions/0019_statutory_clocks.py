"""intake: statutory clocks as routing announces them (the case page and the API)

Revision ID: 0019
Revises: 0016
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per clock routing started on a case (statutory_clock.started), moved on by
    # statutory_clock.due_soon / breached / met. clock_key: '' or the conference id.
    op.execute(
        """CREATE TABLE intake.statutory_clocks (
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            pack text NOT NULL,
            clock text NOT NULL,
            clock_key text NOT NULL DEFAULT '',
            conference_id uuid,
            label text NOT NULL,
            citation text NOT NULL,
            basis text NOT NULL,
            trigger text NOT NULL,
            started_at timestamptz NOT NULL,
            due_at timestamptz NOT NULL,
            due_soon_at timestamptz,
            state text NOT NULL CHECK (state IN ('running', 'due_soon', 'breached', 'met')),
            breached_at timestamptz,
            escalated_to_name text,
            met_at timestamptz,
            met_by text,
            met_on_time boolean,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (case_id, pack, clock, clock_key)
        )"""
    )
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE intake.statutory_clocks")
