"""audit: the console's lookups (a case by reference; ended portal sessions)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Partial expression indexes over the chain itself: no new table, no new privilege
    # (the audit role may only INSERT and SELECT audit.log). The console finds a case by
    # the reference its `case.submitted` carries, and refuses a portal session token whose
    # session intake announced as ended (`portal.session_ended`).
    op.execute(
        "CREATE INDEX log_reference_idx ON audit.log ((payload->>'reference'))"
        " WHERE event_type = 'case.submitted'"
    )
    op.execute(
        "CREATE INDEX log_session_ended_idx ON audit.log ((payload->>'session_id'))"
        " WHERE event_type = 'portal.session_ended'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX audit.log_session_ended_idx")
    op.execute("DROP INDEX audit.log_reference_idx")
