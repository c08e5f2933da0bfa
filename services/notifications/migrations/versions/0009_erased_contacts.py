"""notifications: a reporter's contact can be erased (privacy.data_subject_erased)

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
    # An erased reporter's contact keeps its case id and reference (the skeleton) with
    # NULL in place of who they were; `erased_at` says when. Nobody is mailed about it.
    op.execute(
        """ALTER TABLE notifications.case_contacts
               ALTER COLUMN reporter_employee_id DROP NOT NULL,
               ALTER COLUMN reporter_name DROP NOT NULL,
               ALTER COLUMN reporter_email DROP NOT NULL,
               ADD COLUMN erased_at timestamptz"""
    )


def downgrade() -> None:
    op.execute("DELETE FROM notifications.case_contacts WHERE erased_at IS NOT NULL")
    op.execute(
        """ALTER TABLE notifications.case_contacts DROP COLUMN erased_at,
               ALTER COLUMN reporter_employee_id SET NOT NULL,
               ALTER COLUMN reporter_name SET NOT NULL,
               ALTER COLUMN reporter_email SET NOT NULL"""
    )
