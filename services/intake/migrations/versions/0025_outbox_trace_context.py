"""intake: the outbox keeps the trace context of the span that recorded each event

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-29
"""

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The W3C carrier ({"traceparent": ..., "tracestate": ...}) of the span that recorded
    # the event (shared.tracing); NULL when tracing is off or no span was active. The
    # relay publishes the row inside that context again, so the trace crosses the outbox.
    op.execute("ALTER TABLE intake.outbox ADD COLUMN trace_context jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE intake.outbox DROP COLUMN trace_context")
