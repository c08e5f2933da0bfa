"""routing: case conferences, their agreed actions (with reminder/overdue state), consents

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Routing's record of each conference it accepted, as it now stands (every decision
    # event carries this): planned -> cancelled | held -> summarised -> completed.
    # A refused plan is not stored (intake keeps the refusal).
    op.execute(
        """CREATE TABLE routing.conferences (
            conference_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            status text NOT NULL
                CHECK (status IN ('planned', 'cancelled', 'held', 'summarised', 'completed')),
            plan jsonb NOT NULL,
            participants jsonb NOT NULL,
            awaiting_consent uuid[] NOT NULL DEFAULT '{}',
            sequence integer NOT NULL DEFAULT 0 CHECK (sequence >= 0),
            planned_at timestamptz NOT NULL,
            request_event_id uuid NOT NULL,
            cancelled_at timestamptz,
            cancel_reason text,
            held_at timestamptz,
            attendance jsonb,
            summary_due_at timestamptz,
            summary jsonb,
            summarised_at timestamptz,
            completed_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX routing_conferences_case_idx ON routing.conferences (case_id)")
    # Agreed actions and their two timers as columns: a timer is due when its instant has
    # passed and its fired_at is NULL; the tick claims the action row FOR UPDATE SKIP
    # LOCKED and sets fired_at in the transaction that records the event (once across
    # replicas). Re-planning to a new date resets both.
    op.execute(
        """CREATE TABLE routing.conference_actions (
            action_id uuid PRIMARY KEY,
            conference_id uuid NOT NULL REFERENCES routing.conferences (conference_id),
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            position integer NOT NULL,
            description text NOT NULL,
            owner_participant_id uuid,
            owner_staff_id text,
            owner_name text NOT NULL,
            owner_email text NOT NULL,
            due_on date NOT NULL,
            due_at timestamptz NOT NULL,
            due_soon_at timestamptz,
            status text NOT NULL CHECK (status IN ('open', 'replanned', 'done', 'ended')),
            due_soon_fired_at timestamptz,
            due_soon_event_id uuid,
            overdue_fired_at timestamptz,
            overdue_event_id uuid,
            ended_at timestamptz,
            note text,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CHECK ((owner_participant_id IS NULL) <> (owner_staff_id IS NULL))
        )"""
    )
    op.execute(
        "CREATE INDEX routing_conference_actions_conference_idx"
        " ON routing.conference_actions (conference_id)"
    )
    op.execute(
        "CREATE INDEX routing_conference_actions_due_idx ON routing.conference_actions (due_at)"
        " WHERE status IN ('open', 'replanned')"
    )
    # Every consent recorded for a case's conferences, grants and withdrawals alike; the
    # latest per (kind, given_by) decides.
    op.execute(
        """CREATE TABLE routing.case_consents (
            id bigserial PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            kind text NOT NULL
                CHECK (kind IN ('practitioner_involvement', 'medical_consultation')),
            given_by text NOT NULL,
            granted boolean NOT NULL,
            recorded_at timestamptz NOT NULL,
            recorded_via text NOT NULL,
            basis text,
            event_id uuid NOT NULL UNIQUE
        )"""
    )
    op.execute("CREATE INDEX routing_case_consents_case_idx ON routing.case_consents (case_id)")
    for statement in grant_service_sql("routing"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE routing.case_consents, routing.conference_actions, routing.conferences")
