"""intake: respondents named at every door (and how routing resolved them); injury facts
recorded later by staff; the case conference routing requires

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # As named (position = order in case.submitted); resolution from routing's
    # case.respondents_resolved: resolved_at NULL = not heard yet; resolved_employee_id
    # NULL after it = a person must resolve it (problem says why).
    op.execute(
        """CREATE TABLE intake.case_respondents (
            case_id uuid NOT NULL REFERENCES intake.cases (case_id) ON DELETE CASCADE,
            position integer NOT NULL,
            employee_id text,
            name text,
            email text,
            resolved_employee_id text,
            matched_by text,
            problem text,
            resolved_at timestamptz,
            PRIMARY KEY (case_id, position)
        )"""
    )
    # "Related cases: same respondent".
    op.execute(
        "CREATE INDEX intake_case_respondents_resolved_idx ON intake.case_respondents"
        " (resolved_employee_id) WHERE resolved_employee_id IS NOT NULL"
    )
    # Staff's later decisions on a case's injury facts (the case row holds the latest).
    op.execute(
        """CREATE TABLE intake.injury_records (
            event_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id) ON DELETE CASCADE,
            recorded_by text NOT NULL,
            recorded_at timestamptz NOT NULL,
            injury jsonb NOT NULL
        )"""
    )
    op.execute("CREATE INDEX intake_injury_records_case_idx ON intake.injury_records (case_id)")
    op.execute(
        """ALTER TABLE intake.cases
               ADD COLUMN respondents_unresolved integer NOT NULL DEFAULT 0,
               ADD COLUMN conference_required_at timestamptz,
               ADD COLUMN conference_reasons text[],
               ADD COLUMN conference_due_by timestamptz"""
    )

    for statement in grant_service_sql("intake"):  # the new table to the service's role
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        """ALTER TABLE intake.cases DROP COLUMN respondents_unresolved,
               DROP COLUMN conference_required_at, DROP COLUMN conference_reasons,
               DROP COLUMN conference_due_by"""
    )
    op.execute("DROP TABLE intake.injury_records")
    op.execute("DROP TABLE intake.case_respondents")
