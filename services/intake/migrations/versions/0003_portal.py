"""intake: phone call details, anonymous key throttling, staff listing indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # What the agent wrote down about a call; the case row holds the summary as description.
    op.execute(
        """CREATE TABLE intake.phone_calls (
            case_id uuid PRIMARY KEY REFERENCES intake.cases (case_id),
            caller_employee_id text,
            caller_details text,
            called_at timestamptz NOT NULL,
            duration_seconds integer NOT NULL CHECK (duration_seconds >= 0),
            callback_number text,
            logged_by text NOT NULL
        )"""
    )
    # Failed secret-key attempts per anonymous case: a reference under attack is locked for
    # a while. Keyed by case only: nothing about who tried is kept.
    op.execute(
        """CREATE TABLE intake.anonymous_key_failures (
            case_id uuid PRIMARY KEY REFERENCES intake.cases (case_id),
            failures integer NOT NULL,
            locked_until timestamptz
        )"""
    )
    op.execute("CREATE INDEX cases_owner_idx ON intake.cases (owner_id, submitted_at DESC)")
    op.execute("CREATE INDEX cases_submitted_by_idx ON intake.cases (submitted_by)")
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP INDEX intake.cases_submitted_by_idx, intake.cases_owner_idx")
    op.execute("DROP TABLE intake.anonymous_key_failures, intake.phone_calls")
