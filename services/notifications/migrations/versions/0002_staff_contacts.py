"""notifications: staff contacts and each case's current owner

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Deadline and conference events name the owner by id only (or not at all), and no
    # service reads another's tables: notifications keeps what case.assigned and
    # case.escalated told it. `seen_at` / `assigned_at` are the events' occurred_at, so a
    # late, older event never overwrites a newer one (two replicas may race).
    op.execute(
        """CREATE TABLE notifications.staff_contacts (
            staff_id text PRIMARY KEY,
            name text NOT NULL,
            email text NOT NULL,
            seen_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute(
        """CREATE TABLE notifications.case_owners (
            case_id uuid PRIMARY KEY,
            reference text NOT NULL,
            owner_id text NOT NULL,
            priority text,
            assigned_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    for statement in grant_service_sql("notifications"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE notifications.case_owners, notifications.staff_contacts")
