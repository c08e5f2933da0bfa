"""intake: the inbox keeps a digest of each consumed event's body

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SHA-256 of the envelope's canonical JSON (shared.consumer.envelope_digest): the same
    # event_id with another body is a conflict, dead-lettered, not a duplicate. NULL for
    # events consumed before this column existed.
    op.execute("ALTER TABLE intake.inbox ADD COLUMN body_sha256 bytea")


def downgrade() -> None:
    op.execute("ALTER TABLE intake.inbox DROP COLUMN body_sha256")
