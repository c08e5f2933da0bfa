"""intake: portal sessions (server-side sign-out) and anonymous key attempts per source

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
    # One row per portal sign-in: its id is the token's `jti`, so signing out (revoked_at)
    # stops the token at once wherever it is replayed. The CSRF token of the session's
    # forms lives here too, bound to the session and new at every sign-in.
    op.execute(
        """CREATE TABLE intake.portal_sessions (
            session_id uuid PRIMARY KEY,
            subject text NOT NULL,
            csrf_token text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            revoked_at timestamptz
        )"""
    )
    op.execute("CREATE INDEX portal_sessions_expiry_idx ON intake.portal_sessions (expires_at)")
    # Secret-key attempts counted per (source, reference), both stored as keyed hashes so
    # the table never links an address to a report. Keyed by what was typed, not by case:
    # an unknown reference locks exactly like a known one (existence is not revealed).
    op.execute(
        """CREATE TABLE intake.anonymous_key_attempts (
            source_hash text NOT NULL,
            reference_hash text NOT NULL,
            attempts integer NOT NULL,
            locked_until timestamptz,
            last_attempt_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (source_hash, reference_hash)
        )"""
    )
    op.execute(
        "CREATE INDEX anonymous_key_attempts_age_idx ON intake.anonymous_key_attempts"
        " (last_attempt_at)"
    )
    # The per-case counter let any guesser lock the real reporter out; it is replaced.
    op.execute("DROP TABLE intake.anonymous_key_failures")
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        """CREATE TABLE intake.anonymous_key_failures (
            case_id uuid PRIMARY KEY REFERENCES intake.cases (case_id),
            failures integer NOT NULL,
            locked_until timestamptz
        )"""
    )
    op.execute("DROP TABLE intake.anonymous_key_attempts, intake.portal_sessions")
    for statement in grant_service_sql("intake"):
        op.execute(statement)
