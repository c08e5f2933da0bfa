"""routing: tasks on a case and their durable timers (reminder, overdue)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Routing's record of each task it accepted: the due instant is fixed at acceptance
    # (working time of the team's calendar); status open -> done | cancelled.
    op.execute(
        """CREATE TABLE routing.tasks (
            task_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            title text NOT NULL,
            assignee_id text NOT NULL,
            status text NOT NULL CHECK (status IN ('open', 'done', 'cancelled')),
            team text NOT NULL,
            requested_at timestamptz NOT NULL,
            due_at timestamptz NOT NULL,
            due_soon_at timestamptz,
            overdue_at timestamptz,
            ended_at timestamptz,
            request_event_id uuid NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX routing_tasks_case_idx ON routing.tasks (case_id)")
    # Claimed like the SLA timers (FOR UPDATE SKIP LOCKED with their task and case) and
    # marked fired in the transaction that records their event: once across replicas.
    op.execute(
        """CREATE TABLE routing.task_timers (
            id bigserial PRIMARY KEY,
            task_id uuid NOT NULL REFERENCES routing.tasks (task_id),
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            kind text NOT NULL CHECK (kind IN ('due_soon', 'overdue')),
            fire_at timestamptz NOT NULL,
            fired_at timestamptz,
            fired_event_id uuid
        )"""
    )
    op.execute(
        "CREATE INDEX routing_task_timers_due_idx ON routing.task_timers (fire_at)"
        " WHERE fired_at IS NULL"
    )
    op.execute("CREATE INDEX routing_task_timers_task_idx ON routing.task_timers (task_id)")
    for statement in grant_service_sql("routing"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE routing.task_timers, routing.tasks")
