"""`audit.case_viewed`: one shape (CaseViewed, schema version 2) for every producer, and the
two version-1 shapes already in the chain read correctly by the timeline, the access log,
replay and the case-file export (upcast on read; the stored bytes stay as hashed)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection
from fastapi import FastAPI

from services.audit.adapters.sql import append_batch
from services.audit.app import SPEC
from services.audit.domain.chain import pending_from_envelope
from services.audit.entrypoints.cli import verify_log
from services.audit.entrypoints.http import router
from services.audit.tests.support import case_story
from shared.envelope import Actor, Envelope, new_envelope, utcnow
from shared.events import CaseViewed, parse_payload, upcast_payload
from shared.service import Runtime, start_runtime, stop_runtime
from shared.settings import Settings
from tests.support.auth import auth_headers
from tests.support.bus import declare_topology

AUDITOR = {**auth_headers("auditor-9", "auditor"), "User-Agent": "shape-check/1.0"}
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
READ_AT = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
CURRENT_KEYS = set(CaseViewed.model_fields)


def intake_v1(case_id: UUID) -> Envelope:
    """Intake's version-1 shape: `viewer`, the read time in `at`."""
    payload = {
        "viewer": "A-1001", "roles": ["hr_agent"], "case_id": str(case_id),
        "client_ip": "10.1.2.3", "user_agent": "desk/1", "view": "portal",
        "at": "2026-03-02T10:15:00.000000Z",
    }  # fmt: skip
    return new_envelope(
        event_type="audit.case_viewed", schema_version=1, payload=payload, producer="intake",
        actor=Actor(type="agent", id="A-1001"), case_id=case_id,
        occurred_at=datetime(2026, 3, 2, 10, 15, tzinfo=UTC),
    )  # fmt: skip


def audit_v1(case_id: UUID) -> Envelope:
    """The audit service's own version-1 shape: `subject`, and `at` = the replayed instant
    (the read time only in the envelope)."""
    payload = {
        "subject": "auditor-old", "roles": ["auditor"], "client_ip": "10.9.8.7",
        "user_agent": "old-browser", "forwarded_for": "198.51.100.9", "view": "state",
        "at": "2026-03-02T09:05:00.000000Z",
    }  # fmt: skip
    return new_envelope(
        event_type="audit.case_viewed", schema_version=1, payload=payload, producer="audit",
        actor=Actor(type="agent", id="auditor-old"), case_id=case_id, occurred_at=READ_AT,
    )  # fmt: skip


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
        transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 50000)),
        base_url="http://audit",
    ) as c:
        yield c


@pytest.fixture(scope="module")
async def case_id(admin_pool: asyncpg.Pool) -> UUID:
    """A case's story followed by one old read of each version-1 shape, as they were stored."""
    case = uuid4()
    old = [pending_from_envelope(intake_v1(case)), pending_from_envelope(audit_v1(case))]
    async with admin_pool.acquire() as conn:
        await append_batch(conn, [*case_story(case, START), *old], utcnow())
    return case


def test_both_version_1_shapes_upcast_to_the_one_shape() -> None:
    case = uuid4()
    for envelope in (intake_v1(case), audit_v1(case)):
        viewed = parse_payload(envelope)  # what audit's ingest checks; refused before
        assert isinstance(viewed, CaseViewed) and viewed.case_id == case
    from_audit = upcast_payload(
        "audit.case_viewed", 1, audit_v1(case).payload, case_id=case, occurred_at=READ_AT
    )
    assert set(from_audit) == CURRENT_KEYS
    assert from_audit["viewer"] == "auditor-old" and from_audit["view"] == "state"
    assert from_audit["as_of"] == "2026-03-02T09:05:00.000000Z"  # not the read time
    assert CaseViewed.model_validate(from_audit).at == READ_AT  # the envelope's time
    from_intake = upcast_payload(
        "audit.case_viewed", 1, intake_v1(case).payload, case_id=case, occurred_at=READ_AT
    )
    assert set(from_intake) == CURRENT_KEYS and from_intake["viewer"] == "A-1001"
    assert from_intake["at"] == "2026-03-02T10:15:00.000000Z" and from_intake["as_of"] is None
    # The current version passes through untouched; an unknown future one is refused.
    current = {**from_intake}
    assert upcast_payload("audit.case_viewed", 2, current, case_id=case, occurred_at=READ_AT) == (
        current
    )


