"""The auditors' API on the real database: roles, timeline, state at an instant, export,
and every read of a case recorded in the chain (the access log)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection
from click.testing import CliRunner
from fastapi import FastAPI

from services.audit.adapters.checkpoints import CheckpointWriter
from services.audit.adapters.sql import append_batch
from services.audit.app import SPEC
from services.audit.domain.chain import canonical_json
from services.audit.entrypoints.cli import audit_cli, verify_log
from services.audit.entrypoints.http import router
from services.audit.tests.support import case_story
from shared.envelope import utcnow
from shared.service import Runtime, start_runtime, stop_runtime
from shared.settings import Settings
from tests.support.auth import auth_headers
from tests.support.bus import declare_topology

AUDITOR = {**auth_headers("auditor-1", "auditor"), "User-Agent": "tribunal-check/1.0"}
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


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
        transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 50000)),
        base_url="http://audit",
    ) as c:
        yield c


@pytest.fixture(scope="module")
async def case_id(admin_pool: asyncpg.Pool) -> UUID:
    case = uuid4()
    async with admin_pool.acquire() as conn:
        await append_batch(conn, case_story(case, START), utcnow())
    return case


async def _access(admin_pool: asyncpg.Pool, case: UUID) -> list[asyncpg.Record]:
    return list(
        await admin_pool.fetch(
            "SELECT event_type, actor::text AS actor, payload::text AS payload FROM audit.log"
            " WHERE case_id = $1 AND event_type LIKE 'audit.%' ORDER BY seq",
            case,
        )
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/audit/cases/{case}"),
        ("GET", "/api/v1/audit/cases/{case}/timeline"),
        ("GET", "/api/v1/audit/cases/{case}/state"),
        ("POST", "/api/v1/audit/cases/{case}/export"),
        ("GET", "/api/v1/audit/access"),
    ],
)
async def test_only_auditors_read_the_record(
    client: httpx.AsyncClient, admin_pool: asyncpg.Pool, case_id: UUID, method: str, path: str
) -> None:
    url = path.format(case=case_id)
    before = len(await _access(admin_pool, case_id))
    assert (await client.request(method, url)).status_code == 401
    for roles in (("employee",), ("hr_agent", "hr_manager"), ("admin",), ("investigator",)):
        denied = await client.request(method, url, headers=auth_headers("u-1", *roles))
        assert denied.status_code == 403, (roles, denied.text)
    # Refused reads show nothing and so record nothing.
    assert len(await _access(admin_pool, case_id)) == before


async def test_timeline_is_recorded_as_a_read(
    client: httpx.AsyncClient, admin_pool: asyncpg.Pool, case_id: UUID, database_url: str
) -> None:
    response = await client.get(
        f"/api/v1/audit/cases/{case_id}/timeline",
        headers={**AUDITOR, "X-Forwarded-For": "198.51.100.4"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reference"] == "HR-2026-000042"
    items = body["items"]
    assert [i["event_type"] for i in items] == [
        "case.submitted", "case.routed", "case.assigned", "case.status_changed",
        "case.note_added", "case.message_received",
    ]  # fmt: skip
    assigned = items[2]
    assert assigned["summary"] == "assigned to A-3001 (team investigations)"
    assert assigned["actor"] == {"type": "service", "id": "routing"}
    assert assigned["occurred_at"] == "2026-03-02T09:02:00.000000Z"
    assert assigned["changes"]["status"] == {"from": "routed", "to": "assigned"}

    # The read itself: in the chain, with who, from where, with what.
    reads = await _access(admin_pool, case_id)
    last = reads[-1]
    assert last["event_type"] == "audit.case_viewed"
    assert json.loads(last["actor"]) == {"type": "agent", "id": "auditor-1"}
    payload = json.loads(last["payload"])
    # One shape for every audit.case_viewed (CaseViewed v2): the reader is the "viewer".
    assert payload["view"] == "timeline" and payload["viewer"] == "auditor-1"
    assert payload["client_ip"] == "203.0.113.7"
    assert payload["forwarded_for"] == "198.51.100.4"
    assert payload["user_agent"] == "tribunal-check/1.0"
    assert payload["roles"] == ["auditor"]
    assert (await verify_log(database_url)).ok

    with_reads = await client.get(
        f"/api/v1/audit/cases/{case_id}/timeline", params={"include_access": "true"},
        headers=AUDITOR,
    )  # fmt: skip
    assert with_reads.json()["items"][-1]["summary"] == (
        "record read by auditor-1 (timeline) from 203.0.113.7"
    )


async def test_access_log_lists_who_read_which_case(
    client: httpx.AsyncClient, case_id: UUID
) -> None:
    await client.get(f"/api/v1/audit/cases/{case_id}", headers=AUDITOR)
    other = auth_headers("auditor-2", "auditor")
    await client.get(f"/api/v1/audit/cases/{case_id}/state", headers=other)
    response = await client.get("/api/v1/audit/access", params={"case_id": str(case_id)},
                                headers=AUDITOR)  # fmt: skip
    assert response.status_code == 200
    items = response.json()["items"]
    assert items[0]["subject"] == "auditor-2" and items[0]["view"] == "state"
    assert items[1]["subject"] == "auditor-1" and items[1]["view"] == "entries"
    assert items[1]["client_ip"] == "203.0.113.7" and items[1]["case_id"] == str(case_id)
    assert all(i["case_id"] == str(case_id) for i in items)
    by_subject = await client.get(
        "/api/v1/audit/access", params={"subject": "auditor-2", "case_id": str(case_id)},
        headers=AUDITOR,
    )  # fmt: skip
    assert {i["subject"] for i in by_subject.json()["items"]} == {"auditor-2"}
    future = await client.get(
        "/api/v1/audit/access", params={"case_id": str(case_id), "since": "2999-01-01T00:00:00Z"},
        headers=AUDITOR,
    )  # fmt: skip
    assert future.json()["items"] == []
    naive = await client.get("/api/v1/audit/access", params={"since": "2026-01-01T00:00:00"},
                             headers=AUDITOR)  # fmt: skip
    assert naive.status_code == 422


async def test_state_at_an_instant(client: httpx.AsyncClient, case_id: UUID) -> None:
    async def state(at: datetime | None) -> dict[str, Any]:
        params = {"at": at.isoformat()} if at else {}
        response = await client.get(
            f"/api/v1/audit/cases/{case_id}/state", params=params, headers=AUDITOR
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()["state"]
        return result

    between = await state(START + timedelta(minutes=1, seconds=30))
    assert between["status"] == "routed" and between["assignment"]["owner_id"] is None
    assert between["priority"] == "P2" and between["notes"] == []
    now = await state(None)
    assert now["status"] == "assigned" and now["assignment"]["owner_id"] == "A-3001"
    assert [n["body"] for n in now["notes"]] == ["Called the reporter."] and now["messages"] == 1
    assert (await state(START - timedelta(days=1)))["exists"] is False
    naive = await client.get(
        f"/api/v1/audit/cases/{case_id}/state", params={"at": "2026-03-02T09:00:00"},
        headers=AUDITOR,
    )  # fmt: skip
    assert naive.status_code == 422


async def test_unknown_case_is_404_but_the_attempt_is_recorded(
    client: httpx.AsyncClient, admin_pool: asyncpg.Pool
) -> None:
    probe = uuid4()
    response = await client.get(f"/api/v1/audit/cases/{probe}/timeline", headers=AUDITOR)
    assert response.status_code == 404
    assert [r["event_type"] for r in await _access(admin_pool, probe)] == ["audit.case_viewed"]
    export = await client.post(f"/api/v1/audit/cases/{probe}/export", headers=AUDITOR)
    assert export.status_code == 404


async def test_export_is_verifiable_and_recorded(
    client: httpx.AsyncClient, admin_pool: asyncpg.Pool, case_id: UUID, runtime: Runtime
) -> None:
    writer: CheckpointWriter = runtime.state["checkpoint_writer"]
    signed = await writer.checkpoint()
    response = await client.post(f"/api/v1/audit/cases/{case_id}/export", headers=AUDITOR)
    assert response.status_code == 200, response.text
    body = response.json()
    doc = body["document"]
    # The file's hash is recomputable by anyone (documented in domain/export.py).
    unhashed = {k: v for k, v in doc.items() if k != "export_sha256"}
    digest = hashlib.sha256(canonical_json(unhashed).encode()).hexdigest()
    assert digest == doc["export_sha256"] == body["export_sha256"]
    assert doc["documents"] == [
        {
            "attachment_id": str(UUID(int=42)), "filename": "rota.pdf",
            "content_type": "application/pdf", "size": 1234, "sha256": "ab" * 32,
            "source": "case.submitted", "seq": doc["entries"][0]["seq"],
        }
    ]  # fmt: skip
    verification = doc["verification"]
    assert verification["ok"] and verification["chain"]["from_seq"] == 1
    assert verification["chain"]["to_seq"] >= doc["entries"][-1]["seq"]
    if signed is not None:
        assert verification["checkpoint"]["seq"] >= signed.seq
    assert verification["checkpoint"] is not None
    assert doc["state"]["status"] == "assigned"
    assert doc["export_sha256"] in body["html"] and "HR-2026-000042" in body["html"]
    assert "assigned to A-3001 (team investigations)" in body["html"]
    # The export is itself in the chain, with the file's hash.
    row = await admin_pool.fetchrow(
        "SELECT case_id, payload::text AS payload FROM audit.log WHERE seq = $1",
        body["recorded_seq"],
    )
    assert row["case_id"] == case_id
    recorded = json.loads(row["payload"])
    assert recorded["export_sha256"] == doc["export_sha256"] and recorded["chain_ok"] is True


def _read_export(directory: Path) -> tuple[dict[str, Any], str]:
    json_files = list(directory.glob("HR-2026-000042-*.json"))
    html_files = list(directory.glob("HR-2026-000042-*.html"))
    assert len(json_files) == 1 and len(html_files) == 1
    return json.loads(json_files[0].read_text("utf-8")), html_files[0].read_text("utf-8")


async def test_cli_export_writes_json_and_html(
    database_url: str, admin_pool: asyncpg.Pool, case_id: UUID, tmp_path: Path
) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke,
        audit_cli,
        ["export", str(case_id), "--out", str(tmp_path), "--as", "cli:legal-team",
         "--database-url", database_url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc, html = _read_export(tmp_path)
    assert doc["generated_by"] == "cli:legal-team"
    assert f"sha256 {doc['export_sha256']} (chain intact)" in result.output
    assert doc["export_sha256"] in html
    recorded = await admin_pool.fetchval(
        "SELECT count(*) FROM audit.log WHERE case_id = $1 AND event_type ="
        " 'audit.export_created' AND payload->>'export_sha256' = $2",
        case_id,
        doc["export_sha256"],
    )
    assert recorded == 1
