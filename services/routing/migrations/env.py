"""Alembic environment for the routing schema (see shared.migrations)."""

from shared.migrations import run_env

run_env(schema="routing")
