"""intake: notes HR staff add to a case (agent actions)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Notes are intake's own record (written with their case.note_added event); internal
    # ones are for staff only, the others are shown to the reporter.
    op.execute(
        """CREATE TABLE intake.case_notes (
            note_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            author_id text NOT NULL,
            body text NOT NULL,
            internal boolean NOT NULL DEFAULT true,
            created_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX case_notes_case_idx ON intake.case_notes (case_id, created_at)")
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE intake.case_notes")
