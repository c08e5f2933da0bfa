"""The key store on the real database, through its own role (hrcase_keys)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest

from shared.privacy.keys import KeyStore, key_store_url, subject_for
from shared.settings import Settings


@pytest.fixture
async def keys(database_url: str) -> AsyncIterator[KeyStore]:
    store = await KeyStore.open(
        key_store_url(Settings(database_url=database_url)), service="intake"
    )
    yield store
    await store.close()


def test_subject_ids_follow_the_contract() -> None:
    case_id = uuid4()
    assert subject_for(employee_id="E-1", email="a@b.c", case_id=case_id) == "employee:E-1"
    by_mail = subject_for(employee_id=None, email=" Maria.Lopez@Example.COM ", case_id=case_id)
    assert by_mail == subject_for(employee_id="", email="maria.lopez@example.com", case_id=None)
    assert by_mail.startswith("email:") and len(by_mail) == len("email:") + 64
    assert subject_for(employee_id=None, email=None, case_id=case_id) == f"anonymous:{case_id}"
    with pytest.raises(ValueError):
        subject_for(employee_id=None, email=None, case_id=None)


async def test_a_key_is_created_once_read_back_and_every_access_is_logged(
    keys: KeyStore, admin_pool: asyncpg.Pool
) -> None:
    subject, scope = f"employee:K-{uuid4().hex[:8]}", str(uuid4())
    assert await keys.key_for(subject, scope, create=False, purpose="peek") is None
    first = await keys.key_for(subject, scope, create=True, purpose="seal case.submitted")
    again = await keys.key_for(subject, scope, create=True, purpose="seal case.note_added")
    read = await keys.key_for(subject, scope, create=False, purpose="open for display")
    assert first is not None and len(first) == 32 and first == again == read
    other = await keys.key_for(subject, str(uuid4()), create=True, purpose="seal")
    assert other is not None and other != first  # random per (subject, scope)
    log = await admin_pool.fetch(
        "SELECT service, purpose, outcome FROM privacy_keys.key_access"
        " WHERE subject_id = $1 AND scope = $2 ORDER BY id",
        subject,
        scope,
    )
    assert [(r["service"], r["purpose"], r["outcome"]) for r in log] == [
        ("intake", "peek", "absent"),
        ("intake", "seal case.submitted", "created"),
        ("intake", "seal case.note_added", "read"),
        ("intake", "open for display", "read"),
    ]


async def test_destroying_a_subject_nulls_every_scope_and_keeps_the_rows(
    keys: KeyStore, admin_pool: asyncpg.Pool
) -> None:
    subject, bystander = f"employee:D-{uuid4().hex[:8]}", f"employee:B-{uuid4().hex[:8]}"
    scopes = [str(uuid4()), str(uuid4())]
    for scope in scopes:
        await keys.key_for(subject, scope, create=True, purpose="seal")
        await keys.key_for(bystander, scope, create=True, purpose="seal")
    assert await keys.destroy_subject(subject, reason="erasure request ER-1") == 2
    assert await keys.destroy_subject(subject, reason="again") == 0
    for scope in scopes:
        # Gone for good: not readable, and not re-created either.
        assert await keys.key_for(subject, scope, create=False, purpose="open") is None
        assert await keys.key_for(subject, scope, create=True, purpose="seal") is None
        assert await keys.key_for(bystander, scope, create=False, purpose="open") is not None
    rows = await admin_pool.fetch(
        "SELECT key, destroyed_at, destroyed_reason FROM privacy_keys.data_keys"
        " WHERE subject_id = $1",
        subject,
    )
    assert len(rows) == 2
    assert all(
        r["key"] is None and r["destroyed_at"] and r["destroyed_reason"] == "erasure request ER-1"
        for r in rows
    )
    outcomes = await admin_pool.fetch(
        "SELECT outcome, purpose FROM privacy_keys.key_access WHERE subject_id = $1"
        " AND outcome IN ('destroyed', 'erased') ORDER BY id",
        subject,
    )
    assert [r["outcome"] for r in outcomes].count("destroyed") == 2
    assert [r["outcome"] for r in outcomes].count("erased") == 4


async def test_destroying_a_scope_takes_every_subject_of_that_case_only(keys: KeyStore) -> None:
    case, other_case = str(uuid4()), str(uuid4())
    reporter = f"employee:R-{uuid4().hex[:8]}"
    respondent = subject_for(employee_id=None, email=f"{uuid4().hex}@example.com", case_id=None)
    await keys.key_for(reporter, case, create=True, purpose="seal", role="reporter")
    await keys.key_for(respondent, case, create=True, purpose="seal")
    await keys.key_for(reporter, other_case, create=True, purpose="seal")
    assert await keys.subject_with_role(case, "reporter") == reporter
    assert await keys.subjects_of_scope(case) == sorted([reporter, respondent])
    destroyed = await keys.destroy_scope(case, reason="retention: payroll 2 years")
    assert destroyed == sorted([reporter, respondent])
    assert await keys.destroy_scope(case, reason="again") == []
    assert await keys.subjects_of_scope(case) == sorted([reporter, respondent])  # rows stay
    assert await keys.key_for(reporter, case, create=False, purpose="open") is None
    assert await keys.key_for(reporter, other_case, create=False, purpose="open") is not None


async def test_the_role_may_only_destroy_and_never_delete(keys: KeyStore) -> None:
    subject, scope = f"employee:T-{uuid4().hex[:8]}", str(uuid4())
    await keys.key_for(subject, scope, create=True, purpose="seal")
    async with keys.pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM privacy_keys.data_keys WHERE subject_id = $1", subject)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM privacy_keys.key_access")
        with pytest.raises(asyncpg.RestrictViolationError):  # new bytes for a live key
            await conn.execute(
                "UPDATE privacy_keys.data_keys SET key = $2 WHERE subject_id = $1",
                subject,
                b"\x00" * 32,
            )
    await keys.destroy_subject(subject, reason="test")
    async with keys.pool.acquire() as conn:
        with pytest.raises(asyncpg.RestrictViolationError):  # a destroyed key never comes back
            await conn.execute(
                "UPDATE privacy_keys.data_keys SET key = $2, destroyed_at = NULL,"
                " destroyed_reason = NULL WHERE subject_id = $1",
                subject,
                b"\x01" * 32,
            )


async def test_service_roles_cannot_read_the_keys(database_url: str) -> None:
    url = Settings(database_url=database_url).service_database_url("audit")
    conn = await asyncpg.connect(url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT key FROM privacy_keys.data_keys")
    finally:
        await conn.close()
