"""routing: the facts a process's requirements are judged on, decided outcomes and their
appeal windows, and which event announced each stage clock

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # What routing needs of the facts recorded at intake's doors (investigation.*,
    # mediation.*, appeals, agreement.in_force, the reporter): ids, roles and employee
    # ids, never the text. A later fact of the same (kind, fact_key) replaces the earlier.
    op.execute(
        """CREATE TABLE routing.process_facts (
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            kind text NOT NULL,
            fact_key text NOT NULL,
            data jsonb NOT NULL DEFAULT '{}'::jsonb,
            recorded_at timestamptz NOT NULL,
            event_id uuid NOT NULL,
            PRIMARY KEY (case_id, kind, fact_key)
        )"""
    )
    # Decided outcomes: who decided, who approved, and the appeal window the approval
    # opened (closed once, by the timer, with appealed true/false).
    op.execute(
        """CREATE TABLE routing.process_outcomes (
            outcome_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            decided_by text NOT NULL,
            decided_at timestamptz NOT NULL,
            approved_by text,
            approved_at timestamptz,
            appeal_window_ends_at timestamptz,
            window_closed_at timestamptz,
            window_closed_event_id uuid,
            appealed boolean
        )"""
    )
    op.execute(
        "CREATE INDEX routing_process_outcomes_window_idx ON routing.process_outcomes"
        " (appeal_window_ends_at) WHERE approved_at IS NOT NULL AND window_closed_at IS NULL"
    )
    op.execute(
        "CREATE INDEX routing_process_outcomes_case_idx ON routing.process_outcomes (case_id)"
    )
    # The events that announced the stage clock (each fired once across replicas).
    op.execute(
        "ALTER TABLE routing.case_processes ADD COLUMN due_soon_event_id uuid,"
        " ADD COLUMN overdue_event_id uuid"
    )
    for statement in grant_service_sql("routing"):
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "ALTER TABLE routing.case_processes DROP COLUMN due_soon_event_id,"
        " DROP COLUMN overdue_event_id"
    )
    op.execute("DROP TABLE routing.process_outcomes, routing.process_facts")
