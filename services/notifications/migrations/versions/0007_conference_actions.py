"""notifications: the agreed actions of case conferences, for their due-soon and overdue mails

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
    # From conference.summary_recorded: who owns each agreed action when it is a participant
    # (their due-soon / overdue mail then carries their own signed link) and when the
    # conference was (the mails say "agreed at the conference of <date>"). Action events
    # name neither. Nothing of the action itself (its description) is kept.
    op.execute(
        """CREATE TABLE notifications.conference_actions (
            action_id uuid PRIMARY KEY,
            conference_id uuid NOT NULL,
            case_id uuid NOT NULL,
            owner_participant_id uuid,
            conference_at timestamptz NOT NULL,
            time_zone text NOT NULL,
            recorded_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    for statement in grant_service_sql("notifications"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE notifications.conference_actions")
