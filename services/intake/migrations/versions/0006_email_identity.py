"""intake: an inbound email is identified by its Message-ID and its content digest

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A Message-ID is a claim, not an identity (scanners and broken clients reuse them):
    # only the same Message-ID with the same content digest is a re-delivery. Rows recorded
    # before this have digest '' (notifications' expected Message-IDs keep '' for good).
    op.execute(
        "ALTER TABLE intake.email_messages ADD COLUMN content_digest text NOT NULL DEFAULT ''"
    )
    op.execute("ALTER TABLE intake.email_messages DROP CONSTRAINT email_messages_pkey")
    op.execute("ALTER TABLE intake.email_messages ADD PRIMARY KEY (message_id, content_digest)")
    # Two cases (or two messages) may now carry the same Message-ID: keep them findable.
    op.execute("ALTER TABLE intake.cases DROP CONSTRAINT cases_source_message_id_key")
    op.execute("CREATE INDEX cases_source_message_idx ON intake.cases (source_message_id)")
    op.execute(
        "ALTER TABLE intake.case_messages DROP CONSTRAINT case_messages_email_message_id_key"
    )
    op.execute(
        "CREATE INDEX case_messages_email_message_idx ON intake.case_messages (email_message_id)"
    )
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    # Refuses (unique violation) once two messages share a Message-ID: that is data to keep.
    op.execute("DROP INDEX intake.case_messages_email_message_idx")
    op.execute(
        "ALTER TABLE intake.case_messages ADD CONSTRAINT case_messages_email_message_id_key"
        " UNIQUE (email_message_id)"
    )
    op.execute("DROP INDEX intake.cases_source_message_idx")
    op.execute(
        "ALTER TABLE intake.cases ADD CONSTRAINT cases_source_message_id_key"
        " UNIQUE (source_message_id)"
    )
    op.execute("ALTER TABLE intake.email_messages DROP CONSTRAINT email_messages_pkey")
    op.execute("ALTER TABLE intake.email_messages ADD PRIMARY KEY (message_id)")
    op.execute("ALTER TABLE intake.email_messages DROP COLUMN content_digest")