async def test_old_reads_show_in_the_access_log_and_timeline(
    client: httpx.AsyncClient, case_id: UUID, database_url: str
) -> None:
    access = await client.get(
        "/api/v1/audit/access", params={"case_id": str(case_id)}, headers=AUDITOR
    )
    assert access.status_code == 200, access.text
    old = {i["subject"]: i for i in access.json()["items"]}
    assert old["A-1001"]["view"] == "portal" and old["A-1001"]["client_ip"] == "10.1.2.3"
    assert old["A-1001"]["summary"] == "record read by A-1001 (portal) from 10.1.2.3"
    assert old["auditor-old"]["forwarded_for"] == "198.51.100.9"
    assert old["auditor-old"]["as_of"] == "2026-03-02T09:05:00.000000Z"
    assert old["auditor-old"]["summary"] == (
        "record read by auditor-old (state as of 2026-03-02T09:05:00.000000Z) from 10.9.8.7"
    )
    timeline = await client.get(
        f"/api/v1/audit/cases/{case_id}/timeline",
        params={"include_access": "true"},
        headers=AUDITOR,
    )
    summaries = [i["summary"] for i in timeline.json()["items"]]
    assert "record read by A-1001 (portal) from 10.1.2.3" in summaries
    assert (
        "record read by auditor-old (state as of 2026-03-02T09:05:00.000000Z) from 10.9.8.7"
        in summaries
    )
    # Replay and export read past them; the chain is untouched (nothing rewritten).
    state = await client.get(f"/api/v1/audit/cases/{case_id}/state", headers=AUDITOR)
    assert state.status_code == 200 and state.json()["state"]["anomalies"] == []
    export = await client.post(f"/api/v1/audit/cases/{case_id}/export", headers=AUDITOR)
    assert export.status_code == 200, export.text
    document = export.json()["document"]
    exported = {i["summary"] for i in document["timeline"]}
    assert "record read by A-1001 (portal) from 10.1.2.3" in exported
    stored = [
        e for e in document["entries"] if e["schema_version"] == 1 and e["producer"] == "audit"
    ]
    stored = [e for e in stored if e["event_type"] == "audit.case_viewed"]
    assert stored[0]["payload"]["subject"] == "auditor-old"  # the stored bytes, as hashed
    assert (await verify_log(database_url)).ok


async def test_new_reads_are_written_in_the_one_shape(
    client: httpx.AsyncClient, case_id: UUID, admin_pool: asyncpg.Pool
) -> None:
    await client.get(
        f"/api/v1/audit/cases/{case_id}/state",
        params={"at": "2026-03-02T09:03:00Z"},
        headers={**AUDITOR, "X-Forwarded-For": "198.51.100.4"},
    )
    row = await admin_pool.fetchrow(
        "SELECT schema_version, payload::text AS payload FROM audit.log"
        " WHERE case_id = $1 AND event_type = 'audit.case_viewed' ORDER BY seq DESC LIMIT 1",
        case_id,
    )
    assert row["schema_version"] == CaseViewed.schema_version == 2
    payload = json.loads(row["payload"])
    assert set(payload) == CURRENT_KEYS
    viewed = CaseViewed.model_validate(payload)
    assert viewed.viewer == "auditor-9" and viewed.view == "state" and viewed.case_id == case_id
    assert viewed.forwarded_for == "198.51.100.4" and viewed.client_ip == "203.0.113.9"
    assert viewed.as_of == "2026-03-02T09:03:00.000000Z"
