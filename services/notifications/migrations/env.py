"""Alembic environment for the notifications schema (see shared.migrations)."""

from shared.migrations import run_env

run_env(schema="notifications")
