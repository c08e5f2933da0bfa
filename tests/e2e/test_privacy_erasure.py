"""Crypto-shredding through the whole system (issue 14, kernel): a case raised at intake's
API carries its reporter's name, email and description sealed on the bus, in the audit
log and in an outbox; a consumer and the auditor read them in clear while the key lives.
Once the reporter's keys are destroyed those values are unreadable everywhere they were
copied (the audit log's rows and its API, a dead-lettered copy on the bus, a row waiting
in an outbox), while `hrcase audit verify` still passes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from services.audit.entrypoints.cli import verify_log
from shared.envelope import Actor, Envelope
from shared.events import CaseNoteAdded, make_event
from shared.outbox import enqueue
from shared.privacy.fields import ERASED, is_sealed
from shared.privacy.keys import KeyStore, key_store_url
from shared.privacy.sealing import open_payload, register_key_store, unregister_key_store
from shared.settings import Settings
from tests.support.auth import auth_headers
from tests.support.bus import capture_events, find_dead_letter, publish_raw
from tests.support.infra import ROOT, own_database
from tests.support.system import running_system

TAG = uuid.uuid4().hex[:8]
EMPLOYEE = f"E-PR{TAG}"
NAME = f"Rosa Quintero-{TAG}"
EMAIL = f"rosa.{TAG}@example.com"
DESCRIPTION = f"My team lead {TAG} mocks my accent in every stand-up meeting."
AS_REPORTER = auth_headers(f"u-rosa-{TAG}", "employee", employee_id=EMPLOYEE)
AUDITOR = auth_headers("aud-privacy", "auditor")
CLEAR = (NAME, EMAIL, DESCRIPTION)  # the employee id (subject id) stays clear


@pytest.fixture(scope="module")
def audit_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("privacy-audit")
    return {
        "AUDIT_CHECKPOINT_DIR": str(base / "checkpoints"),
        "AUDIT_SIGNING_KEY_FILE": str(base / "keys" / "signing.key"),
        "AUDIT_CHECKPOINT_INTERVAL": "0.5",
    }


@pytest.fixture(scope="module")
def database_url(database_url: str) -> Any:
    """Its own database: `verify` walks this log only, and keys are destroyed in it."""
    with own_database("privacy") as url:
        yield url


@pytest.fixture(scope="module")
def system(database_url: str, rabbitmq_url: str, logs_dir: Any, audit_env: dict[str, str]) -> Any:
    with running_system(database_url, rabbitmq_url, logs_dir / "privacy", **audit_env) as running:
        yield running


@pytest.fixture
async def keys(database_url: str) -> AsyncIterator[KeyStore]:
    store = await KeyStore.open(
        key_store_url(Settings(database_url=database_url)), service="intake"
    )
    yield store
    await store.close()


def _no_clear_text(text: str) -> None:
    for value in CLEAR:
        assert value not in text, f"{value!r} readable in {text[:300]}"


async def _audit_rows(pool: asyncpg.Pool, case_id: str, at_least: int) -> list[asyncpg.Record]:
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        rows = await pool.fetch(
            "SELECT event_type, case_id, payload::text AS payload FROM audit.log"
            " WHERE case_id = $1 ORDER BY seq",
            uuid.UUID(case_id),
        )
        types = {r["event_type"] for r in rows}
        if len(rows) >= at_least and {"case.submitted", "case.assigned"} <= types:
            return list(rows)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the audit log never caught up: {sorted(types)}")
        await asyncio.sleep(0.2)


async def _entries(system: Any, case_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=system.url("audit"), headers=AUDITOR) as client:
        response = await client.get(f"/api/v1/audit/cases/{case_id}")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def _verify_cli(system: Any, audit_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hrcase.cli", "audit", "verify", "--database-url",
         system.database_url],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, **audit_env},
    )  # fmt: skip


async def test_destroying_the_reporters_keys_shreds_every_copy_and_verify_passes(
    system: Any, amqp: Any, keys: KeyStore, audit_env: dict[str, str]
) -> None:
    pool = await asyncpg.create_pool(system.database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        await _shred_and_check(system, amqp, keys, pool, audit_env)
    finally:
        await pool.close()


async def _shred_and_check(
    system: Any, amqp: Any, keys: KeyStore, pool: asyncpg.Pool, audit_env: dict[str, str]
) -> None:
    # 1. The reporter raises a case at intake's API, the whole system running.
    async with capture_events(amqp) as capture:
        async with httpx.AsyncClient(base_url=system.url("intake"), headers=AS_REPORTER) as c:
            response = await c.post(
                "/api/v1/cases",
                json={
                    "subject": "Mocked in stand-ups",
                    "description": DESCRIPTION,
                    "reporter": {"employee_id": EMPLOYEE, "name": NAME, "email": EMAIL},
                },
            )
        assert response.status_code == 202, response.text
        case_id = response.json()["case_id"]
        opened = await capture.wait(
            lambda e: e["event_type"] == "case.submitted" and e["case_id"] == case_id
        )
    [sealed] = [e for e in capture.sealed if e["event_id"] == opened["event_id"]]
    # On the bus: sealed under the reporter's key of this case; a consumer reads clear text.
    _no_clear_text(json.dumps(sealed))
    assert sealed["payload"]["reporter"]["name"].startswith(f"pd1:employee:{EMPLOYEE}:{case_id}:")
    assert opened["payload"]["reporter"] == {"employee_id": EMPLOYEE, "name": NAME, "email": EMAIL}
    assert opened["payload"]["description"] == DESCRIPTION

    # Routing (a consumer that opened it) assigned the case; notifications mailed the
    # reporter at the opened address.
    rows = await _audit_rows(pool, case_id, at_least=3)
    for row in rows:
        _no_clear_text(row["payload"])
    # The auditor reads it in clear while the key lives (the key access is logged).
    [submitted_entry] = [
        e for e in await _entries(system, case_id) if e["event_type"] == "case.submitted"
    ]
    assert submitted_entry["payload_opened"]["reporter"]["name"] == NAME
    assert submitted_entry["payload_opened"]["description"] == DESCRIPTION
    assert is_sealed(submitted_entry["payload"]["description"])
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM privacy_keys.key_access WHERE service = 'audit'"
            " AND subject_id = $1 AND purpose = 'audit entries read by aud-privacy'",
            f"employee:{EMPLOYEE}",
        )
        >= 1
    )

    # 2. A copy dead-lettered on the bus: the sealed event again, its producer forged, so
    #    every consumer refuses it into its DLQ (the body travels as it came).
    forged_id = str(uuid.uuid4())
    forged = {**sealed, "event_id": forged_id, "producer": "routing"}
    await publish_raw(
        amqp,
        json.dumps(forged).encode(),
        routing_key="case.submitted",
        message_id=forged_id,
        as_publisher="intake",
    )
    # 3. A row waiting in an outbox (intake's relay is stopped first so it stays there).
    system.services["intake"].stop()
    note = make_event(
        CaseNoteAdded(
            reference=sealed["payload"]["reference"],
            note_id=uuid.uuid4(),
            body=f"Rosa {TAG} called",
        ),
        producer="intake",
        actor=Actor(type="agent", id="agent-1"),
        case_id=uuid.UUID(case_id),
    )
    register_key_store("intake", keys)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, "intake", note)
    finally:
        unregister_key_store("intake", keys)
    outbox_body = await pool.fetchval(
        "SELECT body FROM intake.outbox WHERE event_id = $1", note.event_id
    )
    assert outbox_body is not None and f"Rosa {TAG} called" not in outbox_body
    noted = Envelope.from_json_bytes(outbox_body.encode())
    assert noted.payload["body"].startswith(f"pd1:employee:{EMPLOYEE}:{case_id}:")

    # 4. Erase: destroy every key of the reporter.
    assert await keys.destroy_subject(f"employee:{EMPLOYEE}", reason="erasure request test") >= 1

    # The audit log: the same rows, nothing readable, and opened they say [erased].
    rows = await _audit_rows(pool, case_id, at_least=3)
    [stored] = [json.loads(r["payload"]) for r in rows if r["event_type"] == "case.submitted"]
    _no_clear_text(json.dumps(stored))
    shredded = await open_payload(
        keys, "case.submitted", stored, uuid.UUID(case_id), purpose="test"
    )
    assert shredded["reporter"] == {"employee_id": EMPLOYEE, "name": ERASED, "email": ERASED}
    assert shredded["description"] == ERASED and shredded["subject"] == ERASED
    # ...and the auditor's API says so.
    [entry] = [e for e in await _entries(system, case_id) if e["event_type"] == "case.submitted"]
    assert entry["payload_opened"]["reporter"]["name"] == ERASED
    assert entry["payload_opened"]["description"] == ERASED
    _no_clear_text(json.dumps(entry))

    # The dead-lettered copy (notifications refused it): unreadable too.
    dead = await find_dead_letter(amqp, "notifications.events.dlq", forged_id, timeout=30)
    assert dead is not None
    _no_clear_text(dead.body.decode())
    body = json.loads(dead.body)
    dead_opened = await open_payload(
        keys, "case.submitted", body["payload"], uuid.UUID(case_id), purpose="test"
    )
    assert dead_opened["reporter"]["email"] == ERASED and dead_opened["description"] == ERASED

    # The outbox row: unreadable.
    note_opened = await open_payload(
        keys, "case.note_added", noted.payload, uuid.UUID(case_id), purpose="test"
    )
    assert note_opened["body"] == ERASED

    # 5. The chain still verifies: in process and with the command an operator runs.
    result = await verify_log(system.database_url)
    assert result.ok, result
    verify = await asyncio.to_thread(_verify_cli, system, audit_env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
