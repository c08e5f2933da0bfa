"""The auditors' console on the real database: the portal's session cookie (and only it),
revocation by intake's `portal.session_ended`, the pages, their reads in the access log,
and the HTML case-file export with the texts the events carry."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection
from fastapi import FastAPI

from services.audit.adapters.sql import append_batch
from services.audit.app import SPEC
from services.audit.entrypoints.console import router
from shared.auth import PORTAL_AUDIENCE, PORTAL_SESSION_COOKIE, TokenService
from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    CaseAssigned,
    CaseMessageReceived,
    CaseNoteAdded,
    CaseRouted,
    CaseStatusChanged,
    CaseSubmitted,
    Person,
    PortalSessionEnded,
    Reporter,
    make_event,
)
from shared.service import Runtime, start_runtime, stop_runtime
from shared.settings import DEV_JWT_SECRET, Settings
from tests.support.bus import declare_topology

TOKENS = TokenService(DEV_JWT_SECRET)
START = datetime(2026, 4, 7, 9, 0, tzinfo=UTC)
REFERENCE = f"HR-2098-{random.randrange(10**6):06d}"
DESCRIPTION = "The night-shift lead mocks my accent in front of the team."
NOTE = "Interviewed two witnesses; both confirm the remarks."
MESSAGE = "It happened again on Tuesday."
PORTAL = "http://portal.test"


def portal_cookie(subject: str, *roles: str, session_id: str | None = None) -> str:
    return TOKENS.mint(
        subject, roles, audience=PORTAL_AUDIENCE, session_id=session_id or str(uuid4())
    )


def story(case_id: UUID) -> list[Envelope]:
    def at(minutes: int) -> datetime:
        return START + timedelta(minutes=minutes)

    employee, routing = Actor(type="employee", id="E-9"), Actor(type="service", id="routing")
    submitted = make_event(
        CaseSubmitted(
            reference=REFERENCE, channel="portal", subject="Remarks about my accent",
            description=DESCRIPTION, reporter=Reporter(
                employee_id="E-9", name="Noor Haddad", email="noor@example.com"
            ), submitted_at=at(0),
        ),
        producer="intake", actor=employee, case_id=case_id, occurred_at=at(0),
    )  # fmt: skip
    routed = make_event(
        CaseRouted(
            reference=REFERENCE, category="harassment", category_source="rules",
            matched_terms=["mock"], sensitivity="restricted", priority="P2",
            priority_reasons=[], first_response_due=at(60), resolution_due=at(600),
            policy_hash="p" * 8,
        ),
        producer="routing", actor=routing, case_id=case_id, caused_by=submitted,
        occurred_at=at(1),
    )  # fmt: skip
    assigned = make_event(
        CaseAssigned(
            reference=REFERENCE, team="investigations",
            owner=Person(id="A-3001", name="Helen Carter", email="helen@example.com"),
            strategy="round_robin", priority="P2", sensitivity="restricted",
            category="harassment", first_response_due=at(60),
        ),
        producer="routing", actor=routing, case_id=case_id, caused_by=submitted,
        occurred_at=at(2),
    )  # fmt: skip
    note = make_event(
        CaseNoteAdded(reference=REFERENCE, note_id=uuid4(), body=NOTE),
        producer="intake", actor=Actor(type="agent", id="A-3001"), case_id=case_id,
        occurred_at=at(3),
    )  # fmt: skip
    status = make_event(
        CaseStatusChanged(
            reference=REFERENCE, from_status="assigned", to_status="in_progress"
        ),
        producer="routing", actor=routing, case_id=case_id, occurred_at=at(4),
    )  # fmt: skip
    message = make_event(
        CaseMessageReceived(
            reference=REFERENCE, channel="portal", sender_role="reporter", body=MESSAGE,
            received_at=at(5),
        ),
        producer="intake", actor=employee, case_id=case_id, occurred_at=at(5),
    )  # fmt: skip
    return [submitted, routed, assigned, note, status, message]


def session_ended(session_id: str, *, producer: str = "intake") -> Envelope:
    return make_event(
        PortalSessionEnded(
            session_id=UUID(session_id), subject="AU-1001", reason="signed_out", ended_at=utcnow()
        ),
        producer=producer,
        actor=Actor(type="agent", id="AU-1001"),
        case_id=None,
    )


@pytest.fixture(scope="module")
async def runtime(
    database_url: str, rabbitmq_url: str, amqp: AbstractRobustConnection
) -> AsyncIterator[Runtime]:
    await declare_topology(amqp)
    settings = Settings(database_url=database_url, rabbitmq_url=rabbitmq_url)
    rt = await start_runtime(SPEC, settings)
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
        headers={"User-Agent": "console-test/1.0"},
    ) as c:
        yield c


@pytest.fixture(scope="module")
async def case_id(admin_pool: asyncpg.Pool) -> UUID:
    case = uuid4()
    async with admin_pool.acquire() as conn:
        await append_batch(conn, story(case), utcnow())
    return case


@pytest.fixture(autouse=True)
def portal_address(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from shared.settings import get_settings

    monkeypatch.setenv("PORTAL_BASE_URL", PORTAL)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def as_(token: str) -> dict[str, str]:
    return {"Cookie": f"{PORTAL_SESSION_COOKIE}={token}"}


async def _reads(admin_pool: asyncpg.Pool, case: UUID) -> list[dict[str, object]]:
    rows = await admin_pool.fetch(
        "SELECT event_type, payload::text AS payload FROM audit.log"
        " WHERE case_id = $1 AND event_type LIKE 'audit.%' ORDER BY seq",
        case,
    )
    return [{"type": r["event_type"], **json.loads(r["payload"])} for r in rows]


async def test_signed_out_visitors_go_to_the_portal_sign_in_and_come_back(
    client: httpx.AsyncClient, case_id: UUID
) -> None:
    page = f"/audit/console/cases/{case_id}?at=2026-04-07T09:02:30"
    response = await client.get(page)
    assert response.status_code == 303
    target = urlsplit(response.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{PORTAL}/portal/sign-in"
    assert parse_qs(target.query)["next"] == [
        f"/portal/audit-console/cases/{case_id}?at=2026-04-07T09:02:30"
    ]


async def test_only_the_portal_session_cookie_of_a_live_session_signs_in(
    client: httpx.AsyncClient, admin_pool: asyncpg.Pool, case_id: UUID
) -> None:
    url = f"/audit/console/cases/{case_id}"
    before = len(await _reads(admin_pool, case_id))
    auditor = portal_cookie("AU-1001", "auditor")
    # A portal token in an Authorization header: not the console's door.
    bearer = await client.get(url, headers={"Authorization": f"Bearer {auditor}"})
    assert bearer.status_code == 303
    # An API token (other audience), a token without a session id, a forged signature.
    api_token = TOKENS.mint("AU-1001", ["auditor"])
    no_session = TOKENS.mint("AU-1001", ["auditor"], audience=PORTAL_AUDIENCE)
    forged = TokenService("x" * 40).mint(
        "AU-1001", ["auditor"], audience=PORTAL_AUDIENCE, session_id=str(uuid4())
    )
    for token in (api_token, no_session, forged, "garbage"):
        assert (await client.get(url, headers=as_(token))).status_code == 303
    # Signed in without the auditor role: refused, and nothing shown or recorded.
    for roles in (("employee",), ("hr_agent", "hr_manager"), ("admin",), ("investigator",)):
        denied = await client.get(url, headers=as_(portal_cookie("u-1", *roles)))
        assert denied.status_code == 403, roles
        assert DESCRIPTION not in denied.text and "auditors only" in denied.text
    assert len(await _reads(admin_pool, case_id)) == before
    assert (await client.get(url, headers=as_(auditor))).status_code == 200


async def test_a_session_intake_announced_as_ended_is_refused(
    client: httpx.AsyncClient, admin_pool: asyncpg.Pool, case_id: UUID
) -> None:
    ended, forged_end = str(uuid4()), str(uuid4())
    url = f"/audit/console/cases/{case_id}"
    for sid in (ended, forged_end):
        ok = await client.get(url, headers=as_(portal_cookie("AU-1001", "auditor", session_id=sid)))
        assert ok.status_code == 200
    async with admin_pool.acquire() as conn:
        # Only intake's announcement counts; another producer's claim changes nothing.
        await append_batch(
            conn, [session_ended(ended), session_ended(forged_end, producer="routing")], utcnow()
        )
    refused = await client.get(
        url, headers=as_(portal_cookie("AU-1001", "auditor", session_id=ended))
    )
    assert refused.status_code == 303 and "/portal/sign-in" in refused.headers["location"]
    still = await client.get(
        url, headers=as_(portal_cookie("AU-1001", "auditor", session_id=forged_end))
    )
    assert still.status_code == 200


async def test_find_a_case_by_reference_or_id(client: httpx.AsyncClient, case_id: UUID) -> None:
    auditor = as_(portal_cookie("AU-1001", "auditor"))
    typed = " " + REFERENCE.lower().replace("-2098", "- 2098") + " "
    for query in (typed, str(case_id)):
        found = await client.get("/audit/console/", params={"q": query}, headers=auditor)
        assert found.status_code == 303, query
        assert found.headers["location"] == f"/audit/console/cases/{case_id}"
    for unknown in ("HR-2098-XXXXXX", str(uuid4())):
        missing = await client.get("/audit/console/", params={"q": unknown}, headers=auditor)
        assert missing.status_code == 404 and "is in the audit log" in missing.text
    home = await client.get("/audit/console/", headers=auditor)
    assert home.status_code == 200 and REFERENCE in home.text


async def test_case_page_shows_timeline_state_at_an_instant_access_and_verification(
    client: httpx.AsyncClient, admin_pool: asyncpg.Pool, case_id: UUID
) -> None:
    auditor = as_(portal_cookie("AU-1001", "auditor", "employee"))
    page = await client.get(
        f"/audit/console/cases/{case_id}",
        params={"at": "2026-04-07T09:03:30"},
        headers={**auditor, "X-Forwarded-For": "198.51.100.77"},
    )
    assert page.status_code == 200, page.text
    html = page.text
    assert page.headers["cache-control"] == "no-store"
    assert f"Case {REFERENCE}" in html
    for event_type in ("case.submitted", "case.routed", "case.assigned", "case.note_added",
                       "case.status_changed", "case.message_received"):  # fmt: skip
        assert f"<code>{event_type}</code>" in html
    # Texts, and names the log itself gives for ids.
    assert DESCRIPTION in html and NOTE in html and MESSAGE in html
    assert "Helen Carter (A-3001)" in html
    # Now: in progress; at 09:03:30 (after the note, before the status change): assigned.
    now, then = html.split('<div id="state-at">')
    assert 'data-field="status">in_progress<' in now
    assert 'data-field="status">assigned<' in then
    assert "At 2026-04-07T09:03:30.000000Z" in then
    assert "Verified</span>: the chain is intact from entry 1" in html
    assert "Every event of this case is within the verified range." in html
    # The read is recorded before it is shown, and listed in the page's own access log.
    last = (await _reads(admin_pool, case_id))[-1]
    assert last["type"] == "audit.case_viewed"
    assert last["viewer"] == "AU-1001" and last["view"] == "console"
    assert last["as_of"] == "2026-04-07T09:03:30.000000Z"
    assert last["client_ip"] == "203.0.113.9" and last["forwarded_for"] == "198.51.100.77"
    assert "read (console, as of 2026-04-07T09:03:30.000000Z) via audit" in html
    assert "console-test/1.0" in html


async def test_a_bad_instant_or_case_id_is_a_page_not_a_crash(
    client: httpx.AsyncClient, case_id: UUID
) -> None:
    auditor = as_(portal_cookie("AU-1001", "auditor"))
    bad = await client.get(
        f"/audit/console/cases/{case_id}", params={"at": "yesterday"}, headers=auditor
    )
    assert bad.status_code == 422 and "`at`" in bad.text
    far = await client.get(
        f"/audit/console/cases/{case_id}", params={"at": "9999-12-31T23:59:59-23:00"},
        headers=auditor,
    )  # fmt: skip
    assert far.status_code == 422
    assert (await client.get("/audit/console/cases/not-a-uuid", headers=auditor)).status_code == 404
    unknown = await client.get(f"/audit/console/cases/{uuid4()}", headers=auditor)
    assert unknown.status_code == 404


async def test_export_downloads_the_case_file_with_its_texts_and_is_recorded(
    client: httpx.AsyncClient, admin_pool: asyncpg.Pool, case_id: UUID
) -> None:
    token = portal_cookie("AU-1001", "auditor")
    url = f"/audit/console/cases/{case_id}/export"
    page = await client.get(f"/audit/console/cases/{case_id}", headers=as_(token))
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    # Without the page's token, with another session's, or from another site: refused.
    other = portal_cookie("AU-1001", "auditor")
    other_csrf = (await client.get(f"/audit/console/cases/{case_id}", headers=as_(other))).text
    other_csrf = other_csrf.split('name="csrf_token" value="')[1].split('"')[0]
    before = len(await _reads(admin_pool, case_id))
    assert (await client.post(url, headers=as_(token))).status_code == 403
    assert (
        await client.post(url, headers=as_(token), data={"csrf_token": other_csrf})
    ).status_code == 403
    cross = await client.post(
        url, headers={**as_(token), "Origin": "http://evil.test"}, data={"csrf_token": csrf}
    )
    assert cross.status_code == 403
    exported = await client.post(
        url, headers={**as_(token), "Origin": "http://audit"}, data={"csrf_token": csrf}
    )
    assert exported.status_code == 200, exported.text
    disposition = exported.headers["content-disposition"]
    assert disposition == f'attachment; filename="case-file-{REFERENCE}.html"'
    html = exported.text
    assert DESCRIPTION in html and NOTE in html and MESSAGE in html
    reads = await _reads(admin_pool, case_id)
    # Refused attempts recorded nothing; the export is recorded with the file's hash.
    assert [r["type"] for r in reads[before:]] == ["audit.export_created"]
    assert reads[-1]["subject"] == "AU-1001"
    assert reads[-1]["export_sha256"] == exported.headers["x-case-file-sha256"]
