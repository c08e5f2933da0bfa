"""intake: a case's full history (one row per event) and note authors by name

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per event on a case, written in the transaction that writes or consumes the
    # event: event_id makes a redelivery a no-op. Texts (message bodies, note bodies) stay
    # in their own tables and are joined when read; `summary` holds the facts of the event
    # (statuses, team, owner and their names, reasons), `actor_name` the display name of
    # who acted as known when it was written.
    op.execute(
        """CREATE TABLE intake.case_history (
            event_id uuid PRIMARY KEY,
            position bigint GENERATED ALWAYS AS IDENTITY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            occurred_at timestamptz NOT NULL,
            event_type text NOT NULL,
            kind text NOT NULL,
            actor_type text NOT NULL,
            actor_id text,
            actor_name text,
            causation_id uuid,
            summary jsonb NOT NULL DEFAULT '{}'::jsonb,
            recorded_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute(
        "CREATE INDEX case_history_case_idx ON intake.case_history (case_id, occurred_at, position)"
    )
    # Names of staff known to intake, for ids an event carries without a name.
    op.execute(
        "CREATE INDEX case_history_actor_idx ON intake.case_history (actor_id, occurred_at DESC)"
        " WHERE actor_name IS NOT NULL"
    )
    op.execute("ALTER TABLE intake.case_notes ADD COLUMN author_name text")
    op.execute("UPDATE intake.case_notes SET author_name = 'Routing' WHERE author_id = 'routing'")
    _backfill()
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def _backfill() -> None:
    """History of the cases intake already holds, from its own tables (ids derived from the
    rows, so running it twice adds nothing): submissions, messages and notes."""
    op.execute(
        """INSERT INTO intake.case_history (event_id, case_id, occurred_at, event_type, kind,
               actor_type, actor_id, actor_name, summary)
           SELECT md5('submitted:' || c.case_id)::uuid, c.case_id, c.submitted_at,
                  'case.submitted', 'submitted',
                  CASE WHEN c.logged_by IS NOT NULL THEN 'agent'
                       WHEN c.anonymous THEN 'anonymous' ELSE 'employee' END,
                  CASE WHEN c.logged_by IS NOT NULL THEN c.logged_by
                       WHEN c.anonymous THEN NULL ELSE c.reporter_employee_id END,
                  CASE WHEN c.logged_by IS NULL AND NOT c.anonymous THEN c.reporter_name END,
                  jsonb_build_object('channel', c.channel, 'reference', c.reference,
                                     'backfilled', true)
           FROM intake.cases c
           ON CONFLICT (event_id) DO NOTHING"""
    )
    op.execute(
        """INSERT INTO intake.case_history (event_id, case_id, occurred_at, event_type, kind,
               actor_type, actor_id, actor_name, summary)
           SELECT md5('message:' || m.message_id)::uuid, m.case_id, m.received_at,
                  'case.message_received', 'message',
                  CASE m.sender_role WHEN 'agent' THEN 'agent'
                       WHEN 'anonymous_reporter' THEN 'anonymous' ELSE 'employee' END,
                  CASE WHEN m.sender_role = 'reporter' THEN c.reporter_employee_id END,
                  CASE WHEN m.sender_role = 'reporter' THEN c.reporter_name END,
                  jsonb_build_object('message_id', m.message_id, 'sender_role', m.sender_role,
                                     'channel', m.channel, 'backfilled', true)
           FROM intake.case_messages m JOIN intake.cases c USING (case_id)
           ON CONFLICT (event_id) DO NOTHING"""
    )
    op.execute(
        """INSERT INTO intake.case_history (event_id, case_id, occurred_at, event_type, kind,
               actor_type, actor_id, actor_name, summary)
           SELECT md5('note:' || n.note_id)::uuid, n.case_id, n.created_at,
                  'case.note_added', 'note',
                  CASE WHEN n.author_id = 'routing' THEN 'service' ELSE 'agent' END,
                  n.author_id, n.author_name,
                  jsonb_build_object('note_id', n.note_id, 'internal', n.internal,
                                     'backfilled', true)
           FROM intake.case_notes n
           ON CONFLICT (event_id) DO NOTHING"""
    )


def downgrade() -> None:
    op.execute("ALTER TABLE intake.case_notes DROP COLUMN author_name")
    op.execute("DROP TABLE intake.case_history")
