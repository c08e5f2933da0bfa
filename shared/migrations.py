"""Alembic, one version history per service schema, run with the admin connection.

Each service keeps `services/<name>/migrations/` whose env.py calls `run_env`.
The helpers here emit the DDL every service repeats: its role, schema, inbox and outbox.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command, context
from alembic.config import Config
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url

from shared.settings import SERVICES, db_role

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"
# The key store of personal data (shared/privacy/keys.py): not a service, but migrated
# like one, after the services, by `hrcase migrate` and the test fixtures.
KEY_STORE = "keys"
KEY_STORE_MIGRATIONS = Path(__file__).resolve().parent / "privacy" / "migrations"


def sqlalchemy_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql+psycopg").render_as_string(False)


def ensure_database(database_url: str) -> None:
    """Create the target database if it does not exist (connects to `postgres`)."""
    url = make_url(database_url)
    admin = url.set(database="postgres")
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (url.database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{url.database}"')


def alembic_config(service: str, database_url: str) -> Config:
    cfg = Config()
    location = (
        KEY_STORE_MIGRATIONS if service == KEY_STORE else SERVICES_DIR / service / "migrations"
    )
    cfg.set_main_option("script_location", str(location))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url))
    return cfg


def migrate(
    database_url: str, services: tuple[str, ...] = SERVICES, *, key_store: bool = True
) -> None:
    """Upgrade every service's schema and (unless `key_store` is off) the key store's."""
    ensure_database(database_url)
    for service in services:
        command.upgrade(alembic_config(service, database_url), "head")
    if key_store:
        command.upgrade(alembic_config(KEY_STORE, database_url), "head")


def run_env(schema: str, *, role: str | None = None) -> None:
    """Body of every service's migrations/env.py (online mode only); the role defaults to
    `hrcase_<schema>`."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url not set"
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text(ensure_role_sql(role or db_role(schema))))
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.commit()
        context.configure(
            connection=connection,
            version_table_schema=schema,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()


def ensure_role_sql(role: str) -> str:
    # Roles are cluster-wide; several databases (dev, test, bench) share them.
    return (
        "DO $$ BEGIN "
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
        f'CREATE ROLE "{role}" LOGIN; END IF; END $$'
    )


def messaging_tables_sql(schema: str) -> list[str]:
    """Inbox (event ids consumed) and outbox (events to publish) of one service."""
    return [
        f"""CREATE TABLE {schema}.inbox (
            event_id uuid PRIMARY KEY,
            event_type text NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        )""",
        f"""CREATE TABLE {schema}.outbox (
            id bigserial PRIMARY KEY,
            event_id uuid NOT NULL UNIQUE,
            event_type text NOT NULL,
            correlation_id uuid NOT NULL,
            body text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )""",
    ]


def case_holds_tables_sql(schema: str) -> list[str]:
    """One service's holds behind dead-lettered events (shared.case_holds): one row per
    dead-lettered event of a case, in dead-letter order (position); while a case has rows,
    only its first may be applied, every other event of the case is dead-lettered behind
    it (CaseHeld) and appended."""
    return [
        f"""CREATE TABLE {schema}.case_holds (
            case_id uuid NOT NULL,
            event_id uuid NOT NULL,
            position bigint GENERATED ALWAYS AS IDENTITY,
            event_type text NOT NULL,
            error_type text NOT NULL,
            reason text NOT NULL,
            held_at timestamptz NOT NULL DEFAULT now(),
            failed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (case_id, event_id)
        )""",
        f"CREATE INDEX {schema}_case_holds_order_idx ON {schema}.case_holds (case_id, position)",
    ]


def grant_service_sql(schema: str) -> list[str]:
    """The service's role may read and write its own schema, nothing else."""
    role = db_role(schema)
    return [
        f'GRANT USAGE ON SCHEMA {schema} TO "{role}"',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO "{role}"',
        f'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO "{role}"',
        f'REVOKE ALL ON {schema}.alembic_version FROM "{role}"',
    ]
