"""routing: written agreements (versions, acceptances per party role), their obligations
and the obligation and follow-up timers

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
    # One row per agreement: its latest drafted version (terms and parties as drafted,
    # jsonb) and the version in force, if any. A new version replaces terms and parties.
    op.execute(
        """CREATE TABLE routing.agreements (
            agreement_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            version int NOT NULL CHECK (version >= 1),
            terms jsonb NOT NULL,
            parties jsonb NOT NULL,
            drafted_at timestamptz NOT NULL,
            in_force_version int,
            in_force_at timestamptz,
            in_force_event_id uuid,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX routing_agreements_case_idx ON routing.agreements (case_id)")
    # Acceptances, per version and party role: a new version starts with none.
    op.execute(
        """CREATE TABLE routing.agreement_acceptances (
            agreement_id uuid NOT NULL REFERENCES routing.agreements (agreement_id),
            version int NOT NULL,
            party_role text NOT NULL CHECK (party_role IN ('employee', 'employer_representative')),
            employee_id text NOT NULL,
            accepted_at timestamptz NOT NULL,
            event_id uuid NOT NULL,
            PRIMARY KEY (agreement_id, version, party_role)
        )"""
    )
    # Tracked obligations (terms with an owner and a due date) per version; `met_on` is a
    # fact about the term, carried to later versions that keep the term.
    op.execute(
        """CREATE TABLE routing.agreement_obligations (
            agreement_id uuid NOT NULL REFERENCES routing.agreements (agreement_id),
            version int NOT NULL,
            term_id uuid NOT NULL,
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            owner_role text NOT NULL,
            due_on date NOT NULL,
            due_at timestamptz,
            due_soon_at timestamptz,
            met_on date,
            met_at timestamptz,
            met_event_id uuid,
            PRIMARY KEY (agreement_id, version, term_id)
        )"""
    )
    # The timers of the version in force: an obligation's reminder and overdue instant,
    # and each follow-up check-in. Fired once (fired_at, fired_event_id); dropped when the
    # obligation is met or a later version comes into force.
    op.execute(
        """CREATE TABLE routing.agreement_timers (
            id bigserial PRIMARY KEY,
            agreement_id uuid NOT NULL REFERENCES routing.agreements (agreement_id),
            version int NOT NULL,
            case_id uuid NOT NULL REFERENCES routing.cases (case_id),
            kind text NOT NULL CHECK (kind IN ('due_soon', 'overdue', 'follow_up')),
            term_id uuid,
            check_in int,
            fire_at timestamptz NOT NULL,
            due_at timestamptz NOT NULL,
            fired_at timestamptz,
            fired_event_id uuid,
            CHECK ((kind = 'follow_up') = (check_in IS NOT NULL AND term_id IS NULL))
        )"""
    )
    op.execute(
        "CREATE INDEX routing_agreement_timers_due_idx ON routing.agreement_timers (fire_at)"
        " WHERE fired_at IS NULL"
    )
    for statement in grant_service_sql("routing"):
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE routing.agreement_timers, routing.agreement_obligations,"
        " routing.agreement_acceptances, routing.agreements"
    )
