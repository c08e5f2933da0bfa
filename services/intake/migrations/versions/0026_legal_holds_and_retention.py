"""intake: legal holds (placed and released by privacy officers and HR managers) and the
record of cases whose personal data retention erased (issue #14)

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A hold covers exactly one of: a case, a data subject (by subject id, never an
    # address), or a matter (a named set of cases). Released holds stay, with who, when
    # and why (the GET lists both).
    op.execute(
        """CREATE TABLE intake.legal_holds (
            hold_id uuid PRIMARY KEY,
            kind text NOT NULL CHECK (kind IN ('case', 'subject', 'matter')),
            case_id uuid REFERENCES intake.cases (case_id),
            subject_id text,
            matter_name text,
            case_ids uuid[] NOT NULL DEFAULT '{}',
            reason text NOT NULL,
            placed_by text NOT NULL,
            placed_at timestamptz NOT NULL,
            placed_event_id uuid NOT NULL,
            released_by text,
            released_at timestamptz,
            release_reason text,
            released_event_id uuid,
            CHECK ((kind = 'case') = (case_id IS NOT NULL)),
            CHECK ((kind = 'subject') = (subject_id IS NOT NULL)),
            CHECK ((kind = 'matter') = (matter_name IS NOT NULL))
        )"""
    )
    op.execute("CREATE INDEX intake_legal_holds_placed_idx ON intake.legal_holds (placed_at)")
    # Cases whose personal data retention erased (privacy.retention_erased): the rule and
    # when, so the case page and the API can say why the case is an anonymous skeleton.
    op.execute(
        """CREATE TABLE intake.case_retention_erasures (
            case_id uuid PRIMARY KEY REFERENCES intake.cases (case_id),
            rule text NOT NULL,
            closed_at timestamptz NOT NULL,
            erased_at timestamptz NOT NULL,
            event_id uuid NOT NULL
        )"""
    )
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE intake.case_retention_erasures, intake.legal_holds")
