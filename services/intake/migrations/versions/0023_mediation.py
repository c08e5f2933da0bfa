"""intake: independent case management (mediation): assessments, ground rules, meetings,
the written agreement, its obligations and follow-up check-ins

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The initial assessment of each party (mediation.assessment_recorded): the latest per
    # role. `account` and `desired_outcomes` are the party's own: the other party never
    # reads them. `documents`: [{attachment_id, filename, content_type, size, sha256}].
    op.execute(
        """CREATE TABLE intake.mediation_assessments (
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            party_role text NOT NULL
                CHECK (party_role IN ('employee', 'employer_representative')),
            employee_id text NOT NULL,
            name text NOT NULL,
            email text NOT NULL,
            account text NOT NULL,
            desired_outcomes jsonb NOT NULL,
            documents jsonb NOT NULL DEFAULT '[]'::jsonb,
            recorded_by text NOT NULL,
            recorded_at timestamptz NOT NULL,
            event_id uuid NOT NULL,
            PRIMARY KEY (case_id, party_role)
        )"""
    )
    op.execute(
        "CREATE INDEX intake_mediation_assessments_party_idx"
        " ON intake.mediation_assessments (employee_id)"
    )
    # Ground rules proposals (the latest counts); `acceptances`: {party_role: accepted_at}.
    op.execute(
        """CREATE TABLE intake.mediation_ground_rules (
            ground_rules_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            rules jsonb NOT NULL,
            parties jsonb NOT NULL,
            acceptances jsonb NOT NULL DEFAULT '{}'::jsonb,
            proposed_by text NOT NULL,
            proposed_at timestamptz NOT NULL
        )"""
    )
    op.execute(
        "CREATE INDEX intake_mediation_ground_rules_case_idx"
        " ON intake.mediation_ground_rules (case_id, proposed_at)"
    )
    # Facilitated discussions: scheduled, then held with a shared summary (discussed,
    # proposals) and the case manager's privileged notes (never shown to anyone else).
    op.execute(
        """CREATE TABLE intake.mediation_meetings (
            meeting_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            scheduled_for timestamptz NOT NULL,
            duration_minutes integer NOT NULL,
            time_zone text NOT NULL,
            location text,
            video_link text,
            case_manager jsonb NOT NULL,
            scheduled_at timestamptz NOT NULL,
            held_at timestamptz,
            discussed text,
            proposals jsonb,
            privileged_notes text,
            recorded_at timestamptz
        )"""
    )
    op.execute(
        "CREATE INDEX intake_mediation_meetings_case_idx"
        " ON intake.mediation_meetings (case_id, scheduled_for)"
    )
    # The written agreement, one per case, re-drafted in versions: a new version clears
    # the acceptances ({party_role: {version, accepted_at}}). Routing's agreement.in_force
    # sets in_force_at / in_force_version / follow_ups_at.
    op.execute(
        """CREATE TABLE intake.mediation_agreements (
            agreement_id uuid PRIMARY KEY,
            case_id uuid NOT NULL UNIQUE REFERENCES intake.cases (case_id),
            version integer NOT NULL,
            terms jsonb NOT NULL,
            parties jsonb NOT NULL,
            acceptances jsonb NOT NULL DEFAULT '{}'::jsonb,
            drafted_by text NOT NULL,
            drafted_at timestamptz NOT NULL,
            in_force_at timestamptz,
            in_force_version integer,
            follow_ups_at jsonb NOT NULL DEFAULT '[]'::jsonb
        )"""
    )
    # The tracked obligations of the agreement in force (routing's clocks): state
    # open | due_soon | overdue | met.
    op.execute(
        """CREATE TABLE intake.mediation_obligations (
            agreement_id uuid NOT NULL REFERENCES intake.mediation_agreements (agreement_id),
            term_id uuid NOT NULL,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            owner_role text NOT NULL,
            due_at timestamptz NOT NULL,
            due_soon_at timestamptz,
            state text NOT NULL DEFAULT 'open'
                CHECK (state IN ('open', 'due_soon', 'overdue', 'met')),
            escalated_to jsonb,
            met_on date,
            met_note text,
            PRIMARY KEY (agreement_id, term_id)
        )"""
    )
    # Follow-up check-ins (case.follow_up_due marks one as due).
    op.execute(
        """CREATE TABLE intake.mediation_follow_ups (
            agreement_id uuid NOT NULL REFERENCES intake.mediation_agreements (agreement_id),
            check_in integer NOT NULL,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            due_at timestamptz NOT NULL,
            fell_due_at timestamptz,
            PRIMARY KEY (agreement_id, check_in)
        )"""
    )
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE intake.mediation_follow_ups, intake.mediation_obligations,"
        " intake.mediation_agreements, intake.mediation_meetings,"
        " intake.mediation_ground_rules, intake.mediation_assessments"
    )
