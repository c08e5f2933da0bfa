"""audit: entry version 2 records the broker-authenticated producer

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows stay version 1 (their hash never covered these columns); new rows are
    # written as version 2 (services/audit/domain/chain.py, "Entry versions"). ADD COLUMN
    # rewrites no row, so the append-only triggers are not involved.
    op.execute(
        "ALTER TABLE audit.log"
        " ADD COLUMN entry_version smallint NOT NULL DEFAULT 1 CHECK (entry_version IN (1, 2)),"
        " ADD COLUMN producer_user text"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE audit.log DROP COLUMN producer_user, DROP COLUMN entry_version")
