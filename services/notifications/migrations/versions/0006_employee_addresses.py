"""notifications: each employee's current address, from the HR system's directory feed

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
    # From directory.employee_updated: the reporter's address on file. Reporter mails go here
    # when the directory knows the reporter's employee id (NULL email: it knows no address,
    # the one captured at submission is used). `updated_at_event` is the event's occurred_at,
    # so an older record from the feed never overwrites a newer one.
    op.execute(
        """CREATE TABLE notifications.employee_addresses (
            employee_id text PRIMARY KEY,
            email text,
            active boolean NOT NULL,
            updated_at_event timestamptz NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    for statement in grant_service_sql("notifications"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE notifications.employee_addresses")
