"""audit: where sealed personal data begins in the log (issue 14)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from alembic import op

from shared.settings import db_role

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ROLE = db_role("audit")


def upgrade() -> None:
    # Entries are never rewritten: the chain hashes them as they are, so the entries
    # appended before personal fields were sealed at the source keep their clear text
    # and keep verifying. This records where that stretch ends (the first seq that may
    # hold sealed values), so the console and an erasure report can say which entries a
    # destroyed key cannot reach (README "Privacy model").
    op.execute(
        """CREATE TABLE audit.privacy_boundary (
            only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            sealed_from_seq bigint NOT NULL CHECK (sealed_from_seq > 0),
            clear_entries bigint NOT NULL CHECK (clear_entries >= 0),
            migrated_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )"""
    )
    op.execute(
        "INSERT INTO audit.privacy_boundary (sealed_from_seq, clear_entries)"
        " SELECT coalesce(max(seq), 0) + 1, count(*) FROM audit.log"
    )
    op.execute(f'GRANT SELECT ON audit.privacy_boundary TO "{ROLE}"')


def downgrade() -> None:
    op.execute("DROP TABLE audit.privacy_boundary")
