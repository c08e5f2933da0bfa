"""intake: cases read model, references, idempotency keys, inbox and outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from alembic import op

from shared.migrations import grant_service_sql, messaging_tables_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE intake.case_reference_seq")
    op.execute(
        """CREATE TABLE intake.cases (
            case_id uuid PRIMARY KEY,
            reference text NOT NULL UNIQUE,
            channel text NOT NULL,
            subject text NOT NULL,
            description text NOT NULL,
            reporter_employee_id text NOT NULL,
            reporter_name text NOT NULL,
            reporter_email text NOT NULL,
            requested_category text,
            status text NOT NULL,
            category text,
            sensitivity text,
            priority text,
            first_response_due timestamptz,
            resolution_due timestamptz,
            team text,
            owner_id text,
            owner_name text,
            submitted_at timestamptz NOT NULL,
            routed_at timestamptz,
            assigned_at timestamptz,
            updated_at timestamptz NOT NULL
        )"""
    )
    op.execute(
        "CREATE INDEX cases_reporter_idx ON intake.cases (reporter_employee_id, submitted_at DESC)"
    )
    op.execute(
        """CREATE TABLE intake.idempotency_keys (
            key text PRIMARY KEY,
            request_hash text NOT NULL,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            created_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    for statement in messaging_tables_sql("intake"):
        op.execute(statement)
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE intake.outbox, intake.inbox, intake.idempotency_keys, intake.cases")
    op.execute("DROP SEQUENCE intake.case_reference_seq")
