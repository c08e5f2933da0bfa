"""privacy_keys: one data key per (data subject, scope), and the log of every key access

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from alembic import op

from shared.settings import db_role

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ROLE = db_role("keys")


def upgrade() -> None:
    # A destroyed key keeps its row (key NULL, destroyed_at, destroyed_reason): the proof
    # of what was shredded, when and why; a key is never created again for that pair.
    op.execute(
        """CREATE TABLE privacy_keys.data_keys (
            subject_id text NOT NULL,
            scope text NOT NULL,
            key bytea,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            created_by text NOT NULL,
            destroyed_at timestamptz,
            destroyed_reason text,
            PRIMARY KEY (subject_id, scope),
            CHECK (key IS NULL OR octet_length(key) = 32),
            CHECK ((key IS NULL) = (destroyed_at IS NOT NULL)),
            CHECK ((destroyed_at IS NULL) = (destroyed_reason IS NULL))
        )"""
    )
    op.execute("CREATE INDEX data_keys_scope_idx ON privacy_keys.data_keys (scope)")
    # The only change a key may undergo is its destruction: no new bytes for a live key,
    # no key for a destroyed one (whatever was sealed under it stays unreadable).
    op.execute(
        """CREATE FUNCTION privacy_keys.only_destroy() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF OLD.key IS NULL OR NEW.key IS NOT NULL
               OR NEW.subject_id <> OLD.subject_id OR NEW.scope <> OLD.scope
               OR NEW.created_at <> OLD.created_at THEN
                RAISE EXCEPTION 'privacy_keys.data_keys: a key may only be destroyed'
                    USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN NEW;
        END $$"""
    )
    op.execute(
        "CREATE TRIGGER data_keys_only_destroy BEFORE UPDATE ON privacy_keys.data_keys"
        " FOR EACH ROW EXECUTE FUNCTION privacy_keys.only_destroy()"
    )
    op.execute(
        """CREATE TABLE privacy_keys.key_access (
            id bigserial PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT clock_timestamp(),
            service text NOT NULL,
            subject_id text NOT NULL,
            scope text NOT NULL,
            purpose text NOT NULL,
            outcome text NOT NULL
                CHECK (outcome IN ('created', 'read', 'destroyed', 'absent', 'erased'))
        )"""
    )
    op.execute(
        "CREATE INDEX key_access_subject_idx ON privacy_keys.key_access (subject_id, scope, at)"
    )
    # What a subject is to a case (e.g. its reporter): free text of the case that names
    # nobody else (messages, notes) is sealed under that subject's key.
    op.execute(
        """CREATE TABLE privacy_keys.scope_roles (
            scope text NOT NULL,
            role text NOT NULL,
            subject_id text NOT NULL,
            PRIMARY KEY (scope, role),
            FOREIGN KEY (subject_id, scope) REFERENCES privacy_keys.data_keys
        )"""
    )
    # Keys are shredded, never deleted (the row is the record), and the access log only
    # grows: the role may not DELETE either, nor UPDATE the log.
    op.execute(f'GRANT USAGE ON SCHEMA privacy_keys TO "{ROLE}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON privacy_keys.data_keys TO "{ROLE}"')
    op.execute(f'GRANT SELECT, INSERT ON privacy_keys.key_access TO "{ROLE}"')
    op.execute(f'GRANT SELECT, INSERT ON privacy_keys.scope_roles TO "{ROLE}"')
    op.execute(f'GRANT USAGE ON SEQUENCE privacy_keys.key_access_id_seq TO "{ROLE}"')
    op.execute(f'REVOKE ALL ON privacy_keys.alembic_version FROM "{ROLE}"')


def downgrade() -> None:
    op.execute("DROP TABLE privacy_keys.key_access")
    op.execute("DROP TABLE privacy_keys.scope_roles")
    op.execute("DROP TABLE privacy_keys.data_keys")
    op.execute("DROP FUNCTION privacy_keys.only_destroy()")
