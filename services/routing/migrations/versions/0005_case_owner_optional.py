"""routing: a case may have no owner while it waits for a person to assign one

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every candidate conflicted out: the case is routed, unowned, and case.assignment_needed
    # asks an HR manager to assign it (no longer a dead letter).
    op.execute("ALTER TABLE routing.cases ALTER COLUMN owner_id DROP NOT NULL")


def downgrade() -> None:
    # Refused (NOT NULL fails) while a case still waits for a person to assign it.
    op.execute("ALTER TABLE routing.cases ALTER COLUMN owner_id SET NOT NULL")
