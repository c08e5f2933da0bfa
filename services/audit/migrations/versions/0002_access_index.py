"""audit: index the access records (who read which case)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Partial: only reads of case records pay for it, not every event the ingest writes.
    # No new table and no new privilege: the access log is a view over the chain itself.
    op.execute(
        "CREATE INDEX log_access_idx ON audit.log (case_id, seq)"
        " WHERE event_type IN ('audit.case_viewed', 'audit.export_created')"
    )


def downgrade() -> None:
    op.execute("DROP INDEX audit.log_access_idx")
