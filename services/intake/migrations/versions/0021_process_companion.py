"""intake: whether the case's process lets an interviewee bring a companion

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-29
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # From case.process_assigned (the process's `companion_allowed` in routing's policy):
    # an investigation interview's invitation says whether a companion may come.
    op.execute(
        "ALTER TABLE intake.case_processes"
        " ADD COLUMN companion_allowed boolean NOT NULL DEFAULT true"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE intake.case_processes DROP COLUMN companion_allowed")
