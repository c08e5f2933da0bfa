"""routing: case routing state, round-robin cursors, inbox and outbox

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
    op.execute(
        """CREATE TABLE routing.cases (
            case_id uuid PRIMARY KEY,
            reference text NOT NULL,
            channel text NOT NULL,
            category text NOT NULL,
            category_source text NOT NULL,
            matched_terms text[] NOT NULL,
            sensitivity text NOT NULL,
            priority text NOT NULL,
            team text NOT NULL,
            owner_id text NOT NULL,
            status text NOT NULL,
            submitted_at timestamptz NOT NULL,
            routed_at timestamptz NOT NULL,
            first_response_due timestamptz NOT NULL,
            resolution_due timestamptz NOT NULL,
            policy_hash text NOT NULL,
            version integer NOT NULL DEFAULT 1
        )"""
    )
    op.execute("CREATE INDEX routing_cases_owner_idx ON routing.cases (owner_id, status)")
    op.execute(
        """CREATE TABLE routing.team_cursors (
            team text PRIMARY KEY,
            next_index bigint NOT NULL DEFAULT 0
        )"""
    )
    for statement in messaging_tables_sql("routing"):
        op.execute(statement)
    for statement in grant_service_sql("routing"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE routing.outbox, routing.inbox, routing.team_cursors, routing.cases")
