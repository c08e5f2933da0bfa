"""routing: the process a case is worked through, its stage, and its process roles

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per case in a process: its stage and the stage's clock (target_at and the
    # reminder, in the owning team's working time; NULL: no clock). `ended` once the case
    # entered the process's final stage (with `ending`).
    op.execute(
        """CREATE TABLE routing.case_processes (
            case_id uuid PRIMARY KEY REFERENCES routing.cases (case_id),
            process text NOT NULL,
            stage text NOT NULL,
            stage_entered_at timestamptz NOT NULL,
            target_at timestamptz,
            due_soon_at timestamptz,
            due_soon_fired_at timestamptz,
            overdue_fired_at timestamptz,
            ending text,
            ended_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute(
        "CREATE INDEX routing_case_processes_due_soon_idx ON routing.case_processes"
        " (due_soon_at) WHERE due_soon_fired_at IS NULL AND ended_at IS NULL"
    )
    op.execute(
        "CREATE INDEX routing_case_processes_target_idx ON routing.case_processes"
        " (target_at) WHERE overdue_fired_at IS NULL AND ended_at IS NULL"
    )
    # Who holds each process role (investigator, case_manager, appeal_hearer) and every
    # person ever given one on the case (`released_at` set when replaced): "not yet
    # involved" looks at all of them.
    op.execute(
        """CREATE TABLE routing.process_roles (
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            role text NOT NULL,
            staff_id text NOT NULL,
            assigned_at timestamptz NOT NULL,
            released_at timestamptz
        )"""
    )
    op.execute(
        "CREATE UNIQUE INDEX routing_process_roles_current_idx ON routing.process_roles"
        " (case_id, role) WHERE released_at IS NULL"
    )
    # Conflicts staff declared on a case: never given a process role on it.
    op.execute(
        """CREATE TABLE routing.process_conflicts (
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            staff_id text NOT NULL,
            reason text NOT NULL,
            declared_at timestamptz NOT NULL,
            PRIMARY KEY (case_id, staff_id)
        )"""
    )
    for statement in grant_service_sql("routing"):
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE routing.process_conflicts, routing.process_roles, routing.case_processes"
    )
