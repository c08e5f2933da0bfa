"""intake: anonymous and phone cases, respondents, injury details, messages, attachments

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for column in ("reporter_employee_id", "reporter_name", "reporter_email"):
        op.execute(f"ALTER TABLE intake.cases ALTER COLUMN {column} DROP NOT NULL")
    op.execute(
        """ALTER TABLE intake.cases
            ADD COLUMN anonymous boolean NOT NULL DEFAULT false,
            ADD COLUMN anonymous_key_hash text,
            ADD COLUMN respondent_employee_ids text[] NOT NULL DEFAULT '{}',
            ADD COLUMN urgent boolean NOT NULL DEFAULT false,
            ADD COLUMN injury jsonb,
            ADD COLUMN logged_by text,
            ADD COLUMN submitted_by text,
            ADD COLUMN source_message_id text UNIQUE"""
    )
    op.execute(
        """CREATE TABLE intake.case_messages (
            message_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            channel text NOT NULL,
            sender_role text NOT NULL,
            sender_employee_id text,
            sender_email text,
            body text NOT NULL,
            email_message_id text UNIQUE,
            received_at timestamptz NOT NULL
        )"""
    )
    op.execute("CREATE INDEX case_messages_case_idx ON intake.case_messages (case_id, received_at)")
    op.execute(
        """CREATE TABLE intake.attachments (
            attachment_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            message_id uuid REFERENCES intake.case_messages (message_id),
            filename text NOT NULL,
            content_type text NOT NULL,
            size integer NOT NULL,
            sha256 text NOT NULL,
            content bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX attachments_case_idx ON intake.attachments (case_id)")
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE intake.attachments, intake.case_messages")
    op.execute(
        """ALTER TABLE intake.cases DROP COLUMN anonymous, DROP COLUMN anonymous_key_hash,
            DROP COLUMN respondent_employee_ids, DROP COLUMN urgent, DROP COLUMN injury,
            DROP COLUMN logged_by, DROP COLUMN submitted_by, DROP COLUMN source_message_id"""
    )
