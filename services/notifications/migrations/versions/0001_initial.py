"""notifications: delivery records, reporter contacts, inbox and outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from alembic import op

from shared.migrations import grant_service_sql, messaging_tables_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per (event, audience): a redelivered event finds its record and never
    # sends twice once it is 'sent'. Addresses are not kept here, only recipient ids.
    op.execute(
        """CREATE TABLE notifications.deliveries (
            notification_id uuid PRIMARY KEY,
            source_event_id uuid NOT NULL,
            audience text NOT NULL,
            template text NOT NULL,
            case_id uuid,
            recipient_id text,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sent', 'failed')),
            attempts integer NOT NULL DEFAULT 0,
            last_error text,
            message_id text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            sent_at timestamptz,
            UNIQUE (source_event_id, audience)
        )"""
    )
    op.execute("CREATE INDEX deliveries_case_idx ON notifications.deliveries (case_id)")
    op.execute(
        "CREATE INDEX deliveries_failed_idx ON notifications.deliveries (created_at)"
        " WHERE status = 'failed'"
    )
    op.execute(
        """CREATE TABLE notifications.case_contacts (
            case_id uuid PRIMARY KEY,
            reference text NOT NULL,
            reporter_employee_id text NOT NULL,
            reporter_name text NOT NULL,
            reporter_email text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    for statement in messaging_tables_sql("notifications"):
        op.execute(statement)
    for statement in grant_service_sql("notifications"):
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE notifications.outbox, notifications.inbox,"
        " notifications.case_contacts, notifications.deliveries"
    )
