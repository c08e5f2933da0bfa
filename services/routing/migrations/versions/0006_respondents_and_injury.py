"""routing: named respondents and how they resolved; a case's injury facts and conference

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every respondent a case names, as named, and what the directory made of it:
    # employee_id set = resolved (matched_by says how); problem set = a person must resolve.
    op.execute(
        """CREATE TABLE routing.case_respondents (
            case_id uuid NOT NULL REFERENCES routing.cases (case_id) ON DELETE CASCADE,
            position integer NOT NULL,
            named_employee_id text,
            named_name text,
            named_email text,
            employee_id text,
            matched_by text CHECK (matched_by IN ('employee_id', 'email', 'name')),
            problem text CHECK (problem IN ('not_found', 'ambiguous')),
            PRIMARY KEY (case_id, position)
        )"""
    )
    op.execute(
        "CREATE INDEX routing_case_respondents_unresolved_idx ON routing.case_respondents"
        " (case_id) WHERE employee_id IS NULL"
    )
    # Lookups by email and by name when respondents are resolved.
    op.execute("CREATE INDEX routing_employees_email_idx ON routing.employees (lower(email))")
    op.execute(
        "CREATE INDEX routing_employees_name_idx ON routing.employees"
        " (lower(regexp_replace(btrim(name), '\\s+', ' ', 'g')))"
    )
    # The injury facts as they stand, and when a case conference was first required
    # (once per case: a later decision does not require a second one).
    op.execute(
        "ALTER TABLE routing.cases ADD COLUMN injury jsonb,"
        " ADD COLUMN conference_required_at timestamptz"
    )

    for statement in grant_service_sql("routing"):  # the new table to the service's role
        op.execute(statement)


def downgrade() -> None:
    op.execute("ALTER TABLE routing.cases DROP COLUMN injury, DROP COLUMN conference_required_at")
    op.execute("DROP INDEX routing.routing_employees_name_idx")
    op.execute("DROP INDEX routing.routing_employees_email_idx")
    op.execute("DROP TABLE routing.case_respondents")
