"""intake: the case analytics projection (the HR dashboard's facts) and employees'
departments

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The sync watermark: every insert or update of a fact row takes the next value, so a
    # replica asks for "version > the highest I hold" (adapters/analytics_engine.py).
    op.execute("CREATE SEQUENCE intake.case_analytics_version_seq")
    # One row per case, kept in the transaction of every event that changes the case
    # (application/analytics_projection.py). Working seconds are in the owning team's
    # working calendar, less the time the case waited on the employee. No foreign key: a
    # projection, rebuilt from the cases, and loaded alone by bench/analytics.py.
    op.execute(
        """CREATE TABLE intake.case_analytics (
            case_id uuid PRIMARY KEY,
            category text,
            channel text NOT NULL,
            team text,
            department text,
            reporter_key text,
            respondent_ids text[] NOT NULL DEFAULT '{}',
            restricted boolean NOT NULL,
            status text NOT NULL,
            submitted_at timestamptz NOT NULL,
            first_response_at timestamptz,
            first_response_due timestamptz,
            first_response_working_s bigint,
            first_response_met boolean,
            resolved_at timestamptz,
            resolution_due timestamptz,
            resolution_working_s bigint,
            resolution_met boolean,
            reopen_count integer NOT NULL DEFAULT 0,
            first_response_breached boolean NOT NULL DEFAULT false,
            resolution_breached boolean NOT NULL DEFAULT false,
            escalations integer NOT NULL DEFAULT 0,
            process text,
            stage text,
            conference text CHECK (conference IN ('required', 'planned', 'held')),
            version bigint NOT NULL DEFAULT nextval('intake.case_analytics_version_seq')
        )"""
    )
    op.execute("CREATE INDEX intake_case_analytics_version_idx ON intake.case_analytics (version)")
    op.execute(
        "CREATE INDEX intake_case_analytics_reporter_idx ON intake.case_analytics (reporter_key)"
    )
    # Who works in which department, from directory.employee_updated (reporters' departments
    # for "a category rising in a department").
    op.execute(
        """CREATE TABLE intake.employee_departments (
            employee_id text PRIMARY KEY,
            department text,
            updated_at timestamptz NOT NULL
        )"""
    )
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE intake.employee_departments, intake.case_analytics")
    op.execute("DROP SEQUENCE intake.case_analytics_version_seq")
