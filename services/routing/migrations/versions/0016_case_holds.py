"""routing: per-case holds behind a dead-lettered event (issue #15, shared.case_holds)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

from alembic import op

from shared.migrations import case_holds_tables_sql, grant_service_sql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in [*case_holds_tables_sql("routing"), *grant_service_sql("routing")]:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE routing.case_holds")
