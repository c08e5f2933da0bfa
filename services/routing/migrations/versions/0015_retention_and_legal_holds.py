"""routing: retention timers of closed cases, the legal holds routing heard of, and the
data subjects of each case (issue #14)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One retention timer per closed case: armed at closure (due_at = closed_at plus the
    # category's period), deleted on reopening, re-armed at the next closure. fire_at is
    # the instant the timer loop claims it: due_at, NULL while a legal hold blocks it
    # (blocked_at) and again now() when a hold is released, NULL once erased.
    op.execute(
        """CREATE TABLE routing.retention_timers (
            case_id uuid PRIMARY KEY REFERENCES routing.cases (case_id),
            category text NOT NULL,
            rule text NOT NULL,
            closed_at timestamptz NOT NULL,
            due_at timestamptz NOT NULL,
            fire_at timestamptz,
            blocked_at timestamptz,
            blocked_by uuid[] NOT NULL DEFAULT '{}',
            erased_at timestamptz,
            erased_event_id uuid
        )"""
    )
    op.execute(
        "CREATE INDEX routing_retention_timers_due_idx ON routing.retention_timers (fire_at)"
        " WHERE fire_at IS NOT NULL"
    )
    # Legal holds as intake announced them (privacy.legal_hold_placed / _released):
    # exactly one of a case, a data subject, or a matter's cases.
    op.execute(
        """CREATE TABLE routing.legal_holds (
            hold_id uuid PRIMARY KEY,
            case_id uuid,
            subject_id text,
            case_ids uuid[] NOT NULL DEFAULT '{}',
            placed_at timestamptz NOT NULL,
            released_at timestamptz
        )"""
    )
    op.execute(
        "CREATE INDEX routing_legal_holds_active_idx ON routing.legal_holds (hold_id)"
        " WHERE released_at IS NULL"
    )
    # The data subjects of a case as routing learnt them from case.submitted (the reporter
    # and the named respondents), so a hold on a person covers their cases.
    op.execute(
        """CREATE TABLE routing.case_subjects (
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            subject_id text NOT NULL,
            PRIMARY KEY (case_id, subject_id)
        )"""
    )
    op.execute(
        "CREATE INDEX routing_case_subjects_subject_idx ON routing.case_subjects (subject_id)"
    )
    for statement in grant_service_sql("routing"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE routing.case_subjects, routing.legal_holds, routing.retention_timers")
