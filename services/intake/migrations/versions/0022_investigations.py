"""intake: investigations (allegations, interim measures, interviews, statements, evidence
log, findings, outcome and its approval, appeals) as recorded at intake's doors

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One allegation is about one respondent (an employee id of the directory).
    op.execute(
        """CREATE TABLE intake.investigation_allegations (
            allegation_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            allegation_type text NOT NULL,
            summary text NOT NULL,
            respondent_employee_id text NOT NULL,
            respondent_name text,
            occurred_on date,
            recorded_by text NOT NULL,
            recorded_at timestamptz NOT NULL
        )"""
    )
    op.execute(
        "CREATE INDEX investigation_allegations_case_idx"
        " ON intake.investigation_allegations (case_id, recorded_at)"
    )
    op.execute(
        "CREATE INDEX investigation_allegations_respondent_idx"
        " ON intake.investigation_allegations (respondent_employee_id)"
    )
    op.execute(
        """CREATE TABLE intake.investigation_measures (
            measure_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            kind text NOT NULL,
            description text NOT NULL,
            applies_to jsonb NOT NULL DEFAULT '[]'::jsonb,
            recorded_by text NOT NULL,
            recorded_at timestamptz NOT NULL
        )"""
    )
    # `interviewer`: the staff member's work contact {id, name, email}.
    op.execute(
        """CREATE TABLE intake.investigation_interviews (
            interview_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            interviewee_role text NOT NULL,
            interviewee_name text NOT NULL,
            interviewee_email text NOT NULL,
            interviewee_employee_id text,
            scheduled_for timestamptz NOT NULL,
            duration_minutes integer NOT NULL,
            time_zone text NOT NULL,
            location text,
            video_link text,
            companion_allowed boolean NOT NULL,
            interviewer jsonb NOT NULL,
            recorded_by text NOT NULL,
            recorded_at timestamptz NOT NULL
        )"""
    )
    # A statement and the person's review of it: awaiting_review until they confirm it
    # or give corrections (the last review counts).
    op.execute(
        """CREATE TABLE intake.investigation_statements (
            statement_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            interview_id uuid REFERENCES intake.investigation_interviews (interview_id),
            given_by_role text NOT NULL,
            given_by_name text NOT NULL,
            given_by_employee_id text,
            text text NOT NULL,
            allegation_ids jsonb NOT NULL DEFAULT '[]'::jsonb,
            companion_name text,
            recorded_by text NOT NULL,
            recorded_at timestamptz NOT NULL,
            review_state text NOT NULL DEFAULT 'awaiting_review'
                CHECK (review_state IN ('awaiting_review', 'confirmed', 'corrected')),
            corrections text,
            reviewed_at timestamptz
        )"""
    )
    # The evidence log: what, from where, collected by whom and when, and its SHA-256
    # (a document's is computed by intake when it stores the file).
    op.execute(
        """CREATE TABLE intake.investigation_evidence (
            evidence_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            kind text NOT NULL CHECK (kind IN ('document', 'item')),
            description text NOT NULL,
            source text NOT NULL,
            collected_by text NOT NULL,
            collected_at timestamptz NOT NULL,
            sha256 text,
            attachment jsonb,
            allegation_ids jsonb NOT NULL DEFAULT '[]'::jsonb
        )"""
    )
    # One current finding per allegation; a new one supersedes it (history kept).
    op.execute(
        """CREATE TABLE intake.investigation_findings (
            finding_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            allegation_id uuid NOT NULL
                REFERENCES intake.investigation_allegations (allegation_id),
            finding text NOT NULL,
            reasoning text NOT NULL,
            recorded_by text NOT NULL,
            recorded_at timestamptz NOT NULL,
            superseded_by uuid,
            superseded_at timestamptz
        )"""
    )
    op.execute(
        "CREATE UNIQUE INDEX investigation_findings_current_idx"
        " ON intake.investigation_findings (allegation_id) WHERE superseded_by IS NULL"
    )
    # The decided outcome and its approval as routing judged it: decided ->
    # approval_requested -> approved | refused (a new decision supersedes the last).
    op.execute(
        """CREATE TABLE intake.investigation_outcomes (
            outcome_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            summary text NOT NULL,
            actions jsonb NOT NULL,
            decided_by text NOT NULL,
            decided_at timestamptz NOT NULL,
            approval_state text NOT NULL DEFAULT 'decided'
                CHECK (approval_state IN ('decided', 'approval_requested', 'approved',
                    'refused', 'superseded')),
            approval_request_event_id uuid,
            approval_requested_by text,
            approval_refused_reason text,
            approver jsonb,
            approved_at timestamptz,
            appeal_window_ends_at timestamptz,
            window_closed_at timestamptz,
            appealed boolean
        )"""
    )
    op.execute(
        "CREATE INDEX investigation_outcomes_case_idx"
        " ON intake.investigation_outcomes (case_id, decided_at)"
    )
    op.execute(
        """CREATE TABLE intake.investigation_appeals (
            appeal_id uuid PRIMARY KEY,
            case_id uuid NOT NULL REFERENCES intake.cases (case_id),
            outcome_id uuid NOT NULL REFERENCES intake.investigation_outcomes (outcome_id),
            by_role text NOT NULL,
            by_employee_id text,
            grounds text NOT NULL,
            lodged_at timestamptz NOT NULL,
            decision text,
            reasoning text,
            decided_by text,
            decided_at timestamptz
        )"""
    )
    op.execute(
        "CREATE UNIQUE INDEX investigation_appeals_one_per_party_idx"
        " ON intake.investigation_appeals (outcome_id, by_role, coalesce(by_employee_id, ''))"
    )
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        """DROP TABLE intake.investigation_appeals, intake.investigation_outcomes,
            intake.investigation_findings, intake.investigation_evidence,
            intake.investigation_statements, intake.investigation_interviews,
            intake.investigation_measures, intake.investigation_allegations"""
    )
