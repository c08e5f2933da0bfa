"""audit: the append-only, hash-chained event log

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from alembic import op

from shared.settings import db_role

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ROLE = db_role("audit")


def upgrade() -> None:
    # seq is assigned by the writer under an advisory lock (no sequence: a rolled-back
    # transaction would leave a gap). event_id UNIQUE is the audit inbox.
    # actor/payload are `json`, not jsonb: json keeps the canonical text byte for byte,
    # which the hash covers (see services/audit/domain/chain.py).
    op.execute(
        """CREATE TABLE audit.log (
            seq bigint PRIMARY KEY CHECK (seq > 0),
            event_id uuid NOT NULL UNIQUE,
            event_type text NOT NULL,
            schema_version integer NOT NULL,
            occurred_at timestamptz NOT NULL,
            recorded_at timestamptz NOT NULL,
            producer text NOT NULL,
            correlation_id uuid NOT NULL,
            causation_id uuid,
            case_id uuid,
            actor json NOT NULL,
            payload json NOT NULL,
            prev_hash text NOT NULL,
            entry_hash text NOT NULL
        )"""
    )
    op.execute("CREATE INDEX log_case_seq_idx ON audit.log (case_id, seq)")
    op.execute(
        """CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit.log is append-only: % refused', TG_OP
                USING ERRCODE = 'restrict_violation',
                      HINT = 'entries are never changed; record a new event instead';
        END $$"""
    )
    op.execute(
        "CREATE TRIGGER log_refuse_update_delete BEFORE UPDATE OR DELETE ON audit.log"
        " FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER log_refuse_truncate BEFORE TRUNCATE ON audit.log"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()"
    )
    # The service role may append and read, nothing else (not shared grant_service_sql,
    # which grants UPDATE/DELETE).
    op.execute("REVOKE ALL ON FUNCTION audit.refuse_change() FROM PUBLIC")
    op.execute("REVOKE ALL ON audit.log FROM PUBLIC")
    op.execute(f'REVOKE ALL ON audit.log FROM "{ROLE}"')
    op.execute(f'REVOKE CREATE ON SCHEMA audit FROM "{ROLE}"')
    op.execute(f'GRANT USAGE ON SCHEMA audit TO "{ROLE}"')
    op.execute(f'GRANT SELECT, INSERT ON audit.log TO "{ROLE}"')
    op.execute(f'REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit.log FROM "{ROLE}"')
    op.execute(f'REVOKE ALL ON audit.alembic_version FROM "{ROLE}"')


def downgrade() -> None:
    op.execute("DROP TABLE audit.log")
    op.execute("DROP FUNCTION audit.refuse_change()")
