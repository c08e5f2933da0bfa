"""intake: a case opened as the follow-up of an older, closed case links to it

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Set when routing asked for a follow-up case (a reply to a case closed too long ago).
    # One follow-up per reply: the message event that caused it is unique.
    op.execute(
        """ALTER TABLE intake.cases
            ADD COLUMN follows_up_case_id uuid REFERENCES intake.cases (case_id),
            ADD COLUMN follow_up_of_event_id uuid UNIQUE"""
    )
    op.execute(
        "CREATE INDEX cases_follows_up_idx ON intake.cases (follows_up_case_id)"
        " WHERE follows_up_case_id IS NOT NULL"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE intake.cases DROP COLUMN follow_up_of_event_id, DROP COLUMN follows_up_case_id"
    )
