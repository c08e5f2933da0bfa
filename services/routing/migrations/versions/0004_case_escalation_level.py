"""routing: one escalation per case per ladder level (whichever clock reaches it first)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The highest ladder level this case was escalated to, across both clocks: a level is
    # announced once per case, so its target gets one mail, not one per clock.
    op.execute("ALTER TABLE routing.cases ADD COLUMN escalated_level integer NOT NULL DEFAULT 0")
    op.execute(
        "UPDATE routing.cases c SET escalated_level = s.level FROM"
        " (SELECT case_id, max(escalated_level) AS level FROM routing.sla_clocks"
        "  GROUP BY case_id) s WHERE s.case_id = c.case_id"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE routing.cases DROP COLUMN escalated_level")
