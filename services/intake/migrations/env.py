"""Alembic environment for the intake schema (see shared.migrations)."""

from shared.migrations import run_env

run_env(schema="intake")
