"""intake: Message-IDs of the emails on each case (dedup and reply threading)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per Message-ID we know on a case: every inbound message (the primary key is
    # what makes a redelivery a no-op) and the acknowledgements we expect notifications to
    # send (so a reply's In-Reply-To finds its case). case_id is set in the same transaction
    # that claims the row.
    op.execute(
        """CREATE TABLE intake.email_messages (
            message_id text PRIMARY KEY,
            case_id uuid REFERENCES intake.cases (case_id),
            direction text NOT NULL CHECK (direction IN ('inbound', 'notification')),
            recorded_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX email_messages_case_idx ON intake.email_messages (case_id)")
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE intake.email_messages")
