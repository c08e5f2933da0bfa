"""Hostile values (issue 8, item 11): what audit could not verify later it refuses, and
what is stored already never crashes verify, replay, timeline or export.

The field case: one event with occurred_at 9999-12-31T23:59:59.999999Z made `verify`
exit 2 forever, stopped the signed checkpoints and made every export a 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection
from click.testing import CliRunner, Result
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from services.audit.adapters.checkpoints import CheckpointWriter
from services.audit.adapters.sql import append_batch, case_entries, head
from services.audit.app import SPEC
from services.audit.application.export import render_html
from services.audit.domain.chain import pending_from_envelope
from services.audit.domain.export import build_case_file
from services.audit.domain.replay import replay
from services.audit.domain.timeline import timeline
from services.audit.entrypoints.cli import audit_cli, verify_connection
from services.audit.entrypoints.http import router
from services.audit.tests.conftest import _drop_database
from services.audit.tests.support import case_story, make_envelope, note_payload, wait_until
from shared.envelope import utcnow
from shared.migrations import alembic_config, ensure_database
from shared.service import Runtime, start_runtime, stop_runtime
from shared.settings import Settings
from tests.support.auth import auth_headers
from tests.support.bus import declare_topology, find_dead_letter, publish_envelope, publish_raw

AUDIT_DLQ = "audit.events.dlq"
AUDITOR = auth_headers("auditor-1", "auditor")


def _cli(*args: str) -> Result:
    return CliRunner().invoke(audit_cli, list(args))


@pytest.fixture(scope="module")
async def runtime(
    database_url: str, rabbitmq_url: str, amqp: AbstractRobustConnection
) -> AsyncIterator[Runtime]:
    await declare_topology(amqp)
    rt = await start_runtime(SPEC, Settings(database_url=database_url, rabbitmq_url=rabbitmq_url))
    yield rt
    await stop_runtime(rt)


@pytest.fixture(scope="module")
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(router)
    app.state.runtime = runtime
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://audit"
    ) as c:
        yield c


def _body(**changes: Any) -> bytes:
    """A valid case.note_added envelope as JSON with some members replaced."""
    envelope = make_envelope(case_id=uuid4())
    data = json.loads(envelope.to_json_bytes())
    data.update(changes)
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


async def _refusal(pool: asyncpg.Pool, body: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(body).hexdigest()

    async def recorded() -> asyncpg.Record | None:
        return await pool.fetchrow(
            "SELECT event_type, producer, case_id, payload::text AS payload FROM audit.log"
            " WHERE event_type = 'audit.event_refused' AND payload->>'body_sha256' = $1",
            digest,
        )

    row = await wait_until(recorded, what="audit.event_refused recorded")
    assert row["producer"] == "audit" and row["case_id"] is None
    payload: dict[str, Any] = json.loads(row["payload"])
    assert payload["body_bytes"] == len(body)
    return payload


async def test_field_case_year_9999_is_refused_recorded_and_everything_keeps_working(
    runtime: Runtime,
    client: httpx.AsyncClient,
    admin_pool: asyncpg.Pool,
    amqp: AbstractRobustConnection,
    database_url: str,
) -> None:
    """The recipe: publish the 9999 event on the bus into a running audit."""
    case_id = uuid4()
    story = case_story(case_id, utcnow() - timedelta(hours=1))
    async with admin_pool.acquire() as conn:
        await append_batch(conn, story, utcnow())
    body = _body(occurred_at="9999-12-31T23:59:59.999999Z", case_id=str(case_id))
    hostile = json.loads(body)
    event_id = hostile["event_id"]
    await publish_raw(amqp, body, routing_key="case.note_added", message_id=event_id)

    # Dead-lettered with the reason in its headers...
    dead = await find_dead_letter(amqp, AUDIT_DLQ, event_id)
    assert dead is not None, "the 9999 event was not dead-lettered"
    headers = dead.headers or {}
    assert str(headers["x-error"]).startswith("invalid envelope: occurred_at:"), headers
    assert "9999-12-31" in str(headers["x-error"]) and headers["x-failed-service"] == "audit"
    assert dead.body == body
    # ...the refusal is in the chain (ids and reason, never the body)...
    refusal = await _refusal(admin_pool, body)
    assert refusal["refused_event_id"] == event_id
    assert refusal["refused_case_id"] == str(case_id)
    assert refusal["refused_event_type"] == "case.note_added"
    assert refusal["reason"] == headers["x-error"]
    assert hostile["payload"]["body"] not in json.dumps(refusal, ensure_ascii=False)
    # ...and nothing of it reached the log itself.
    stored = await admin_pool.fetchval(
        "SELECT count(*) FROM audit.log WHERE event_id = $1", UUID(event_id)
    )
    assert stored == 0

    # verify exits 0 (chain and signed checkpoints)...
    writer: CheckpointWriter = runtime.state["checkpoint_writer"]
    checkpoint = await writer.checkpoint()
    assert writer.broken is None
    assert checkpoint is not None, "checkpoints stopped"
    verified = await asyncio.to_thread(_cli, "verify", "--database-url", database_url)
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.startswith("OK: ") and "signed checkpoint(s) hold" in verified.stdout
    # ...checkpoints continue after later events...
    later = make_envelope(case_id=case_id)
    async with admin_pool.acquire() as conn:
        await append_batch(conn, [later], utcnow())
    again = await writer.checkpoint()
    assert again is not None and again.seq > checkpoint.seq
    # ...and the case exports, verified.
    exported = await client.post(f"/api/v1/audit/cases/{case_id}/export", headers=AUDITOR)
    assert exported.status_code == 200, exported.text
    document = exported.json()["document"]
    assert document["verification"]["ok"] is True
    assert document["reference"] == "HR-2026-000042"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_body(occurred_at="0001-01-01T00:00:00Z"), "invalid envelope: occurred_at:"),
        (_body(occurred_at="1999-12-31T23:59:59Z"), "invalid envelope: occurred_at:"),
        (
            _body(occurred_at=(utcnow() + timedelta(days=1)).isoformat()),
            "invalid envelope: occurred_at:",
        ),
        # Valid ISO, but beyond what UTC can hold: a validation error, not an OverflowError.
        (_body(occurred_at="9999-12-31T23:59:59-05:00"), "invalid envelope: occurred_at:"),
        (
            _body(
                event_type="case.sla_breached",
                payload={
                    "reference": "HR-2026-000001",
                    "clock": "resolution",
                    "due_at": "9999-12-31T23:59:59.999999Z",
                    "owner_id": None,
                },
            ),
            "case.sla_breached payload off its schema: due_at:",
        ),
        (_body(event_type="audittest.made_up"), "not recordable: unknown event type"),
        (
            _body(event_type="audit.export_created"),
            "audit.export_created is written by the audit service only",
        ),
        (_body(payload=note_payload("x" * 1_100_000)), "envelope of "),
        (_body(payload={"reference": "R", "note_id": "nope", "body": "b"}), "case.note_added"),
        (b"\xff\xfe not even text", "invalid envelope: "),
    ],
    ids=[
        "year-0001",
        "before-2000",
        "a-day-ahead",
        "beyond-utc",
        "payload-due-9999",
        "unknown-type",
        "forged-audit-record",
        "oversize",
        "payload-off-schema",
        "not-json",
    ],
)
async def test_audit_refuses_what_it_could_not_verify_later(
    runtime: Runtime,
    admin_pool: asyncpg.Pool,
    amqp: AbstractRobustConnection,
    body: bytes,
    reason: str,
) -> None:
    message_id = str(uuid4())
    await publish_raw(amqp, body, routing_key="case.note_added", message_id=message_id)
    dead = await find_dead_letter(amqp, AUDIT_DLQ, message_id)
    assert dead is not None
    headers = dead.headers or {}
    assert str(headers["x-error"]).startswith(reason), headers["x-error"]
    refusal = await _refusal(admin_pool, body)
    assert refusal["reason"] == headers["x-error"]
    assert refusal["routing_key"] == "case.note_added"
    # A later good event still flows.
    after = make_envelope()
    await publish_envelope(amqp, after)

    async def landed() -> bool:
        n = await admin_pool.fetchval(
            "SELECT count(*) FROM audit.log WHERE event_id = $1", after.event_id
        )
        return bool(n)

    await wait_until(landed, what="the next event recorded")


async def test_a_redelivered_refusal_is_recorded_once(
    runtime: Runtime, admin_pool: asyncpg.Pool, amqp: AbstractRobustConnection
) -> None:
    body = _body(occurred_at="9999-12-31T23:59:59.999999Z")
    for _ in range(2):
        message_id = str(uuid4())
        await publish_raw(amqp, body, routing_key="case.note_added", message_id=message_id)
        assert await find_dead_letter(amqp, AUDIT_DLQ, message_id) is not None
    await _refusal(admin_pool, body)
    digest = hashlib.sha256(body).hexdigest()
    count = await admin_pool.fetchval(
        "SELECT count(*) FROM audit.log WHERE payload->>'body_sha256' = $1", digest
    )
    assert count == 1


# --- values already stored: inserted by a superuser, out of band --------------------------


@pytest.fixture(scope="module")
def hostile_url(database_url: str) -> Iterator[str]:
    """A database of its own: these rows stay (the shared chain must stay intact)."""
    url = (
        make_url(database_url)
        .set(database=f"{make_url(database_url).database}_hostile")
        .render_as_string(hide_password=False)
    )
    _drop_database(url)
    ensure_database(url)
    from alembic import command

    command.upgrade(alembic_config("audit", url), "head")
    yield url
    _drop_database(url)


# (column, SQL value, event type of the row, whether replay/timeline must name a problem:
# +-infinity read back as the first/last instant, so only the hash shows the change)
HOSTILE = [
    ("occurred_at", "'infinity'", "case.routed", False),
    ("occurred_at", "'-infinity'", "case.routed", False),
    ("occurred_at", "'12000-01-01 00:00:00+00'", "case.routed", True),
    ("occurred_at", "'0044-03-15 00:00:00+00 BC'", "case.routed", True),
    ("recorded_at", "'294276-12-31 23:59:59+00'", "case.routed", True),
    ("actor", "'[1, 2]'", "case.note_added", True),
    ("actor", """'{"type": 7}'""", "case.note_added", False),
    ("payload", "'\"a string\"'", "case.routed", True),
    ("payload", """'{"reference": "\\ud800 lone surrogate"}'""", "case.routed", True),
    ("payload", """'{"due_at": 1e400}'""", "case.sla_breached", True),
    ("payload", "'" + "[" * 5000 + "]" * 5000 + "'", "case.routed", True),
    ("payload", """'{"reference": "HR-1", "reporter": "x"}'""", "case.submitted", True),
    ("payload", """'{"first_response_due": "9999-12-31T23:59:59-05:00"}'""", "case.routed", True),
    ("payload", """'{"level": "three", "escalated_to": 5}'""", "case.escalated", True),
    (
        "payload",
        """'{"attachments": [{"sha256": "x", "size": "big"}]}'""",
        "case.message_received",
        True,
    ),
]


@pytest.mark.parametrize(
    ("column", "value", "kind", "reported"),
    HOSTILE,
    ids=[f"{c}-{k}-{v[:24]}" for c, v, k, _ in HOSTILE],
)
async def test_stored_hostile_values_are_reported_not_crashed_on(
    hostile_url: str, column: str, value: str, kind: str, reported: bool
) -> None:
    conn = await asyncpg.connect(hostile_url)
    try:
        case_id = uuid4()
        story = case_story(case_id, utcnow() - timedelta(hours=2))
        await append_batch(conn, story, utcnow())
        last = await head(conn)
        assert last is not None
        # A copy of the newest entry with one hostile value, hashes left as they were.
        await conn.execute(
            """INSERT INTO audit.log (seq, event_id, event_type, schema_version, occurred_at,
                   recorded_at, producer, correlation_id, causation_id, case_id, actor,
                   payload, prev_hash, entry_hash)
                SELECT seq + 1, $2, $3, schema_version, occurred_at, recorded_at, producer,
                   correlation_id, causation_id, case_id, actor, payload, entry_hash,
                   entry_hash
                FROM audit.log WHERE seq = $1""",
            last.seq,
            uuid4(),
            kind,
        )
        # The superuser's way around the append-only trigger.
        await conn.execute("ALTER TABLE audit.log DISABLE TRIGGER USER")
        await conn.execute(f"UPDATE audit.log SET {column} = {value} WHERE seq = $1", last.seq + 1)
        await conn.execute("ALTER TABLE audit.log ENABLE TRIGGER USER")
        bad_seq = last.seq + 1

        result = await verify_connection(conn)
        assert not result.ok and result.bad_seq == bad_seq, result
        cli = await asyncio.to_thread(
            _cli, "verify", "--database-url", hostile_url, "--no-checkpoints"
        )
        assert cli.exit_code == 1, cli.output
        assert cli.stdout.startswith(f"TAMPERED at seq {bad_seq}: "), cli.output

        entries = await case_entries(conn, case_id)
        state = replay(case_id, entries)
        items = timeline(case_id, entries)
        assert state.reference == "HR-2026-000042" and len(items) == len(entries)
        named = [*state.anomalies, *items[-1]["problems"]]
        assert bool(named) == reported, (named, items[-1])
        assert all(f"seq {bad_seq}" in a for a in state.anomalies)
        document = build_case_file(
            case_id,
            entries,
            verification={"ok": False, "chain": {}},
            generated_at=utcnow(),
            generated_by="test",
        )
        # The file is JSON and hashable as the export needs it, and renders.
        json.dumps(document, ensure_ascii=False, allow_nan=False).encode("utf-8")
        assert "HR-2026-000042" in render_html_safe(document)
    finally:
        await conn.execute("ALTER TABLE audit.log DISABLE TRIGGER USER")
        await conn.execute("DELETE FROM audit.log")
        await conn.execute("ALTER TABLE audit.log ENABLE TRIGGER USER")
        await conn.close()


def render_html_safe(document: dict[str, Any]) -> str:
    """render_html needs the verification block of a real export."""
    document = {
        **document,
        "verification": {
            "ok": False,
            "chain": {
                "ok": False, "bad_seq": 1, "reason": "r", "from_seq": 1, "to_seq": 0,
                "entries_verified": 0, "head_hash": "0" * 64,
            },
            "checkpoint": None,
            "checkpoint_problems": [],
        },
    }  # fmt: skip
    return render_html(document)


async def test_a_log_that_already_holds_the_field_case_verifies_and_exports(
    hostile_url: str,
) -> None:
    """A log written before the bounds: the 9999 event was stored (as Postgres infinity,
    asyncpg's image of that instant) with a correct hash. verify says OK, notes the odd
    entry, and replay, timeline and the export work."""
    conn = await asyncpg.connect(hostile_url)
    try:
        case_id = uuid4()
        story = case_story(case_id, utcnow() - timedelta(hours=2))
        await append_batch(conn, story, utcnow())
        legacy = replace(
            pending_from_envelope(make_envelope(case_id=case_id)),
            occurred_at=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        )
        result = await append_batch(conn, [legacy], utcnow())
        seq = result.appended[0].seq
        assert await conn.fetchval(
            "SELECT occurred_at::text FROM audit.log WHERE seq = $1", seq
        ) == ("infinity")
        cli = await asyncio.to_thread(
            _cli, "verify", "--database-url", hostile_url, "--no-checkpoints"
        )
        assert cli.exit_code == 0, cli.output
        assert cli.stdout.startswith("OK: ")
        assert "NOTE: 1 intact entries have an occurred_at outside" in cli.stderr
        assert f"seq {seq} occurred_at 9999-12-31T23:59:59.999999Z" in cli.stderr
        entries = await case_entries(conn, case_id)
        items = timeline(case_id, entries)
        assert items[-1]["occurred_at"] == "9999-12-31T23:59:59.999999Z"
        # At "now" the 9999 note has not happened yet; in full it has.
        assert len(replay(case_id, entries).notes) == 2
        assert len(replay(case_id, entries, at=utcnow()).notes) == 1
        document = build_case_file(
            case_id, entries, verification={}, generated_at=utcnow(), generated_by="test"
        )
        assert "HR-2026-000042" in render_html_safe(document)
    finally:
        await conn.execute("ALTER TABLE audit.log DISABLE TRIGGER USER")
        await conn.execute("DELETE FROM audit.log")
        await conn.execute("ALTER TABLE audit.log ENABLE TRIGGER USER")
        await conn.close()
