"""notifications: per-case holds behind a dead-lettered event (issue #15, shared.case_holds)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from alembic import op

from shared.migrations import case_holds_tables_sql, grant_service_sql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in [*case_holds_tables_sql("notifications"), *grant_service_sql("notifications")]:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE notifications.case_holds")
