"""intake: the status updates a reporter sees (with the reason staff gave them)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Reporter-facing only (domain/reporter_updates.py decides which routing
    # case.status_changed become a row): anonymous reporters have no mail, so their follow-up
    # page shows these beside the messages and shared notes; signed-in reporters see them
    # on the case page. One row per event (event_id), so a redelivery adds nothing.
    op.execute(
        """CREATE TABLE intake.reporter_status_updates (
            event_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            kind text NOT NULL,
            reason text,
            occurred_at timestamptz NOT NULL
        )"""
    )
    op.execute(
        "CREATE INDEX reporter_status_updates_case_idx"
        " ON intake.reporter_status_updates (case_id, occurred_at)"
    )
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE intake.reporter_status_updates")
