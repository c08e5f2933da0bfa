"""notifications: each case's sensitivity, so a reporter's mail knows what it may say

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # From case.routed (every classification and re-categorisation announces it): the
    # reason staff give for "waiting on you", "resolved" or "closed" is mailed to the
    # reporter only for a normal case. No row: not classified yet, treated as sensitive.
    # `routed_at` is the event's occurred_at, so an older event never overwrites a newer one.
    op.execute(
        """CREATE TABLE notifications.case_sensitivity (
            case_id uuid PRIMARY KEY,
            sensitivity text NOT NULL,
            routed_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    for statement in grant_service_sql("notifications"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE notifications.case_sensitivity")
