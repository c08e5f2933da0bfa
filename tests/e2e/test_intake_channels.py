"""Intake's channels on the real broker and database: identity, phone logging, anonymous.

Events are read from a capture queue bound to every routing key, i.e. exactly what
intake's outbox relay published.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.auth import auth_headers
from tests.support.bus import capture_events
from tests.support.system import running_system

SAM = {"employee_id": "E-8101", "name": "Sam Okoye", "email": "sam.okoye@example.com"}
ALEX = {"employee_id": "E-8102", "name": "Alex Berg", "email": "alex.berg@example.com"}
AS_SAM = auth_headers("u-sam", "employee", employee_id=SAM["employee_id"])
AS_ALEX = auth_headers("u-alex", "employee", employee_id=ALEX["employee_id"])
AS_AGENT = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
AS_INVESTIGATOR = auth_headers("A-3001", "investigator", employee_id="A-3001")
# The investigations team of the default policy (services/routing/policy/default.yaml).
INVESTIGATORS = ("A-3001", "A-3002", "A-3003")


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "channels") as running:
        yield running


@pytest.fixture
async def capture(amqp, system):
    async with capture_events(amqp) as captured:
        yield captured


def client(system, headers=None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.url("intake"), timeout=10, headers=headers)


def case_body(reporter=SAM, **overrides):
    return {
        "subject": "Payslip is missing my overtime",
        "description": "My overtime from October is not on my November payslip.",
        "reporter": reporter,
        **overrides,
    }


async def submit(system, headers, body) -> httpx.Response:
    async with client(system, headers) as c:
        return await c.post("/api/v1/cases", json=body)


async def test_every_call_needs_a_principal_and_employees_raise_only_for_themselves(system):
    assert (await submit(system, None, case_body())).status_code == 401
    bad_token = {"Authorization": "Bearer not-a-jwt"}
    assert (await submit(system, bad_token, case_body())).status_code == 401

    refused = await submit(system, AS_ALEX, case_body(reporter=SAM))
    assert refused.status_code == 403
    assert "only raise cases for themselves" in refused.json()["detail"]

    auditor = auth_headers("au-1", "auditor")
    assert (await submit(system, auditor, case_body())).status_code == 403

    own = await submit(system, AS_SAM, case_body())
    assert own.status_code == 202, own.text
    on_behalf = await submit(system, AS_AGENT, case_body(reporter=ALEX))
    assert on_behalf.status_code == 202, on_behalf.text


async def test_an_employee_sees_only_their_own_cases(system):
    mine = (await submit(system, AS_SAM, case_body(subject="Sam's private case"))).json()
    async with client(system, AS_ALEX) as alex:
        # Another employee's case is indistinguishable from a case that does not exist.
        other = await alex.get(f"/api/v1/cases/{mine['case_id']}")
        missing = await alex.get(f"/api/v1/cases/{uuid.uuid4()}")
        assert other.status_code == missing.status_code == 404
        assert other.json() == missing.json()
        listed = (await alex.get("/api/v1/cases")).json()["cases"]
        assert mine["case_id"] not in {c["case_id"] for c in listed}
        refused = await alex.post(
            f"/api/v1/cases/{mine['case_id']}/messages", json={"body": "let me in"}
        )
        assert refused.status_code == 404
    async with client(system, AS_SAM) as sam:
        view = await sam.get(f"/api/v1/cases/{mine['case_id']}")
        assert view.status_code == 200 and view.json()["reference"] == mine["reference"]
        listed = (await sam.get("/api/v1/cases")).json()["cases"]
        assert mine["case_id"] in {c["case_id"] for c in listed}
        sent = await sam.post(
            f"/api/v1/cases/{mine['case_id']}/messages", json={"body": "One more detail."}
        )
        assert sent.status_code == 201, sent.text
        empty = await sam.post(f"/api/v1/cases/{mine['case_id']}/messages", json={"body": " "})
        assert empty.status_code == 422
        messages = (await sam.get(f"/api/v1/cases/{mine['case_id']}")).json()["messages"]
        assert [m["body"] for m in messages] == ["One more detail."]
        assert messages[0]["sender_role"] == "reporter"


async def test_staff_reads_of_a_restricted_case_are_audited(system, capture):
    body = case_body(
        subject="Harassment by my shift lead",
        description="My shift lead harasses me with comments every night.",
        category="harassment",
    )
    accepted = (await submit(system, AS_SAM, body)).json()
    case_id = accepted["case_id"]

    routed = await until_owned(system, case_id)
    owner = routed["assignment"]["owner_id"]
    assert owner in INVESTIGATORS, routed
    async with client(system, AS_AGENT) as agent:
        # An hr_agent who neither owns nor logged it cannot see a restricted case.
        assert (await agent.get(f"/api/v1/cases/{case_id}")).status_code == 404
    # Investigators read only the restricted cases assigned to them: the others get the
    # answer of a missing case, in the case view and the case list alike.
    for other in sorted(set(INVESTIGATORS) - {owner}):
        as_other = auth_headers(other, "investigator", employee_id=other)
        async with client(system, as_other) as investigator:
            hidden = await investigator.get(f"/api/v1/cases/{case_id}")
            missing = await investigator.get(f"/api/v1/cases/{uuid.uuid4()}")
            assert hidden.status_code == missing.status_code == 404
            assert hidden.json() == missing.json()
            listed = (await investigator.get("/api/v1/cases")).json()["cases"]
            assert case_id not in {c["case_id"] for c in listed}
    as_owner = auth_headers(owner, "investigator", employee_id=owner)
    headers = {**as_owner, "User-Agent": "investigator-browser/1.0"}
    async with client(system, headers) as investigator:
        view = await investigator.get(f"/api/v1/cases/{case_id}")
        assert view.status_code == 200
        assert view.json()["sensitivity"] == "restricted"

    viewed = await capture.wait(
        lambda e: e["event_type"] == "audit.case_viewed" and e["case_id"] == case_id
    )
    assert viewed["actor"] == {"type": "agent", "id": owner}
    payload = viewed["payload"]
    assert payload["viewer"] == owner and payload["roles"] == ["investigator"]
    assert payload["client_ip"] == "127.0.0.1"
    assert payload["user_agent"] == "investigator-browser/1.0"
    assert payload["case_id"] == case_id and payload["at"]
    # The reporter reading their own case is not a staff access.
    views = [e for e in capture.events if e["event_type"] == "audit.case_viewed"]
    assert len([e for e in views if e["case_id"] == case_id]) == 1


async def test_every_staff_read_of_a_confidential_case_is_audited(system, capture):
    body = case_body(
        subject="Grievance about my rota",
        description="I raised a grievance about my rota and nothing happened.",
        category="grievance",
    )
    case_id = (await submit(system, AS_SAM, body)).json()["case_id"]
    routed = await until_owned(system, case_id)
    assert routed["sensitivity"] == "confidential"
    # Any member of staff may read it (it is not restricted) and every such read is audited.
    readers = {"A-1001": AS_AGENT, "A-3001": AS_INVESTIGATOR}
    for reader, headers in readers.items():
        async with client(system, headers) as staff:
            assert (await staff.get(f"/api/v1/cases/{case_id}")).status_code == 200
        viewed = await capture.wait(
            lambda e, reader=reader: (
                e["event_type"] == "audit.case_viewed"
                and e["case_id"] == case_id
                and e["payload"]["viewer"] == reader
            )
        )
        assert viewed["payload"]["view"] == "api"
    # The reporter's own reads are not staff accesses.
    views = [e for e in capture.events if e["event_type"] == "audit.case_viewed"]
    assert sorted(e["payload"]["viewer"] for e in views if e["case_id"] == case_id) == sorted(
        readers
    )


async def until_owned(system, case_id: str) -> dict:
    """The reporter's view of the case once routing has named its owner."""
    async with client(system, AS_SAM) as sam:
        for _ in range(300):
            view = (await sam.get(f"/api/v1/cases/{case_id}")).json()
            if view["sensitivity"] and view["assignment"]["owner_id"]:
                return view
            await asyncio.sleep(0.1)
    raise AssertionError(f"the case was never routed and assigned: {view}")


