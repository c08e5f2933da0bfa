"""intake: what each conference participant may see (their signed link, the worker's page)

Revision ID: 0018
Revises: 0016
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per (conference, participant), built from routing's conference decisions
    # (application/participant_views.py). The participant's page reads this table only, so
    # it deliberately holds nothing else of the case: no description, injury or notes.
    # `participants` are the invited participants' names and roles (no addresses);
    # `summary` is {agreed_points, actions [{action_id, description, owner_name, due_on,
    # due_at, status}], objections [{by, text}]} once recorded. The participant's own
    # address and employee id are kept to match the worker signed in to the portal.
    op.execute(
        """CREATE TABLE intake.conference_participant_views (
            conference_id uuid NOT NULL,
            participant_id uuid NOT NULL,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            reference text NOT NULL,
            role text NOT NULL,
            name text NOT NULL,
            email text NOT NULL,
            employee_id text,
            status text NOT NULL,
            plan jsonb NOT NULL,
            participants jsonb NOT NULL DEFAULT '[]'::jsonb,
            summary jsonb,
            invited boolean NOT NULL DEFAULT true,
            removed boolean NOT NULL DEFAULT false,
            acknowledged_at timestamptz,
            objection text,
            objection_at timestamptz,
            updated_at timestamptz NOT NULL,
            PRIMARY KEY (conference_id, participant_id)
        )"""
    )
    op.execute(
        "CREATE INDEX conference_participant_views_case_idx"
        " ON intake.conference_participant_views (case_id)"
    )
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE intake.conference_participant_views")
