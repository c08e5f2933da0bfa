"""intake: data-subject rights — erasure requests, access requests and the notifications
sent to each person (README "Data-subject rights")

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One erasure request and its decision (a second privacy officer decides, once).
    # `email` is the address the request named; it is cleared once the erasure is carried
    # out (the pseudonymous `subject_id` remains as the record of whose data was erased).
    op.execute(
        """CREATE TABLE intake.erasure_requests (
            request_id uuid PRIMARY KEY,
            subject_id text NOT NULL,
            employee_id text,
            email text,
            reason text NOT NULL,
            requested_by text NOT NULL,
            requested_at timestamptz NOT NULL,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'refused', 'erased', 'blocked')),
            decision text CHECK (decision IN ('approve', 'refuse')),
            decision_reason text,
            decided_by text,
            decided_at timestamptz,
            kept_case_ids uuid[] NOT NULL DEFAULT '{}',
            blocked_by uuid[] NOT NULL DEFAULT '{}',
            erased_case_ids uuid[] NOT NULL DEFAULT '{}',
            keys_destroyed integer NOT NULL DEFAULT 0,
            CHECK ((decision IS NULL) = (decided_at IS NULL))
        )"""
    )
    op.execute(
        "CREATE INDEX erasure_requests_requested_idx ON intake.erasure_requests (requested_at)"
    )
    # One access request and its export (JSON: the machine-readable file, the readable one
    # is rendered from it). The export is the subject's own data: erased with them.
    op.execute(
        """CREATE TABLE intake.access_requests (
            request_id uuid PRIMARY KEY,
            subject_id text NOT NULL,
            employee_id text,
            email text,
            requested_by text NOT NULL,
            requested_at timestamptz NOT NULL,
            export jsonb,
            fulfilled_at timestamptz
        )"""
    )
    op.execute("CREATE INDEX access_requests_subject_idx ON intake.access_requests (subject_id)")
    # notifications' notification.sent, kept so an access request can list what was sent to
    # a person (ids, template and time only: notifications keeps no body either).
    op.execute(
        """CREATE TABLE intake.notifications_sent (
            notification_id uuid PRIMARY KEY,
            case_id uuid,
            template text NOT NULL,
            audience text NOT NULL,
            recipient_id text,
            channel text NOT NULL,
            sent_at timestamptz NOT NULL
        )"""
    )
    op.execute(
        "CREATE INDEX notifications_sent_recipient_idx ON intake.notifications_sent (recipient_id)"
    )
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE intake.notifications_sent, intake.access_requests, intake.erasure_requests"
    )
