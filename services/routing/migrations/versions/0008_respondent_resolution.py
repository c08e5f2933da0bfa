"""routing: a person resolves a flagged respondent (matched_by 'person', who and when)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A respondent routing could not match is resolved later by a member of staff
    # (case.respondent_resolution_requested): matched_by 'person', and who asked, when.
    op.execute(
        "ALTER TABLE routing.case_respondents"
        " DROP CONSTRAINT case_respondents_matched_by_check,"
        " ADD CONSTRAINT case_respondents_matched_by_check"
        " CHECK (matched_by IN ('employee_id', 'email', 'name', 'person')),"
        " ADD COLUMN resolved_by text,"
        " ADD COLUMN resolved_at timestamptz,"
        " ADD COLUMN resolution_reason text"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE routing.case_respondents SET employee_id = NULL, matched_by = NULL,"
        " problem = 'not_found' WHERE matched_by = 'person'"
    )
    op.execute(
        "ALTER TABLE routing.case_respondents"
        " DROP COLUMN resolved_by, DROP COLUMN resolved_at, DROP COLUMN resolution_reason,"
        " DROP CONSTRAINT case_respondents_matched_by_check,"
        " ADD CONSTRAINT case_respondents_matched_by_check"
        " CHECK (matched_by IN ('employee_id', 'email', 'name'))"
    )
