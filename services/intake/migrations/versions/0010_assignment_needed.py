"""intake: a case routing could not assign waits for a person (case.assignment_needed)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Routing's reason while the case has no owner because every candidate was conflicted
    # out; cleared by the case.assigned that follows an HR manager's assignment.
    op.execute("ALTER TABLE intake.cases ADD COLUMN assignment_needed text")


def downgrade() -> None:
    op.execute("ALTER TABLE intake.cases DROP COLUMN assignment_needed")
