"""intake: per-case holds behind a dead-lettered event (issue #15, shared.case_holds)

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-30
"""

from alembic import op

from shared.migrations import case_holds_tables_sql, grant_service_sql

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in [*case_holds_tables_sql("intake"), *grant_service_sql("intake")]:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE intake.case_holds")
