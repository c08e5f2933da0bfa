"""Alembic environment for the audit schema (see shared.migrations)."""

from shared.migrations import run_env

run_env(schema="audit")
