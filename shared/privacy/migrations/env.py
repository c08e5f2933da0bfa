"""Alembic environment for the key store's schema (see shared.migrations)."""

from shared.migrations import run_env
from shared.settings import db_role

run_env(schema="privacy_keys", role=db_role("keys"))
