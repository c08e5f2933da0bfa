"""intake: case conferences as staff see them (the requests, then routing's decisions)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per conference, written with conference.planning_requested (status
    # 'requested'); routing's decisions (planned, rescheduled, cancelled, held,
    # summary_recorded, action_*, completed) or case.request_refused move it on, and
    # notifications' *_sent events fill each participant's relayed mails. `plan`,
    # `participants`, `attendance`, `summary` and `actions` hold the conference as the
    # last decision stated it (shapes: services/intake/domain/conferences.py).
    op.execute(
        """CREATE TABLE intake.conferences (
            conference_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            status text NOT NULL CHECK (status IN ('requested', 'planned', 'refused',
                'cancelled', 'held', 'summarised', 'completed')),
            plan jsonb NOT NULL,
            participants jsonb NOT NULL,
            attendance jsonb,
            held_at timestamptz,
            summary jsonb,
            actions jsonb NOT NULL DEFAULT '[]'::jsonb,
            refused_reason text,
            cancelled_reason text,
            last_refusal text,
            sequence integer NOT NULL DEFAULT 0,
            notice_working_days integer,
            requested_by text NOT NULL,
            request_event_id uuid NOT NULL UNIQUE,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX conferences_case_idx ON intake.conferences (case_id, created_at)")
    # Every staff request about a conference, so routing's case.request_refused (which
    # names the request's event id) finds its conference.
    op.execute(
        """CREATE TABLE intake.conference_requests (
            request_event_id uuid PRIMARY KEY,
            conference_id uuid NOT NULL REFERENCES intake.conferences (conference_id),
            request_type text NOT NULL,
            requested_at timestamptz NOT NULL,
            refused_reason text
        )"""
    )
    # The case's conference consents as last recorded (given or withdrawn), per kind and
    # per person giving it.
    op.execute(
        """CREATE TABLE intake.conference_consents (
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            consent text NOT NULL,
            given_by text NOT NULL,
            granted boolean NOT NULL,
            recorded_via text NOT NULL,
            basis text,
            recorded_by text,
            recorded_at timestamptz NOT NULL,
            event_id uuid NOT NULL,
            PRIMARY KEY (case_id, consent, given_by)
        )"""
    )
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE intake.conference_consents")
    op.execute("DROP TABLE intake.conference_requests")
    op.execute("DROP TABLE intake.conferences")