async def test_an_agent_logs_a_phone_call_as_a_case(system, capture):
    call = {
        "caller": SAM,
        "called_at": (datetime.now(UTC) - timedelta(minutes=20)).isoformat(),
        "duration_seconds": 540,
        "summary": "Caller says the overtime for October is missing from the payslip.",
        "category": "payroll_query",
        "callback_number": "+44 20 7946 0958",
    }
    async with client(system, AS_SAM) as employee:
        refused = await employee.post("/api/v1/phone-calls", json=call)
        assert refused.status_code == 403
    async with client(system, AS_AGENT) as agent:
        nobody = await agent.post("/api/v1/phone-calls", json={**call, "caller": {}})
        assert nobody.status_code == 422
        assert "caller" in json.dumps(nobody.json())
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        assert (
            await agent.post("/api/v1/phone-calls", json={**call, "called_at": future})
        ).status_code == 422

        accepted = await agent.post("/api/v1/phone-calls", json=call)
        assert accepted.status_code == 202, accepted.text
        case_id = accepted.json()["case_id"]
        view = (await agent.get(f"/api/v1/cases/{case_id}")).json()
        assert view["channel"] == "phone" and view["logged_by"] == "A-1001"

        unknown_caller = await agent.post(
            "/api/v1/phone-calls",
            json={**call, "caller": {"details": "agency cleaner, site B"}, "category": None},
        )
        assert unknown_caller.status_code == 202, unknown_caller.text

    submitted = await capture.wait(
        lambda e: e["event_type"] == "case.submitted" and e["case_id"] == case_id
    )
    assert submitted["actor"] == {"type": "agent", "id": "A-1001"}
    assert submitted["payload"]["channel"] == "phone"
    assert submitted["payload"]["logged_by"] == "A-1001"
    assert submitted["payload"]["reporter"]["employee_id"] == SAM["employee_id"]
    assert submitted["payload"]["subject"].startswith("Phone call: ")
    # The callback number stays in intake's own record, never on the bus.
    assert "7946" not in json.dumps(submitted)
    async with client(system, AS_SAM) as employee:
        # The caller sees the case logged for them.
        assert (await employee.get(f"/api/v1/cases/{case_id}")).status_code == 200


