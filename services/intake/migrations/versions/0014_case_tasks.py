"""intake: tasks on a case (the request, then routing's outcomes)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written with the task.creation_requested event (status 'requested'); routing's
    # task.created / completed / reassigned / cancelled / overdue and case.request_refused
    # move it on. due_at is routing's (working time of the team's calendar).
    op.execute(
        """CREATE TABLE intake.case_tasks (
            task_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            title text NOT NULL,
            description text,
            assignee_id text NOT NULL,
            assignee_name text,
            status text NOT NULL CHECK (status IN
                ('requested', 'open', 'overdue', 'done', 'cancelled', 'refused')),
            requested_due_in_hours double precision,
            requested_due_at timestamptz,
            due_at timestamptz,
            created_by text NOT NULL,
            request_event_id uuid NOT NULL UNIQUE,
            refused_reason text,
            escalated_to_name text,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX case_tasks_case_idx ON intake.case_tasks (case_id, created_at)")
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE intake.case_tasks")
