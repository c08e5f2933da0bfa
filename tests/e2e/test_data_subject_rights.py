"""Data-subject rights from the doors: erasure and access requests against the running
system (README "Data-subject rights").

Erasing a reporter makes their name, address, subject line, description and messages
unreadable in intake's read model (through the API and in the tables) and in
notifications' contacts, while the case skeleton (reference, category, status, dates)
stays; their keys are destroyed in the key store. A refusal keeps everything; the officer
who asked cannot decide; a decision is final. Cases kept for legal claims keep their data
and their keys. An access request gives the person's own data and nobody else's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from services.audit.entrypoints.cli import verify_log
from shared.privacy.keys import KeyStore, key_store_url, subject_for
from shared.privacy.sealing import open_payload
from shared.settings import Settings
from tests.support.auth import auth_headers
from tests.support.process_flow import eventually
from tests.support.system import RunningSystem, running_system

OFFICER = auth_headers("PO-1001", "privacy_officer", employee_id="PO-1001")
SECOND_OFFICER = auth_headers("PO-1002", "privacy_officer", employee_id="PO-1002")
AGENT = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
MANAGER = auth_headers("M-9002", "hr_manager", employee_id="M-9002")
ERASED = "[erased]"


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "data-subject-rights") as running:
        yield running


@pytest.fixture
async def keys(database_url: str):
    store = await KeyStore.open(key_store_url(Settings(database_url=database_url)), service="tests")
    yield store
    await store.close()


def person(name: str) -> tuple[dict[str, str], dict[str, str]]:
    employee_id = f"E-{uuid.uuid4().int % 10**7:07d}"
    who = {
        "employee_id": employee_id,
        "name": name,
        "email": f"{name.split()[0].lower()}-{uuid.uuid4().hex[:8]}@example.com",
    }
    return who, auth_headers(f"u-{employee_id}", "employee", employee_id=employee_id)


async def call(
    system: RunningSystem, method: str, path: str, headers: dict[str, str], **kwargs: Any
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=15) as client:
        return await client.request(method, path, headers=headers, **kwargs)


async def raise_case(
    system: RunningSystem,
    reporter: dict[str, str],
    headers: dict[str, str],
    *,
    description: str,
    respondents: list[dict[str, str]] | None = None,
    category: str = "payroll_query",
) -> str:
    body = {
        "subject": f"About my pay, {reporter['name']}",
        "description": description,
        "reporter": reporter,
        "category": category,
        "respondents": respondents or [],
    }
    accepted = await call(system, "POST", "/api/v1/cases", headers, json=body)
    assert accepted.status_code == 202, accepted.text
    case_id: str = accepted.json()["case_id"]

    async def routed() -> bool:
        view = (await call(system, "GET", f"/api/v1/cases/{case_id}", headers)).json()
        return view["status"] not in ("new",)

    await eventually(routed, f"case {case_id} routed")
    return case_id


async def request_erasure(system: RunningSystem, **subject: str) -> dict[str, Any]:
    placed = await call(
        system,
        "POST",
        "/api/v1/privacy/erasure-requests",
        OFFICER,
        json={**subject, "reason": "the employee asked to be forgotten (ticket 4711)"},
    )
    assert placed.status_code == 201, placed.text
    return dict(placed.json())


async def decide(
    system: RunningSystem, request_id: str, headers: dict[str, str], **body: Any
) -> httpx.Response:
    path = f"/api/v1/privacy/erasure-requests/{request_id}/decision"
    return await call(system, "POST", path, headers, json=body)


async def test_erasing_a_reporter_leaves_the_skeleton_and_nothing_of_them(
    system, admin_pool: asyncpg.Pool, keys: KeyStore
):
    reporter, as_reporter = person("Rhea Vance")
    description = "Rhea here: my overtime for March is missing, phone me on 0400 111 222."
    case_id = await raise_case(system, reporter, as_reporter, description=description)
    message = await call(
        system,
        "POST",
        f"/api/v1/cases/{case_id}/messages",
        as_reporter,
        json={"body": "Rhea again: my bank is Example Bank, account 12345."},
    )
    assert message.status_code == 201, message.text
    before = dict(
        await admin_pool.fetchrow("SELECT * FROM intake.cases WHERE case_id = $1", case_id)
    )

    async def contact_known() -> bool:
        row = await admin_pool.fetchrow(
            "SELECT reporter_email FROM notifications.case_contacts WHERE case_id = $1", case_id
        )
        return row is not None and row["reporter_email"] == reporter["email"]

    await eventually(contact_known, "notifications to know the reporter")
    # A key the kernel would have sealed the reporter's fields with.
    subject = subject_for(employee_id=reporter["employee_id"], email=None, case_id=None)
    assert await keys.key_for(subject, case_id, create=True, purpose="test: seal") is not None

    request = await request_erasure(system, employee_id=reporter["employee_id"])
    assert request["status"] == "pending" and request["subject_id"] == subject
    decided = await decide(
        system, request["request_id"], SECOND_OFFICER, decision="approve", reason="no hold"
    )
    assert decided.status_code == 200, decided.text
    outcome = decided.json()
    assert outcome["status"] == "erased" and outcome["keys_destroyed"] >= 1
    assert outcome["erased_case_ids"] == [case_id]
    assert await keys.key_for(subject, case_id, create=True, purpose="test: open") is None

    # The API: the reporter's words and identity are gone, the skeleton is there.
    view = (await call(system, "GET", f"/api/v1/cases/{case_id}", as_reporter)).json()
    assert view["subject"] == ERASED
    assert [m["body"] for m in view["messages"]] == [ERASED]
    assert view["reference"] == before["reference"] and view["status"] == before["status"]
    assert view["category"] == "payroll_query"
    text = json.dumps(view)
    for gone in ("Rhea", reporter["email"], "0400 111 222", "12345"):
        assert gone not in text
    # The tables.
    row = await admin_pool.fetchrow("SELECT * FROM intake.cases WHERE case_id = $1", case_id)
    assert (row["reporter_name"], row["reporter_email"]) == (ERASED, None)
    assert (row["subject"], row["description"]) == (ERASED, ERASED)
    for kept in ("reference", "category", "status", "submitted_at", "team", "channel"):
        assert row[kept] == before[kept], kept
    bodies = await admin_pool.fetch(
        "SELECT body, sender_email FROM intake.case_messages WHERE case_id = $1", case_id
    )
    assert [(b["body"], b["sender_email"]) for b in bodies] == [(ERASED, None)]

    async def contact_erased() -> bool:
        row = await admin_pool.fetchrow(
            "SELECT * FROM notifications.case_contacts WHERE case_id = $1", case_id
        )
        return row["erased_at"] is not None and row["reporter_email"] is None

    await eventually(contact_erased, "notifications to scrub the reporter's contact")
    contact = await admin_pool.fetchrow(
        "SELECT * FROM notifications.case_contacts WHERE case_id = $1", case_id
    )
    assert contact["reference"] == before["reference"] and contact["reporter_name"] is None
    # The request keeps whose data was erased (pseudonymously) and who decided, why.
    again = (
        await call(
            system, "GET", f"/api/v1/privacy/erasure-requests/{request['request_id']}", OFFICER
        )
    ).json()
    assert again["decided_by"] == "PO-1002" and again["decision_reason"] == "no hold"

    # The audit log: the reporter's copies (case.submitted, the message) stay sealed bytes
    # that no longer open, and the chain still verifies (it hashes the sealed bytes).
    async def audited() -> list[asyncpg.Record]:
        return await admin_pool.fetch(
            "SELECT event_type, payload FROM audit.log WHERE case_id = $1"
            " AND event_type IN ('case.submitted', 'case.message_received')",
            uuid.UUID(case_id),
        )

    rows = await eventually(lambda: _two(audited), "the reporter's events in the audit log")
    for entry in rows:
        stored = (
            entry["payload"] if isinstance(entry["payload"], str) else json.dumps(entry["payload"])
        )
        for gone in ("Rhea", reporter["email"], "0400 111 222", "12345"):
            assert gone not in stored, (entry["event_type"], gone)
        opened = await open_payload(
            keys, entry["event_type"], json.loads(stored), uuid.UUID(case_id), purpose="test"
        )
        texts = [opened.get("description"), opened.get("body")]
        assert ERASED in texts, (entry["event_type"], opened)
    verified = await verify_log(system.database_url)
    assert verified.ok, verified

    # Staff can no longer put personal data into the erased case (a note would be sealed
    # with a destroyed key on the bus while intake kept it readable), but can still close it.
    note = await call(
        system,
        "POST",
        f"/api/v1/cases/{case_id}/notes",
        MANAGER,
        json={"body": "Called Rhea on 0400 111 222 about the missing overtime."},
    )
    assert note.status_code == 409, note.text
    assert "erased" in note.json()["detail"]
    notes = await admin_pool.fetchval(
        "SELECT count(*) FROM intake.case_notes WHERE case_id = $1", uuid.UUID(case_id)
    )
    assert notes == 0
    closed = await call(
        system,
        "POST",
        f"/api/v1/cases/{case_id}/status",
        MANAGER,
        json={"to_status": "closed", "reason": "reporter erased"},
    )
    assert closed.status_code == 202, closed.text


async def _two(fetch: Callable[[], Awaitable[list[asyncpg.Record]]]) -> list[asyncpg.Record]:
    rows = await fetch()
    return rows if len(rows) >= 2 else []


async def test_a_refusal_keeps_everything_and_the_requester_cannot_decide(
    system, admin_pool: asyncpg.Pool
):
    reporter, as_reporter = person("Tomas Quill")
    description = "Tomas: my expenses for the Lyon trip were never paid back."
    case_id = await raise_case(system, reporter, as_reporter, description=description)
    request = await request_erasure(system, email=reporter["email"])
    request_id = request["request_id"]

    own = await decide(system, request_id, OFFICER, decision="approve", reason="mine")
    assert own.status_code == 403
    assert "second privacy officer" in own.json()["detail"]
    not_an_officer = await decide(system, request_id, MANAGER, decision="approve", reason="x")
    assert not_an_officer.status_code == 403
    refused = await decide(
        system, request_id, SECOND_OFFICER, decision="refuse", reason="case still open"
    )
    assert refused.status_code == 200, refused.text
    assert refused.json()["status"] == "refused"
    second = await decide(system, request_id, SECOND_OFFICER, decision="approve", reason="x")
    assert second.status_code == 409 and "final" in second.json()["detail"]
    listed = await call(system, "GET", "/api/v1/privacy/erasure-requests", OFFICER)
    assert listed.status_code == 200, listed.text
    [mine] = [r for r in listed.json()["erasure_requests"] if r["request_id"] == request_id]
    assert (mine["status"], mine["decision_reason"]) == ("refused", "case still open")
    assert mine["email"] == reporter["email"]  # nothing was erased, the request says whom
    hidden = await call(system, "GET", "/api/v1/privacy/erasure-requests", MANAGER)
    assert hidden.status_code == 403

    row = await admin_pool.fetchrow("SELECT * FROM intake.cases WHERE case_id = $1", case_id)
    assert (row["reporter_name"], row["reporter_email"]) == (reporter["name"], reporter["email"])
    assert row["description"] == description
    view = (await call(system, "GET", f"/api/v1/cases/{case_id}", as_reporter)).json()
    assert view["subject"] == f"About my pay, {reporter['name']}"
    # Bad input names the field.
    missing = await call(
        system, "POST", "/api/v1/privacy/erasure-requests", OFFICER, json={"reason": "x"}
    )
    assert missing.status_code == 422 and "employee_id or email" in missing.text
    unknown = await decide(system, str(uuid.uuid4()), SECOND_OFFICER, decision="refuse", reason="x")
    assert unknown.status_code == 404


async def test_erasing_a_respondent_spares_the_cases_kept_for_legal_claims(
    system, admin_pool: asyncpg.Pool, keys: KeyStore
):
    respondent, _ = person("Ivo Marsh")
    named = {"name": respondent["name"], "email": respondent["email"]}
    first_reporter, as_first = person("Lena Ward")
    second_reporter, as_second = person("Noor Patel")
    erased_case = await raise_case(
        system, first_reporter, as_first, description="Ivo shouted at me.", respondents=[named]
    )
    kept_case = await raise_case(
        system, second_reporter, as_second, description="Ivo took my shift.", respondents=[named]
    )

    async def routing_knows() -> bool:
        count = await admin_pool.fetchval(
            "SELECT count(*) FROM routing.case_respondents WHERE named_email = $1",
            respondent["email"],
        )
        return bool(count == 2)

    await eventually(routing_knows, "routing to record both respondents")
    subject = subject_for(employee_id=None, email=respondent["email"], case_id=None)
    for scope in (erased_case, kept_case):
        assert await keys.key_for(subject, scope, create=True, purpose="test: seal")

    request = await request_erasure(system, email=respondent["email"])
    stranger = await decide(
        system,
        request["request_id"],
        SECOND_OFFICER,
        decision="approve",
        reason="x",
        keep=[str(uuid.uuid4())],
    )
    assert stranger.status_code == 422 and "keep" in stranger.text
    decided = await decide(
        system,
        request["request_id"],
        SECOND_OFFICER,
        decision="approve",
        reason="erase, but the Ward claim is before the tribunal",
        keep=[kept_case],
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["erased_case_ids"] == [erased_case]
    assert decided.json()["kept_case_ids"] == [kept_case]
    assert await keys.key_for(subject, erased_case, create=False, purpose="test") is None
    assert await keys.key_for(subject, kept_case, create=False, purpose="test") is not None

    rows = {
        str(r["case_id"]): (r["name"], r["email"])
        for r in await admin_pool.fetch(
            "SELECT case_id, name, email FROM intake.case_respondents"
            " WHERE case_id = ANY($1::uuid[])",
            [uuid.UUID(erased_case), uuid.UUID(kept_case)],
        )
    }
    assert rows == {
        erased_case: (ERASED, None),
        kept_case: (respondent["name"], respondent["email"]),
    }
    # The reporter of the erased case is not the subject: their data stays.
    reporter_row = await admin_pool.fetchrow(
        "SELECT reporter_name, description FROM intake.cases WHERE case_id = $1", erased_case
    )
    assert tuple(reporter_row) == (first_reporter["name"], "Ivo shouted at me.")

    async def routing_scrubbed() -> bool:
        left = await admin_pool.fetch(
            "SELECT case_id FROM routing.case_respondents WHERE named_email = $1",
            respondent["email"],
        )
        return [str(r["case_id"]) for r in left] == [kept_case]

    await eventually(routing_scrubbed, "routing to scrub the erased case's respondent only")


async def test_an_access_request_gives_the_person_their_data_and_no_one_elses(
    system, admin_pool: asyncpg.Pool
):
    subject, as_subject = person("Kofi Mensah")
    other, _ = person("Zara Holt")
    their_reporter, as_their_reporter = person("Bea Lund")
    own_text = "Kofi: Zara Holt keeps moving my payroll cut-off without telling me <script>."
    own_case = await raise_case(
        system,
        subject,
        as_subject,
        description=own_text,
        respondents=[{"name": other["name"], "email": other["email"]}],
    )
    reply = await call(
        system,
        "POST",
        f"/api/v1/cases/{own_case}/messages",
        as_subject,
        json={"body": "Kofi: attached nothing, just chasing."},
    )
    assert reply.status_code == 201
    secret = "Bea: Kofi Mensah was rude at the depot, my witness is Carl Ek."
    other_case = await raise_case(
        system,
        their_reporter,
        as_their_reporter,
        description=secret,
        respondents=[{"employee_id": subject["employee_id"], "name": subject["name"]}],
        category="harassment",
    )

    async def acknowledged() -> bool:
        count = await admin_pool.fetchval(
            "SELECT count(*) FROM intake.notifications_sent WHERE recipient_id = $1",
            subject["employee_id"],
        )
        return bool(count)

    await eventually(acknowledged, "the acknowledgement to the subject, seen by intake")

    refused = await call(
        system,
        "POST",
        "/api/v1/privacy/access-requests",
        AGENT,
        json={"employee_id": subject["employee_id"]},
    )
    assert refused.status_code == 403
    placed = await call(
        system,
        "POST",
        "/api/v1/privacy/access-requests",
        OFFICER,
        json={"employee_id": subject["employee_id"], "email": subject["email"]},
    )
    assert placed.status_code == 201, placed.text
    export_url = placed.json()["export_url"]
    as_json = await call(system, "GET", export_url, OFFICER, params={"format": "json"})
    assert as_json.status_code == 200, as_json.text
    assert "attachment" in as_json.headers["content-disposition"]
    export = as_json.json()

    [reported] = export["cases_reported"]
    assert reported["case_id"] == own_case
    # Their own text is theirs, as written (even where it names Zara).
    assert reported["description"] == own_text
    assert [m["body"] for m in reported["messages"]] == ["Kofi: attached nothing, just chasing."]
    assert reported["respondents_named"] == 1
    [named] = export["cases_as_respondent"]
    assert named["case_id"] == other_case and named["category"] == "harassment"
    assert named["named_as"]["name"] == subject["name"]
    assert any(n["template"] for n in export["notifications"])
    text = json.dumps(export)
    # Nobody else's identity or words: not Zara's address, not Bea's name, address or text.
    for foreign in (other["email"], their_reporter["name"], their_reporter["email"], secret):
        assert foreign not in text
    assert "Carl Ek" not in text and "rude at the depot" not in text

    as_html = await call(system, "GET", export_url, OFFICER, params={"format": "html"})
    assert as_html.status_code == 200 and as_html.headers["content-type"].startswith("text/html")
    assert "sandbox" in as_html.headers["content-security-policy"]
    assert "<script>" not in as_html.text and "telling me &lt;script&gt;." in as_html.text
    page = as_html.text
    assert "Kofi: Zara Holt keeps moving my payroll cut-off" in page
    for foreign in (their_reporter["name"], their_reporter["email"], "Carl Ek", other["email"]):
        assert foreign not in page
    bad_format = await call(system, "GET", export_url, OFFICER, params={"format": "pdf"})
    assert bad_format.status_code == 422

    # Every read of the export is audited; the events carry no personal data.
    request_id = placed.json()["request_id"]
    listed = await call(system, "GET", "/api/v1/privacy/access-requests", OFFICER)
    assert listed.status_code == 200, listed.text
    [mine] = [r for r in listed.json()["access_requests"] if r["request_id"] == request_id]
    assert mine["export_available"] is True and mine["export_url"] == export_url

    async def audited() -> list[asyncpg.Record]:
        return await admin_pool.fetch(
            "SELECT event_type, payload FROM audit.log"
            " WHERE event_type LIKE 'privacy.access_%' OR event_type ="
            " 'audit.privacy_request_viewed'"
        )

    rows = await eventually(audited, "the access request in the audit log")
    recorded = {r["event_type"] for r in rows}
    assert {"privacy.access_requested", "privacy.access_fulfilled"} <= recorded

    async def viewed() -> bool:
        count = await admin_pool.fetchval(
            "SELECT count(*) FROM audit.log WHERE event_type = 'audit.privacy_request_viewed'"
            " AND payload->>'request_id' = $1",
            request_id,
        )
        return bool(count >= 2)

    await eventually(viewed, "both downloads audited")
    for row in rows:
        payload = row["payload"] if isinstance(row["payload"], str) else json.dumps(row["payload"])
        for personal in (subject["name"], subject["email"], own_text):
            assert personal not in payload


async def test_a_legal_hold_on_the_person_blocks_the_erasure(system, admin_pool: asyncpg.Pool):
    reporter, as_reporter = person("Ada Brook")
    description = "Ada: my final pay is short by two days."
    case_id = await raise_case(system, reporter, as_reporter, description=description)
    hold = await call(
        system,
        "POST",
        "/api/v1/privacy/legal-holds",
        OFFICER,
        json={"subject": {"email": reporter["email"]}, "reason": "tribunal claim 2026/17"},
    )
    assert hold.status_code == 201, hold.text
    hold_id = hold.json()["hold_id"]

    request = await request_erasure(system, email=reporter["email"])
    blocked = await decide(
        system, request["request_id"], SECOND_OFFICER, decision="approve", reason="asked"
    )
    assert blocked.status_code == 200, blocked.text
    assert blocked.json()["status"] == "blocked"
    assert blocked.json()["blocked_by"] == [hold_id]
    assert blocked.json()["keys_destroyed"] == 0
    row = await admin_pool.fetchrow(
        "SELECT reporter_email, description FROM intake.cases WHERE case_id = $1", case_id
    )
    assert tuple(row) == (reporter["email"], description)

    released = await call(
        system,
        "POST",
        f"/api/v1/privacy/legal-holds/{hold_id}/release",
        OFFICER,
        json={"reason": "claim settled"},
    )
    assert released.status_code == 202, released.text
    again = await request_erasure(system, email=reporter["email"])
    erased = await decide(
        system, again["request_id"], SECOND_OFFICER, decision="approve", reason="hold released"
    )
    assert erased.status_code == 200 and erased.json()["status"] == "erased", erased.text
    row = await admin_pool.fetchrow(
        "SELECT reporter_email, description FROM intake.cases WHERE case_id = $1", case_id
    )
    assert tuple(row) == (None, ERASED)


async def test_an_erased_conference_participant_is_gone_from_intake_and_routing(
    system, admin_pool: asyncpg.Pool
):
    from tests.e2e.test_input_limits import injury_body, plan_body

    worker, as_worker = person("Wes Ortiz")
    claim = {**injury_body(), "reporter": worker}
    raised = await call(system, "POST", "/api/v1/cases", as_worker, json=claim)
    assert raised.status_code == 202, raised.text
    case_id = raised.json()["case_id"]

    async def assigned() -> bool:
        view = (await call(system, "GET", f"/api/v1/cases/{case_id}", MANAGER)).json()
        return view.get("status") == "assigned"

    await eventually(assigned, "the injury claim assigned")
    delegate = {
        "role": "union_representative",
        "name": "Imogen Lark",
        "email": f"lark-{uuid.uuid4().hex[:6]}@union.example.com",
    }
    plan = plan_body()
    plan["participants"] = [
        {"role": "worker", **worker},
        {"role": "employer_representative", "name": "Dana Wells",
         "email": "dana.wells@example.com"},
        {"role": "case_manager", "name": "Sofia Rossi", "email": "sofia.rossi@example.com",
         "employee_id": "A-4001"},
        delegate,
    ]  # fmt: skip
    planned = await call(system, "POST", f"/api/v1/cases/{case_id}/conferences", MANAGER, json=plan)
    assert planned.status_code == 202, planned.text
    conference_id = planned.json()["conference_id"]

    async def planned_view() -> dict[str, Any] | None:
        url = f"/api/v1/cases/{case_id}/conferences/{conference_id}"
        view = (await call(system, "GET", url, MANAGER)).json()
        return view if view.get("status") in ("planned", "refused") else None

    view = await eventually(planned_view, "routing to plan the conference")
    assert view["status"] == "planned", view
    request = await request_erasure(system, email=delegate["email"])
    decided = await decide(
        system, request["request_id"], SECOND_OFFICER, decision="approve", reason="asked"
    )
    assert decided.status_code == 200 and decided.json()["erased_case_ids"] == [case_id]

    def by_role(participants: Any) -> dict[str, tuple[str, str]]:
        listed = json.loads(participants) if isinstance(participants, str) else participants
        return {p["role"]: (p["name"], p["email"]) for p in listed}

    staff_view = await admin_pool.fetchval(
        "SELECT participants FROM intake.conferences WHERE conference_id = $1", conference_id
    )
    assert by_role(staff_view)["union_representative"] == (ERASED, ERASED)
    assert by_role(staff_view)["worker"] == (worker["name"], worker["email"])

    async def routing_scrubbed() -> bool:
        participants = await admin_pool.fetchval(
            "SELECT participants FROM routing.conferences WHERE conference_id = $1", conference_id
        )
        return by_role(participants)["union_representative"] == (ERASED, ERASED)

    await eventually(routing_scrubbed, "routing to scrub the practitioner")
    participants = await admin_pool.fetchval(
        "SELECT participants FROM routing.conferences WHERE conference_id = $1", conference_id
    )
    assert by_role(participants)["worker"] == (worker["name"], worker["email"])
    # The conference page still works for staff after the scrub.
    page = await call(
        system, "GET", f"/api/v1/cases/{case_id}/conferences/{conference_id}", MANAGER
    )
    assert page.status_code == 200, page.text
    assert delegate["email"] not in page.text and "Lark" not in page.text


async def test_erasing_a_reporter_takes_their_files_notes_on_their_case_and_their_history_name(
    system, admin_pool: asyncpg.Pool
):
    """What belongs to the person (README "Data-subject rights"): the file they sent with
    their report, the staff notes on the case they reported (sealed as theirs on the
    bus), their name on their own history entries. What others wrote and is not sealed
    as theirs stays: the document staff added, staff's status reason, who acted."""
    from email.message import EmailMessage
    from email.policy import SMTP

    from services.intake.config import DEV_INBOUND_EMAIL_TOKEN
    from tests.e2e.test_documents import PDF

    address = f"femi-{uuid.uuid4().hex[:8]}@example.com"
    mail = EmailMessage()
    mail["From"] = f"Femi Adeyemi <{address}>"
    mail["To"] = "hr@example.com"
    mail["Subject"] = "Overtime missing, Femi"
    mail["Message-ID"] = f"<{uuid.uuid4()}@mail.example.com>"
    mail["Date"] = "Sun, 29 Nov 2026 09:00:00 +0000"
    mail.set_content("Femi here: my October payslip is attached, the overtime is missing.")
    mail.add_attachment(
        PDF, maintype="application", subtype="pdf", filename="femi-adeyemi-payslip.pdf"
    )
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=15) as client:
        mailed = await client.post(
            "/api/v1/inbound-email",
            content=mail.as_bytes(policy=SMTP),
            headers={
                "Content-Type": "message/rfc822",
                "X-Inbound-Email-Token": DEV_INBOUND_EMAIL_TOKEN,
            },
        )
    assert mailed.status_code == 201, mailed.text
    case_id = mailed.json()["case_id"]

    async def routed() -> bool:
        view = (await call(system, "GET", f"/api/v1/cases/{case_id}", MANAGER)).json()
        return view["status"] not in ("new",)

    await eventually(routed, "the emailed case routed")
    note = "Called Femi: he says his manager Ola Berg signed the timesheet."
    noted = await call(
        system, "POST", f"/api/v1/cases/{case_id}/notes", MANAGER, json={"body": note}
    )
    assert noted.status_code == 202, noted.text
    staff_file = await call(
        system,
        "POST",
        f"/api/v1/cases/{case_id}/documents",
        MANAGER,
        files=[("files", ("payroll-run-october.pdf", PDF, "application/pdf"))],
    )
    assert staff_file.status_code == 201, staff_file.text
    waiting = await call(
        system,
        "POST",
        f"/api/v1/cases/{case_id}/status",
        MANAGER,
        json={"to_status": "in_progress", "reason": "checking the payroll run"},
    )
    assert waiting.status_code == 202, waiting.text

    async def history() -> list[dict[str, Any]]:
        answer = await call(system, "GET", f"/api/v1/cases/{case_id}/history", MANAGER)
        assert answer.status_code == 200, answer.text
        entries: list[dict[str, Any]] = answer.json()["entries"]
        return entries

    async def note_in_history() -> bool:
        return any("status" in json.dumps(e) for e in await history()) and bool(
            await admin_pool.fetchval(
                "SELECT count(*) FROM intake.case_notes WHERE case_id = $1", uuid.UUID(case_id)
            )
        )

    await eventually(note_in_history, "the note and status change recorded")
    assert "Femi Adeyemi" in json.dumps(await history())

    request = await request_erasure(system, email=address)
    decided = await decide(
        system, request["request_id"], SECOND_OFFICER, decision="approve", reason="asked"
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["erased_case_ids"] == [case_id]

    files = {
        r["uploaded_by"]: dict(r)
        for r in await admin_pool.fetch(
            "SELECT uploaded_by, filename, description, sha256, length(content) AS size"
            " FROM intake.attachments WHERE case_id = $1",
            uuid.UUID(case_id),
        )
    }
    theirs, staffs = files[None], files["M-9002"]
    assert (theirs["filename"], theirs["sha256"], theirs["size"]) == (ERASED, ERASED, 0)
    assert staffs["filename"] == "payroll-run-october.pdf" and staffs["size"] == len(PDF)
    notes = await admin_pool.fetch(
        "SELECT body, author_id FROM intake.case_notes WHERE case_id = $1", uuid.UUID(case_id)
    )
    assert [(n["body"], n["author_id"]) for n in notes] == [(ERASED, "M-9002")]
    # Through the doors staff use: the case, its documents, its history.
    view = await call(system, "GET", f"/api/v1/cases/{case_id}", MANAGER)
    documents = await call(system, "GET", f"/api/v1/cases/{case_id}/documents", MANAGER)
    entries = await history()
    seen = view.text + documents.text + json.dumps(entries)
    for gone in ("Femi", "Adeyemi", address, "Ola Berg", "femi-adeyemi-payslip"):
        assert gone not in seen, gone
    assert "payroll-run-october.pdf" in documents.text
    assert "checking the payroll run" in json.dumps(entries)  # staff's reason stays
    kinds = [e["kind"] for e in entries]
    assert "submitted" in kinds and "status_changed" in kinds


async def test_a_reporter_whose_employee_id_has_spaces_is_sealed_and_routed(system):
    """Employee ids are the directory's: one with a space and '<' (the OpenAPI fuzzer found
    it) is sealed into a token routing accepts, so the case is routed, not dead-lettered."""
    employee_id = f"E {uuid.uuid4().int % 10**6:06d} <night shift>"
    reporter = {"employee_id": employee_id, "name": "Ola Nordmann", "email": "ola@example.com"}
    as_reporter = auth_headers(f"u-{uuid.uuid4().hex[:6]}", "employee", employee_id=employee_id)
    case_id = await raise_case(system, reporter, as_reporter, description="My payslip is late.")
    view = (await call(system, "GET", f"/api/v1/cases/{case_id}", as_reporter)).json()
    assert view["status"] != "new" and view["subject"].startswith("About my pay")
