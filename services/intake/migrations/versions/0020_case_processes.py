"""intake: the process a case is worked through (routing's decisions, projected)

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per case in a process (case.process_assigned), moved on by case.stage_entered
    # and the stage clock (case.stage_due_soon / case.stage_overdue). `stages` is the
    # process's ordered stage list as routing announced it: [{name, label,
    # target_working_days}]; `endings` the reasons the final stage may be entered with.
    op.execute(
        """CREATE TABLE intake.case_processes (
            case_id uuid PRIMARY KEY REFERENCES intake.cases (case_id),
            process text NOT NULL,
            label text NOT NULL,
            stages jsonb NOT NULL,
            endings jsonb NOT NULL DEFAULT '[]'::jsonb,
            assigned_by text NOT NULL,
            reason text,
            stage text,
            stage_label text,
            stage_entered_at timestamptz,
            target_at timestamptz,
            due_soon_at timestamptz,
            stage_state text NOT NULL DEFAULT 'on_track'
                CHECK (stage_state IN ('on_track', 'due_soon', 'overdue', 'ended')),
            ending text,
            ending_reason text,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    # Who holds each process role on the case (case.process_role_assigned): they may work
    # the case like its owner (read it, record the process's facts).
    op.execute(
        """CREATE TABLE intake.case_process_roles (
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            role text NOT NULL,
            staff_id text NOT NULL,
            name text NOT NULL,
            email text NOT NULL,
            assigned_at timestamptz NOT NULL,
            PRIMARY KEY (case_id, role)
        )"""
    )
    op.execute(
        "CREATE INDEX intake_case_process_roles_staff_idx ON intake.case_process_roles (staff_id)"
    )
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE intake.case_process_roles, intake.case_processes")
