"""intake: per-case holds behind a dead-lettered event (issue #15, shared.case_holds)

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-30
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per dead-lettered event of a case, in dead-letter order (position): while a
    # case has rows, only its first may be applied; every other event of the case is
    # dead-lettered behind it (CaseHeld) and appended.
    op.execute(
        """CREATE TABLE intake.case_holds (
            case_id uuid NOT NULL,
            event_id uuid NOT NULL,
            position bigint GENERATED ALWAYS AS IDENTITY,
            event_type text NOT NULL,
            error_type text NOT NULL,
            reason text NOT NULL,
            held_at timestamptz NOT NULL DEFAULT now(),
            failed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (case_id, event_id)
        )"""
    )
    op.execute("CREATE INDEX intake_case_holds_order_idx ON intake.case_holds (case_id, position)")
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE intake.case_holds")
