"""The key store: one AES-256 data key per (data subject, scope), destroyed to erase.

Keys live in the `privacy_keys` schema, reached only by the `hrcase_keys` database role
(`KEYS_DATABASE_URL`, else the admin URL with that role: shared.settings), never in the
audit log or on the bus. Every service that seals or opens personal data
(shared.privacy.sealing) opens a `KeyStore` of its own with its service name; each
`key_for` is recorded in `privacy_keys.key_access` (who, which key, why, what came of it),
so key access is itself audited.

Invariants (enforced by the schema, migrations in shared/privacy/migrations/):
- a key is 32 random bytes (AESGCM.generate_key), created at most once per
  (subject_id, scope);
- destroying sets `key` to NULL and keeps the row with `destroyed_at` and
  `destroyed_reason`; a destroyed key never comes back (`key_for` answers None, also with
  `create=True`), so everything sealed under it stays unreadable;
- rows are never deleted and the access log only grows (no DELETE grant; a trigger lets
  an UPDATE only destroy).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from uuid import UUID

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.db import create_pool
from shared.settings import Settings, get_settings

NO_SCOPE = "-"  # the scope of data outside any case


def key_store_url(settings: Settings | None = None) -> str:
    """The key store's DSN: `KEYS_DATABASE_URL`, else DATABASE_URL with the `hrcase_keys`
    role (and `KEYS_DATABASE_PASSWORD`)."""
    return (settings or get_settings()).service_database_url("keys")


def subject_for(*, employee_id: str | None, email: str | None, case_id: UUID | None) -> str:
    """The data subject id of a person: `employee:<id>` when they have an employee id,
    else `email:<sha256 hex of the lower-cased, trimmed address>`, else (an anonymous
    reporter) `anonymous:<case_id>`.

    An employee id of the form `email:<address>` (intake's identity of an email sender
    without a directory entry) is that address. Raises ValueError when none of the three
    is given.
    """
    if employee_id and employee_id.startswith("email:") and "@" in employee_id:
        email = employee_id.removeprefix("email:")
        employee_id = None
    if employee_id and employee_id.strip():
        return f"employee:{employee_id.strip()}"
    if email and email.strip():
        digest = hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()
        return f"email:{digest}"
    if case_id is not None:
        return f"anonymous:{case_id}"
    raise ValueError("a data subject needs an employee id, an email address or a case id")


def subject_parts(subject_id: str) -> tuple[str | None, str | None]:
    """(employee id, sha256 hex of the address) a subject id stands for: one of the two is
    set for `employee:` and `email:` subjects, neither for an `anonymous:` one. A service
    matches its rows by employee id, or by the digest of their lower-cased, trimmed address
    (Postgres: `encode(sha256(convert_to(lower(trim(email)), 'UTF8')), 'hex')`)."""
    kind, _, value = subject_id.partition(":")
    if kind == "employee" and value:
        return value, None
    if kind == "email" and value:
        return None, value
    return None, None


def scope_for(case_id: UUID | None) -> str:
    """The key scope of data about `case_id` (its str), `"-"` outside any case."""
    return str(case_id) if case_id is not None else NO_SCOPE


# One statement, one round trip: create when asked (and absent), read, and log the access
# with its outcome. $1 subject, $2 scope, $3 new key bytes, $4 service, $5 create, $6 purpose.
_KEY_FOR = """
WITH created AS (
    INSERT INTO privacy_keys.data_keys (subject_id, scope, key, created_by)
    SELECT $1, $2, $3::bytea, $4 WHERE $5::boolean
    ON CONFLICT (subject_id, scope) DO NOTHING
    RETURNING key
), stored AS (
    SELECT key FROM privacy_keys.data_keys WHERE subject_id = $1 AND scope = $2
), result AS (
    SELECT CASE
               WHEN EXISTS (SELECT 1 FROM created) THEN 'created'
               WHEN NOT EXISTS (SELECT 1 FROM stored) THEN 'absent'
               WHEN (SELECT key FROM stored) IS NULL THEN 'erased'
               ELSE 'read'
           END AS outcome,
           coalesce((SELECT key FROM created), (SELECT key FROM stored)) AS key
), logged AS (
    INSERT INTO privacy_keys.key_access (service, subject_id, scope, purpose, outcome)
    SELECT $4, $1, $2, $6, outcome FROM result
)
SELECT outcome, key FROM result
"""


class KeyStore:
    """The data keys, over an asyncpg pool of its own (role `hrcase_keys`).

    `service` names the caller in every key_access row. Methods raise asyncpg errors
    when the database is unreachable (callers retry like any other database fault).
    """

    def __init__(self, pool: asyncpg.Pool, *, service: str) -> None:
        self.pool = pool
        self.service = service

    @classmethod
    async def open(cls, database_url: str, *, service: str, size: int = 2) -> KeyStore:
        """Connect to the key store at `database_url` (the `hrcase_keys` role's DSN)."""
        pool = await create_pool(database_url, size=size, json_codecs=False)
        return cls(pool, service=service)

    async def close(self) -> None:
        await self.pool.close()

    async def key_for(
        self,
        subject_id: str,
        scope: str,
        *,
        create: bool,
        purpose: str,
        role: str | None = None,
    ) -> bytes | None:
        """The 32-byte key of (`subject_id`, `scope`), created first when absent and
        `create`; None when it was destroyed, or is absent and `create` is False.

        `purpose` (e.g. "seal case.submitted", "open for display") is logged with the
        access. `role` (e.g. "reporter") records, on creation, what the subject is to the
        scope's case (see `subject_with_role`); the first role recorded stays.
        """
        found = await self.keys_for([(subject_id, scope, role)], create=create, purpose=purpose)
        key = found[subject_id, scope]
        return bytes(key) if key is not None else None

    async def keys_for(
        self,
        wanted: Sequence[tuple[str, str, str | None]],
        *,
        create: bool,
        purpose: str,
    ) -> dict[tuple[str, str], bytes | None]:
        """`key_for` of each (subject_id, scope, role) in one transaction (one commit for
        an event's several subjects), by (subject_id, scope)."""
        found: dict[tuple[str, str], bytes | None] = {}
        async with self.pool.acquire() as conn, conn.transaction():
            for subject_id, scope, role in wanted:
                if (subject_id, scope) in found:
                    continue
                found[subject_id, scope] = await self._key_for(
                    conn, subject_id, scope, create=create, purpose=purpose, role=role
                )
        return found

    async def _key_for(
        self,
        conn: asyncpg.Connection,
        subject_id: str,
        scope: str,
        *,
        create: bool,
        purpose: str,
        role: str | None,
    ) -> bytes | None:
        fresh = AESGCM.generate_key(bit_length=256) if create else None
        row = await conn.fetchrow(
            _KEY_FOR, subject_id, scope, fresh, self.service, create, purpose[:500]
        )
        assert row is not None
        if row["outcome"] == "absent" and create:
            # A concurrent first use won the insert after this statement's snapshot: the
            # key exists now (one more statement, which sees it).
            row = await conn.fetchrow(
                _KEY_FOR, subject_id, scope, None, self.service, False, purpose[:500]
            )
            assert row is not None
        key: bytes | None = row["key"]
        if role is not None and key is not None:
            await conn.execute(
                "INSERT INTO privacy_keys.scope_roles (scope, role, subject_id)"
                " VALUES ($1, $2, $3) ON CONFLICT (scope, role) DO NOTHING",
                scope,
                role,
                subject_id,
            )
        return bytes(key) if key is not None else None

    async def subject_with_role(self, scope: str, role: str) -> str | None:
        """The subject first recorded with `role` in `scope` (e.g. the case's reporter),
        or None."""
        async with self.pool.acquire() as conn:
            subject: str | None = await conn.fetchval(
                "SELECT subject_id FROM privacy_keys.scope_roles WHERE scope = $1 AND role = $2",
                scope,
                role,
            )
        return subject

    async def destroy_subject(
        self, subject_id: str, *, reason: str, except_scopes: Collection[str] = ()
    ) -> int:
        """Destroy every live key of `subject_id` (all scopes but `except_scopes`: cases
        whose data is kept for legal claims, for instance); return how many."""
        async with self.pool.acquire() as conn, conn.transaction():
            scopes = await conn.fetch(
                "UPDATE privacy_keys.data_keys SET key = NULL, destroyed_at = clock_timestamp(),"
                " destroyed_reason = $2 WHERE subject_id = $1 AND key IS NOT NULL"
                " AND NOT (scope = ANY($3::text[])) RETURNING scope",
                subject_id,
                reason,
                list(except_scopes),
            )
            for row in scopes:
                await self._log(conn, subject_id, row["scope"], reason, "destroyed")
        return len(scopes)

    async def destroy_scope(self, scope: str, *, reason: str) -> list[str]:
        """Destroy every live key of `scope` (every subject of a case); return the
        subject ids whose key was destroyed now, sorted."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "UPDATE privacy_keys.data_keys SET key = NULL, destroyed_at = clock_timestamp(),"
                " destroyed_reason = $2 WHERE scope = $1 AND key IS NOT NULL"
                " RETURNING subject_id",
                scope,
                reason,
            )
            subjects = sorted(row["subject_id"] for row in rows)
            for subject_id in subjects:
                await self._log(conn, subject_id, scope, reason, "destroyed")
        return subjects

    async def subjects_of_scope(self, scope: str) -> list[str]:
        """Every subject with a key (live or destroyed) in `scope`, sorted."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT subject_id FROM privacy_keys.data_keys WHERE scope = $1"
                " ORDER BY subject_id",
                scope,
            )
        return [row["subject_id"] for row in rows]

    async def _log(
        self, conn: asyncpg.Connection, subject_id: str, scope: str, purpose: str, outcome: str
    ) -> None:
        await conn.execute(
            "INSERT INTO privacy_keys.key_access (service, subject_id, scope, purpose, outcome)"
            " VALUES ($1, $2, $3, $4, $5)",
            self.service,
            subject_id,
            scope,
            purpose[:500],
            outcome,
        )
