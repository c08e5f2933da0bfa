"""intake: single sign-on (pending OpenID Connect sign-ins; the provider's session per
portal session, for back-channel logout)

Revision ID: 0028
Revises: 0025
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per sign-in sent to the provider, keyed by the SHA-256 of its `state` (the
    # browser holds the state itself in a cookie): the nonce and the PKCE code verifier
    # never leave the server. Deleted when the provider returns (single use).
    op.execute(
        """CREATE TABLE intake.sso_sign_ins (
            state_hash text PRIMARY KEY,
            nonce text NOT NULL,
            code_verifier text NOT NULL,
            next_page text,
            expires_at timestamptz NOT NULL
        )"""
    )
    op.execute("CREATE INDEX sso_sign_ins_expiry_idx ON intake.sso_sign_ins (expires_at)")
    # The provider's issuer, subject (`sub`) and session (`sid`) of a portal session
    # signed in by it: a back-channel logout token names the sid or the sub.
    op.execute(
        "ALTER TABLE intake.portal_sessions ADD COLUMN provider_issuer text,"
        " ADD COLUMN provider_subject text, ADD COLUMN provider_session text"
    )
    op.execute(
        "CREATE INDEX portal_sessions_provider_sid_idx ON intake.portal_sessions"
        " (provider_issuer, provider_session) WHERE provider_session IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX portal_sessions_provider_sub_idx ON intake.portal_sessions"
        " (provider_issuer, provider_subject) WHERE provider_subject IS NOT NULL"
    )
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "ALTER TABLE intake.portal_sessions DROP COLUMN provider_issuer,"
        " DROP COLUMN provider_subject, DROP COLUMN provider_session"
    )
    op.execute("DROP TABLE intake.sso_sign_ins")
