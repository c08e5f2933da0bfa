"""Upgrading a log written before personal fields were sealed (issue 14): its entries keep
their clear text and keep verifying; entries after the upgrade hold sealed values and keep
verifying when the data subject's key is destroyed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from uuid import uuid4

import asyncpg
import psycopg
import pytest
from alembic import command
from sqlalchemy.engine import make_url

from services.audit.adapters.sql import append_batch, case_entries
from services.audit.application.personal import opened_entries
from services.audit.domain.chain import stored_object
from services.audit.entrypoints.cli import verify_log
from services.audit.tests.support import make_envelope
from shared.envelope import utcnow
from shared.migrations import KEY_STORE, alembic_config, ensure_database
from shared.privacy.fields import ERASED, is_sealed
from shared.privacy.keys import KeyStore, key_store_url
from shared.privacy.sealing import seal_envelope
from shared.settings import Settings

OLD_NOTE = "Spoke to Dana Whitfield about her sick leave (before the upgrade)"
NEW_NOTE = "Spoke to Dana Whitfield again (after the upgrade)"


def _drop(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(database="postgres", drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


@pytest.fixture
def old_log_url(database_url: str) -> Iterator[str]:
    """A database whose audit schema stops at 0004 (the log as it was before issue 14)."""
    test_db = make_url(database_url)
    url = test_db.set(database=f"{test_db.database}_oldlog_{os.getpid()}").render_as_string(
        hide_password=False
    )
    _drop(url)
    ensure_database(url)
    command.upgrade(alembic_config("audit", url), "0004")
    yield url
    _drop(url)


def _submitted_payload(employee_id: str) -> dict[str, object]:
    return {
        "reference": "HR-2025-000042",
        "channel": "api",
        "subject": "Sick leave not recorded",
        "description": "My sick leave in March was recorded as unpaid leave.",
        "reporter": {
            "employee_id": employee_id,
            "name": "Dana Whitfield",
            "email": "dana.whitfield@example.com",
        },
        "submitted_at": utcnow().isoformat(),
    }


async def test_an_old_clear_text_log_verifies_after_the_upgrade_and_after_erasure(
    old_log_url: str,
) -> None:
    case_id, employee_id = uuid4(), f"E-{uuid4().hex[:8]}"
    conn = await asyncpg.connect(old_log_url)
    try:
        submitted = make_envelope(
            case_id=case_id, event_type="case.submitted", payload=_submitted_payload(employee_id)
        )
        old = [submitted, make_envelope(case_id=case_id, caused_by=submitted)]
        old[1] = old[1].model_copy(update={"payload": {**old[1].payload, "body": OLD_NOTE}})
        await append_batch(conn, old, utcnow())
        assert (await verify_log(old_log_url)).ok

        # The upgrade: audit 0005 and the key store's migrations (`hrcase migrate`).
        command.upgrade(alembic_config("audit", old_log_url), "head")
        command.upgrade(alembic_config(KEY_STORE, old_log_url), "head")
        boundary = await conn.fetchrow("SELECT * FROM audit.privacy_boundary")
        assert boundary["sealed_from_seq"] == 3 and boundary["clear_entries"] == 2
        assert (await verify_log(old_log_url)).ok

        # After it, events arrive sealed (the outbox of the publishing service).
        keys = await KeyStore.open(
            key_store_url(Settings(database_url=old_log_url)), service="intake"
        )
        try:
            note = make_envelope(case_id=case_id, caused_by=submitted)
            note = note.model_copy(update={"payload": {**note.payload, "body": NEW_NOTE}})
            # The reporter of a case submitted before the upgrade is not known to the key
            # store: the note is sealed under the case's anonymous subject (README).
            sealed = await seal_envelope(keys, note)
            assert is_sealed(sealed.payload["body"])
            await append_batch(conn, [sealed], utcnow())

            entries = await case_entries(conn, case_id)
            shown = await opened_entries(keys, entries, purpose="test display")
            bodies = [stored_object(e.payload)[0] or {} for e in shown]
            assert bodies[0]["reporter"]["name"] == "Dana Whitfield"  # old: clear, as stored
            assert bodies[1]["body"] == OLD_NOTE and bodies[2]["body"] == NEW_NOTE

            assert await keys.destroy_scope(str(case_id), reason="retention test") == [
                f"anonymous:{case_id}"
            ]
            shown = await opened_entries(keys, entries, purpose="test display")
            bodies = [stored_object(e.payload)[0] or {} for e in shown]
            assert bodies[2]["body"] == ERASED
            # What the migration does not do: the old entries keep their clear text.
            assert bodies[1]["body"] == OLD_NOTE
            stored = json.loads(entries[2].payload)
            assert NEW_NOTE not in json.dumps(stored)
        finally:
            await keys.close()
        result = await verify_log(old_log_url)
        assert result.ok, result
    finally:
        await conn.close()
