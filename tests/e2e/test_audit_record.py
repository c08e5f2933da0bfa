"""The audit record of a real case through the running system: replay equals intake's live
read model, an earlier instant shows the earlier state, signed checkpoints verify, and a
standby audit replica takes over without a gap or a duplicate."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.audit.domain.chain import format_timestamp
from services.audit.entrypoints.cli import verify_log
from tests.support.auth import auth_headers
from tests.support.infra import ROOT, ServiceProcess, free_port, wait_for
from tests.support.system import running_system

REPORTER = {"employee_id": "E-7101", "name": "Alex Moreno", "email": "alex@example.com"}
AS_REPORTER = auth_headers("u-alex", "employee", employee_id=REPORTER["employee_id"])
AUDITOR = auth_headers("auditor-1", "auditor")


@pytest.fixture(scope="module")
def audit_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("audit-record")
    return {
        "AUDIT_CHECKPOINT_DIR": str(base / "checkpoints"),
        "AUDIT_SIGNING_KEY_FILE": str(base / "keys" / "signing.key"),
        "AUDIT_CHECKPOINT_INTERVAL": "0.5",
    }


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir, audit_env):
    with running_system(database_url, rabbitmq_url, logs_dir / "audit-record", **audit_env) as s:
        yield s


def submit(system, subject: str) -> str:
    with system.client("intake", headers=AS_REPORTER) as client:
        response = client.post(
            "/api/v1/cases",
            json={
                "subject": subject,
                "description": "My manager shouts at me in front of the team every week.",
                "reporter": REPORTER,
            },
        )
    assert response.status_code == 202, response.text
    return response.json()["case_id"]


def audit_entries(system, case_id: str) -> list[dict]:
    with system.client("audit", headers=AUDITOR) as client:
        response = client.get(f"/api/v1/audit/cases/{case_id}")
    return response.json()["entries"] if response.status_code == 200 else []


def state_at(system, case_id: str, at: str | None = None) -> dict:
    with system.client("audit", headers=AUDITOR) as client:
        response = client.get(
            f"/api/v1/audit/cases/{case_id}/state", params={"at": at} if at else {}
        )
    assert response.status_code == 200, response.text
    return response.json()["state"]


def _ts(value: datetime | None) -> str | None:
    return format_timestamp(value) if value else None


async def test_replay_matches_the_live_read_model(system, admin_pool: asyncpg.Pool):
    case_id = submit(system, "Bullying by my line manager")
    with system.client("intake", headers=AS_REPORTER) as client:
        posted = client.post(
            f"/api/v1/cases/{case_id}/messages", json={"body": "It happened again today."}
        )
    assert posted.status_code == 201, posted.text

    def settled():
        types = [e["event_type"] for e in audit_entries(system, case_id)]
        row_ready = "case.status_changed" in types and "case.message_received" in types
        return types if row_ready else None

    types = wait_for(settled, timeout=30, what="case routed, assigned and the message audited")
    # Intake projects the same events on its own consumer: it may still be behind the log.
    deadline = time.monotonic() + 30
    while True:
        live = await admin_pool.fetchrow("SELECT * FROM intake.cases WHERE case_id = $1", case_id)
        replayed = state_at(system, case_id)
        caught_up = (live["status"], live["owner_id"]) == (
            replayed["status"],
            replayed["assignment"]["owner_id"],
        )
        if caught_up or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    messages = await admin_pool.fetchval(
        "SELECT count(*) FROM intake.case_messages WHERE case_id = $1", case_id
    )
    assert replayed["exists"] is True
    expected = {
        "reference": live["reference"],
        "channel": live["channel"],
        "subject": live["subject"],
        "status": live["status"],
        "category": live["category"],
        "sensitivity": live["sensitivity"],
        "priority": live["priority"],
        "team": live["team"],
        "owner_id": live["owner_id"],
        "owner_name": live["owner_name"],
        "first_response_due": _ts(live["first_response_due"]),
        "resolution_due": _ts(live["resolution_due"]),
        "submitted_at": _ts(live["submitted_at"]),
        "messages": messages,
    }
    got = {
        **{k: replayed[k] for k in ("reference", "channel", "subject", "status", "category")},
        "sensitivity": replayed["sensitivity"],
        "priority": replayed["priority"],
        "team": replayed["assignment"]["team"],
        "owner_id": replayed["assignment"]["owner_id"],
        "owner_name": replayed["assignment"]["owner_name"],
        "first_response_due": replayed["sla"]["first_response_due"],
        "resolution_due": replayed["sla"]["resolution_due"],
        "submitted_at": replayed["submitted_at"],
        "messages": replayed["messages"],
    }
    assert got == expected, types
    assert replayed["status"] == "assigned" and replayed["messages"] >= 1

    # At the instant of submission: the case existed, untriaged and unassigned.
    entries = audit_entries(system, case_id)
    submitted_at = next(e for e in entries if e["event_type"] == "case.submitted")["occurred_at"]
    routed_at = next(e for e in entries if e["event_type"] == "case.routed")["occurred_at"]
    early = state_at(system, case_id, submitted_at)
    assert early["status"] == "new" and early["assignment"]["owner_id"] is None
    assert early["priority"] is None and early["messages"] == 0
    # Just before the submission: nothing yet.
    before = datetime.fromisoformat(submitted_at.replace("Z", "+00:00")) - timedelta(seconds=1)
    assert state_at(system, case_id, before.isoformat())["exists"] is False
    routed = state_at(system, case_id, routed_at)
    assert routed["priority"] == live["priority"] and routed["status"] in ("routed", "assigned")


def test_signed_checkpoints_verify_against_the_live_log(system, audit_env):
    case_id = submit(system, "Checkpointed case: unpaid overtime")
    wait_for(lambda: len(audit_entries(system, case_id)) >= 4, timeout=30, what="case audited")
    checkpoints = ROOT / "var"  # placeholder to keep the name obvious in failures

    def signed() -> bool:
        files = list(Path(audit_env["AUDIT_CHECKPOINT_DIR"]).glob("*.jsonl"))
        return bool(files) and bool(files[0].read_text().strip())

    wait_for(signed, timeout=10, what="a signed checkpoint")
    del checkpoints
    verify = subprocess.run(
        [sys.executable, "-m", "hrcase.cli", "audit", "verify", "--database-url",
         system.database_url, "--require-checkpoints"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, **audit_env},
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "signed checkpoint(s) hold" in verify.stdout


async def test_standby_replica_takes_over_without_gap_or_duplicate(
    system, admin_pool: asyncpg.Pool, logs_dir
):
    primary = system.services["audit"]
    standby = ServiceProcess(
        "audit", {**primary.env, "AUDIT_HTTP_PORT": str(port := free_port())}, port,
        logs_dir / "audit-record" / "audit-standby.log",
    ).start()  # fmt: skip
    try:
        first = [submit(system, f"Replica case {i}: missing payslip") for i in range(5)]
        primary.kill9()  # unacked deliveries go back to the queue; the standby becomes active
        second = [submit(system, f"Replica case {i + 5}: missing payslip") for i in range(5)]
        case_ids = [uuid.UUID(c) for c in first + second]

        async def all_recorded():
            n = await admin_pool.fetchval(
                "SELECT count(DISTINCT case_id) FROM audit.log WHERE case_id = ANY($1::uuid[])"
                " AND event_type = 'case.status_changed'",
                case_ids,
            )
            return n == len(case_ids)

        for _ in range(450):
            if await all_recorded():
                break
            await asyncio.sleep(0.1)
        assert await all_recorded()
        rows = await admin_pool.fetch(
            "SELECT count(*) AS n, count(DISTINCT event_id) AS ids, max(seq) AS top,"
            " min(seq) AS bottom FROM audit.log"
        )
        assert rows[0]["n"] == rows[0]["ids"] == rows[0]["top"] and rows[0]["bottom"] == 1
        assert (await verify_log(system.database_url)).ok
        async with httpx.AsyncClient(
            base_url=standby.base_url, headers=AUDITOR, timeout=10
        ) as client:
            assert (await client.get(f"/api/v1/audit/cases/{case_ids[-1]}")).status_code == 200
    finally:
        standby.stop()
        primary.start()
