"""routing: statutory clocks (jurisdiction packs, conference rules) and their timers

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per clock started on a case: once per (pack, clock) for the case, or per
    # conference (clock_key = the conference id). The due instant is fixed at the start
    # (the pack's calendar); status running -> met. A breach is a fact on a running clock
    # (breached_at), which staff or a later event may still meet (met_on_time false).
    op.execute(
        """CREATE TABLE routing.statutory_clocks (
            clock_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            pack text NOT NULL,
            clock text NOT NULL,
            clock_key text NOT NULL DEFAULT '',
            conference_id uuid,
            label text NOT NULL,
            citation text NOT NULL,
            basis text NOT NULL CHECK (basis IN ('working', 'calendar')),
            trigger text NOT NULL,
            trigger_event_id uuid NOT NULL,
            escalate boolean NOT NULL,
            started_at timestamptz NOT NULL,
            due_at timestamptz NOT NULL,
            due_soon_at timestamptz,
            status text NOT NULL CHECK (status IN ('running', 'met')),
            due_soon_sent_at timestamptz,
            breached_at timestamptz,
            escalated_to text,
            escalation_level integer,
            met_at timestamptz,
            met_by text,
            met_on_time boolean,
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (case_id, pack, clock, clock_key)
        )"""
    )
    # Claimed like the task timers (FOR UPDATE SKIP LOCKED with their clock and case) and
    # marked fired in the transaction that records their event: once across replicas.
    op.execute(
        """CREATE TABLE routing.statutory_clock_timers (
            id bigserial PRIMARY KEY,
            clock_id uuid NOT NULL REFERENCES routing.statutory_clocks (clock_id),
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            kind text NOT NULL CHECK (kind IN ('due_soon', 'breached')),
            fire_at timestamptz NOT NULL,
            fired_at timestamptz,
            fired_event_id uuid
        )"""
    )
    op.execute(
        "CREATE INDEX routing_statutory_timers_due_idx ON routing.statutory_clock_timers"
        " (fire_at) WHERE fired_at IS NULL"
    )
    op.execute(
        "CREATE INDEX routing_statutory_timers_clock_idx ON routing.statutory_clock_timers"
        " (clock_id)"
    )
    for statement in grant_service_sql("routing"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE routing.statutory_clock_timers, routing.statutory_clocks")
