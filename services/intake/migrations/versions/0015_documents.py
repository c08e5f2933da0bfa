"""intake: documents — who added a file, evidence, note files, detected type, visibility

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows from before: files the reporter sent (any channel), visible to the reporter.
    # content_type now holds the type detected from the bytes; claimed_type what the
    # sender said (name or header), kept for the record.
    op.execute(
        """ALTER TABLE intake.attachments
            ADD COLUMN uploaded_by text,
            ADD COLUMN evidence boolean NOT NULL DEFAULT false,
            ADD COLUMN staff_only boolean NOT NULL DEFAULT false,
            ADD COLUMN note_id uuid REFERENCES intake.case_notes (note_id),
            ADD COLUMN claimed_type text,
            ADD COLUMN description text"""
    )


def downgrade() -> None:
    op.execute(
        """ALTER TABLE intake.attachments DROP COLUMN uploaded_by, DROP COLUMN evidence,
            DROP COLUMN staff_only, DROP COLUMN note_id, DROP COLUMN claimed_type,
            DROP COLUMN description"""
    )
