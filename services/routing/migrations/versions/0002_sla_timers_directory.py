"""routing: SLA clocks, deadline timers, employee directory, policy loads, case lifecycle

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """ALTER TABLE routing.cases
            ADD COLUMN priority_reasons text[] NOT NULL DEFAULT '{}',
            ADD COLUMN priority_raises text[] NOT NULL DEFAULT '{}',
            ADD COLUMN respondent_ids text[] NOT NULL DEFAULT '{}',
            ADD COLUMN correlation_id uuid,
            ADD COLUMN status_changed_at timestamptz,
            ADD COLUMN employee_replied_at timestamptz,
            ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now()"""
    )
    op.execute(
        """CREATE INDEX routing_cases_open_owner_idx ON routing.cases (owner_id)
           WHERE status IN ('assigned', 'in_progress', 'waiting_on_employee')"""
    )
    # One row per clock of a case; consumed is working time used before running_since.
    op.execute(
        """CREATE TABLE routing.sla_clocks (
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            clock text NOT NULL CHECK (clock IN ('first_response', 'resolution')),
            target interval NOT NULL,
            consumed interval NOT NULL DEFAULT '0',
            running_since timestamptz,
            stopped_at timestamptz,
            warned boolean NOT NULL DEFAULT false,
            breached boolean NOT NULL DEFAULT false,
            escalated_level integer NOT NULL DEFAULT 0,
            due_at timestamptz,
            PRIMARY KEY (case_id, clock)
        )"""
    )
    # Deadline timers: claimed by the timer loop with FOR UPDATE SKIP LOCKED and marked
    # fired in the transaction that emits their event, so each fires once across replicas.
    op.execute(
        """CREATE TABLE routing.timers (
            id bigserial PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            clock text NOT NULL,
            kind text NOT NULL CHECK (kind IN ('warning', 'breach', 'escalation')),
            level integer NOT NULL DEFAULT 0,
            fire_at timestamptz NOT NULL,
            fired_at timestamptz,
            fired_event_id uuid
        )"""
    )
    op.execute(
        "CREATE INDEX routing_timers_due_idx ON routing.timers (fire_at) WHERE fired_at IS NULL"
    )
    op.execute("CREATE INDEX routing_timers_case_idx ON routing.timers (case_id)")
    op.execute(
        """CREATE TABLE routing.employees (
            employee_id text PRIMARY KEY,
            name text NOT NULL,
            email text,
            manager_id text,
            department text,
            active boolean NOT NULL DEFAULT true,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX routing_employees_manager_idx ON routing.employees (manager_id)")
    # Each distinct policy hash is announced once (restarts with the same file stay quiet).
    op.execute(
        """CREATE TABLE routing.policy_loads (
            policy_hash text PRIMARY KEY,
            version integer NOT NULL,
            source text NOT NULL,
            first_loaded_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    # Manual assignments and reassignments, for the record of who moved a case and why.
    op.execute(
        """CREATE TABLE routing.assignments (
            id bigserial PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            owner_id text NOT NULL,
            previous_owner_id text,
            reason text NOT NULL,
            event_id uuid NOT NULL,
            assigned_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    for statement in grant_service_sql("routing"):
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE routing.assignments, routing.policy_loads, routing.employees,"
        " routing.timers, routing.sla_clocks"
    )
    op.execute("DROP INDEX routing.routing_cases_open_owner_idx")
    op.execute(
        """ALTER TABLE routing.cases DROP COLUMN priority_reasons,
            DROP COLUMN priority_raises, DROP COLUMN respondent_ids,
            DROP COLUMN correlation_id, DROP COLUMN status_changed_at,
            DROP COLUMN employee_replied_at, DROP COLUMN updated_at"""
    )