async def test_anonymous_report_leaves_no_trace_of_the_reporter(system, capture, admin_pool):
    marker_ua = "Mozilla/5.0 ANON-UA-MARKER-5521"
    identifying = {
        **AS_SAM,  # a token is ignored on this endpoint
        "User-Agent": marker_ua,
        "X-Forwarded-For": "203.0.113.77",
    }
    report = {
        "subject": "Fraud in the purchasing team",
        "description": "Invoices are approved without any delivery having taken place.",
        "category": "compliance",
    }
    async with client(system, identifying) as anonymous:
        created = await anonymous.post("/api/v1/anonymous-reports", json=report)
        assert created.status_code == 201, created.text
        assert created.headers["cache-control"] == "no-store"
        reference, key = created.json()["reference"], created.json()["secret_key"]
        assert len(key.replace("-", "")) == 32

        read = await anonymous.get(
            f"/api/v1/anonymous-reports/{reference}", headers={"X-Report-Key": key}
        )
        assert read.status_code == 200 and read.json()["status"] in ("new", "routed", "assigned")
        reply = await anonymous.post(
            f"/api/v1/anonymous-reports/{reference}/messages",
            headers={"X-Report-Key": key.lower().replace("-", " ")},  # forgiving of copying
            json={"body": "The supplier is called Acme Widgets."},
        )
        assert reply.status_code == 201, reply.text
        after = await anonymous.get(
            f"/api/v1/anonymous-reports/{reference}", headers={"X-Report-Key": key}
        )
        assert [m["body"] for m in after.json()["messages"]] == [
            "The supplier is called Acme Widgets."
        ]
        wrong = await anonymous.get(
            f"/api/v1/anonymous-reports/{reference}", headers={"X-Report-Key": "A" * 32}
        )
        unknown = await anonymous.get(
            "/api/v1/anonymous-reports/HR-1999-000001", headers={"X-Report-Key": key}
        )
        assert wrong.status_code == unknown.status_code == 404
        assert wrong.json() == unknown.json()

    row = await admin_pool.fetchrow("SELECT * FROM intake.cases WHERE reference = $1", reference)
    assert row["anonymous"] and row["reporter_employee_id"] is None
    assert row["submitted_by"] is None
    assert row["anonymous_key_hash"].startswith("scrypt$") and key not in row["anonymous_key_hash"]

    case_id = str(row["case_id"])
    submitted = await capture.wait(
        lambda e: e["event_type"] == "case.submitted" and e["case_id"] == case_id
    )
    message = await capture.wait(
        lambda e: e["event_type"] == "case.message_received" and e["case_id"] == case_id
    )
    assert submitted["payload"]["reporter"] is None and submitted["payload"]["anonymous"]
    assert submitted["actor"] == {"type": "anonymous", "id": None}
    assert message["actor"] == {"type": "anonymous", "id": None}
    assert message["payload"]["sender_role"] == "anonymous_reporter"
    for event in (submitted, message):
        text = json.dumps(event)
        for trace in (SAM["employee_id"], "u-sam", "ANON-UA-MARKER", "203.0.113.77", key):
            assert trace not in text

    log = (system.services["intake"].log_path).read_text(encoding="utf-8")
    assert reference in log  # the log does record the case...
    for trace in ("ANON-UA-MARKER", "203.0.113.77", key, key.replace("-", "")):
        assert trace not in log  # ...but nothing about who reported it


async def test_wrong_keys_lock_an_anonymous_report_for_a_while(system):
    report = {"subject": "Safety shortcuts", "description": "Guards are removed from machines."}
    async with client(system) as anonymous:
        created = (await anonymous.post("/api/v1/anonymous-reports", json=report)).json()
        path = f"/api/v1/anonymous-reports/{created['reference']}"
        for _ in range(5):
            wrong = await anonymous.get(path, headers={"X-Report-Key": "WRONG-KEY-0000"})
            assert wrong.status_code == 404
        locked = await anonymous.get(path, headers={"X-Report-Key": created["secret_key"]})
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) >= 1
        too_short = await anonymous.get(path, headers={"X-Report-Key": "x"})
        assert too_short.status_code == 422
        invalid = await anonymous.post("/api/v1/anonymous-reports", json={"subject": "x"})
        assert invalid.status_code == 422
