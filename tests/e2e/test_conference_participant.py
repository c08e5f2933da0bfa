"""The conference participant's page behind a signed link, and the worker's own view.

Through all four processes on the real broker and Postgres, in Debian's Chromium: staff
plan, change, hold, summarise and close conferences through intake's doors; routing decides
under its conference rules and intake's views follow its decisions. A link is minted as
notifications mints it (shared.participant_links). The external participant needs no
account, sees that one conference and nothing else of the case, acknowledges and objects;
the worker signs in and gives consent and acknowledges on their case page.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from shared.participant_links import mint_participant_link
from shared.settings import DEV_JWT_SECRET
from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, PNG_MAGIC, needs_chromium
from tests.support.auth import auth_headers
from tests.support.bus import capture_events
from tests.support.conferences import conference_day_has_come
from tests.support.system import running_system

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SAM = {"employee_id": "E-7001", "name": "Sam Rivera", "email": "sam.rivera@example.com"}
AS_SAM = auth_headers("u-sam", "employee", employee_id="E-7001", email=SAM["email"])
AS_ALEX = auth_headers("u-alex", "employee", employee_id="E-7002")
AS_MANAGER = auth_headers("M-9002", "hr_manager", employee_id="M-9002")
AS_SOFIA = auth_headers("A-4001", "hr_agent", employee_id="A-4001")
DESCRIPTION = "SECRET-DESCRIPTION: I fell from the loading dock ladder; my back is injured."
SYDNEY = ZoneInfo("Australia/Sydney")
# The people a conference may name (routing requires the worker, an employer
# representative and the case manager); keyed by a short name for the tests.
PEOPLE: dict[str, dict[str, str]] = {
    "worker": {"role": "worker", "name": "Sam Rivera", "email": SAM["email"],
               "employee_id": "E-7001"},
    "doctor": {"role": "treating_doctor", "name": "Dr Alice Ng",
               "email": "alice.ng@clinic.example", "organisation": "Harbour Medical"},
    "employer": {"role": "employer_representative", "name": "Omar Haddad",
                 "email": "omar.haddad@example.com", "employee_id": "E-5005"},
    "manager": {"role": "case_manager", "name": "Sofia Rossi",
                "email": "sofia.rossi@example.com", "employee_id": "A-4001"},
}  # fmt: skip
EVERYONE = ("worker", "doctor", "employer", "manager")


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "conference-participant") as s:
        yield s


@pytest.fixture(scope="module")
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


async def eventually(check: Any, what: str, timeout: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def sydney_weekday(days: int) -> date:
    """The first weekday at least `days` days from today in Sydney (the team's calendar)."""
    day = datetime.now(SYDNEY).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def plan_body(purpose: str, who: Iterable[str]) -> dict[str, Any]:
    """A video conference at 10:00 in Sydney about three weeks ahead: well past routing's
    notice rule (5 working days), shown in that zone whatever the server's."""
    return {
        "purpose": purpose,
        "scheduled_for": datetime.combine(sydney_weekday(21), time(10, 0), SYDNEY).isoformat(),
        "duration_minutes": 90,
        "time_zone": "Australia/Sydney",
        "video_link": "https://meet.example.com/conf-4711",
        "agenda": ["Medical update from the treating doctor", "Suitable duties at the depot"],
        "desired_outcomes": [
            {
                "topic": "Future employment",
                "proposals": [{"by": "worker", "text": "Light duties, 4 hours"}],
            },
            {"topic": "Ongoing treatment"},
        ],
        "participants": [PEOPLE[key] for key in who],
    }


async def raise_case(system: Any) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
        response = await client.post(
            "/api/v1/cases",
            json={
                "subject": "Back injury at the depot",
                "description": DESCRIPTION,
                "category": "workplace_injury",
                "reporter": SAM,
                "injury": {"date_of_injury": date.today().isoformat(), "serious": True},
            },
            headers=AS_SAM,
        )
        assert response.status_code == 202, response.text
        case_id: str = response.json()["case_id"]

        async def assigned() -> bool:
            view = (await client.get(f"/api/v1/cases/{case_id}", headers=AS_SAM)).json()
            return bool(view.get("status") == "assigned")

        await eventually(assigned, "the case routed to injury management")
    return case_id, response.json()["reference"]


async def staff_post(system: Any, path: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
        return await client.post(path, json=body, headers=AS_SOFIA)


async def decided(captured: Any, event_type: str, conference_id: UUID) -> dict[str, Any]:
    """Routing's decision `event_type` about the conference, as captured on the bus; a
    refusal (none is expected here) fails the test with routing's reason."""
    found: dict[str, Any] = await captured.wait(
        lambda e: (
            e["producer"] == "routing"
            and (
                e["event_type"] == "case.request_refused"
                or (
                    e["event_type"] == event_type
                    and e["payload"]["conference_id"] == str(conference_id)
                )
            )
        )
    )
    assert found["event_type"] == event_type, found["payload"]
    return found


async def plan_conference(
    system: Any, captured: Any, case_id: str, purpose: str, who: Iterable[str] = EVERYONE
) -> tuple[UUID, dict[str, UUID]]:
    """Plan through intake's door and wait for routing's conference.planned; the
    conference id and each person's participant id (by their key in PEOPLE)."""
    who = tuple(who)
    accepted = await staff_post(
        system, f"/api/v1/cases/{case_id}/conferences", plan_body(purpose, who)
    )
    assert accepted.status_code == 202, accepted.text
    conference_id = UUID(accepted.json()["conference_id"])
    planned = await decided(captured, "conference.planned", conference_id)
    by_email = {p["email"]: UUID(p["participant_id"]) for p in planned["payload"]["participants"]}
    return conference_id, {key: by_email[PEOPLE[key]["email"]] for key in who}


async def hold(
    system: Any,
    captured: Any,
    case_id: str,
    conference_id: UUID,
    ids: dict[str, UUID],
    absent: Iterable[str] = (),
) -> None:
    """Record the video conference held now, each attendee having stated their view:
    routing accepts a record made after planning, not in the future and not before the
    scheduled start (less an hour), so the conference's day, days ahead, is first made to
    have come in routing's table and "now" is recorded."""
    await conference_day_has_come(system.database_url, conference_id)
    attendance = [
        {"participant_id": str(pid), "attended": key not in absent}
        | ({} if key in absent else {"view_stated": True})
        for key, pid in ids.items()
    ]
    held = await staff_post(
        system,
        f"/api/v1/cases/{case_id}/conferences/{conference_id}/attendance",
        {"held_at": datetime.now(UTC).isoformat(), "attendance": attendance},
    )
    assert held.status_code == 202, held.text
    await decided(captured, "conference.held", conference_id)


async def summarise(
    system: Any, captured: Any, case_id: str, conference_id: UUID, body: dict[str, Any]
) -> list[str]:
    """Record the summary and wait for routing's conference.summary_recorded; the ids
    intake gave the actions."""
    written = await staff_post(
        system, f"/api/v1/cases/{case_id}/conferences/{conference_id}/summary", body
    )
    assert written.status_code == 202, written.text
    await decided(captured, "conference.summary_recorded", conference_id)
    action_ids: list[str] = written.json()["action_ids"]
    return action_ids


async def view_row(pool: asyncpg.Pool, conference_id: UUID, participant_id: UUID) -> Any:
    return await pool.fetchrow(
        "SELECT * FROM intake.conference_participant_views"
        " WHERE conference_id = $1 AND participant_id = $2",
        conference_id,
        participant_id,
    )


def keep_screenshot(shot: Path) -> None:
    """Check the screenshot; the README's copies are refreshed on request only, so a test
    run leaves the checkout as it was:
    HRCASE_UPDATE_SCREENSHOTS=1 pytest tests/e2e/test_conference_participant.py"""
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    if os.environ.get("HRCASE_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / shot.name).write_bytes(data)


def link(case_id: str, conference_id: UUID, participant_id: UUID, days: float = 30) -> str:
    token = mint_participant_link(
        DEV_JWT_SECRET,
        case_id=UUID(case_id),
        conference_id=conference_id,
        participant_id=participant_id,
        expires_at=datetime.now(UTC) + timedelta(days=days),
    )
    return f"/portal/conference-links/{token}"


async def consent_as_worker(system: Any, case_id: str) -> None:
    """The worker's practitioner_involvement consent, given through their own door."""
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
        consent = await client.post(
            f"/api/v1/cases/{case_id}/consents",
            json={"consent": "practitioner_involvement", "given_by": "worker"},
            headers=AS_SAM,
        )
    assert consent.status_code == 202, consent.text


@needs_chromium
async def test_the_external_participant_sees_only_that_conference_and_responds(
    system, browser, amqp, admin_pool, tmp_path
):
    case_id, _ = await raise_case(system)
    async with capture_events(amqp) as captured:
        conference_id, cast = await plan_conference(
            system, captured, case_id, "Agree a return to work after the back injury"
        )
        other_conference, others = await plan_conference(
            system,
            captured,
            case_id,
            "A second conference, without the doctor",
            ("worker", "employer", "manager"),
        )
        # The doctor waits for the worker's consent; once given, routing invites them.
        await consent_as_worker(system, case_id)
        invited = await decided(captured, "conference.participant_invited", conference_id)
        assert invited["payload"]["participant_id"] == str(cast["doctor"])

        async def doctor_invited() -> bool:
            row = await view_row(admin_pool, conference_id, cast["doctor"])
            return row is not None and row["invited"]

        await eventually(doctor_invited, "the doctor's view projected, invited")
        await eventually(
            lambda: view_row(admin_pool, other_conference, others["employer"]),
            "the second conference projected",
        )
        doctor_url = link(case_id, conference_id, cast["doctor"])
        context = await browser.new_context(
            base_url=system.url("intake"), java_script_enabled=False
        )
        page = await context.new_page()
        response = await page.goto(doctor_url)
        assert response is not None and response.status == 200
        headers = response.headers
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"
        assert "noindex" in headers["x-robots-tag"]
        assert "set-cookie" not in headers
        body = await page.content()
        assert "Agree a return to work after the back injury" in body
        assert "Suitable duties at the depot" in body
        assert "Dr Alice Ng, Treating doctor" in body
        assert "Omar Haddad, Employer representative" in body
        # In the plan's time zone (AEDT/AEST), not UTC.
        when = await page.locator(".conference-when").inner_text()
        assert re.search(r", 10:00 AE[DS]T to 11:30 \(Australia/Sydney\)", when), when
        assert "SECRET-DESCRIPTION" not in body and "alice.ng@clinic.example" not in body
        # Nothing to acknowledge before the summary; no link into the portal.
        assert await page.get_by_role("button", name="I acknowledge receipt").count() == 0
        assert await page.locator('a[href^="/"]').count() == 0

        # The read is audited as the participant's link, not as a person with an account.
        viewed = await captured.wait(
            lambda e: (
                e["event_type"] == "audit.case_viewed"
                and e["payload"]["viewer"] == f"participant-link:{cast['doctor']}"
            )
        )
        assert viewed["actor"] == {
            "type": "service",
            "id": f"participant-link:{cast['doctor']}",
        }
        assert viewed["case_id"] == case_id

        # Held (everyone had their say on the video call), then the written summary.
        await hold(system, captured, case_id, conference_id, cast)
        await summarise(
            system,
            captured,
            case_id,
            conference_id,
            {
                "agreed_points": ["Sam returns on light duties, four hours a day, from Monday"],
                "actions": [
                    {
                        "description": "Write the suitable duties plan",
                        "owner_participant_id": str(cast["doctor"]),
                        "due_on": sydney_weekday(14).isoformat(),
                    }
                ],
                "objections": [
                    {
                        "participant_id": str(cast["employer"]),
                        "text": "Four hours is too few for the roster",
                    }
                ],
            },
        )

        async def summarised() -> bool:
            row = await view_row(admin_pool, conference_id, cast["doctor"])
            return row is not None and row["status"] == "summarised"

        await eventually(summarised, "the summary projected")
        await page.goto(doctor_url)
        body = await page.content()
        assert "Sam returns on light duties, four hours a day, from Monday" in body
        actions = await page.locator(".summary-actions").inner_text()
        assert "Write the suitable duties plan" in actions and "Dr Alice Ng" in actions
        assert "Open" in actions
        objections = await page.locator(".summary-objections").inner_text()
        assert "Omar Haddad: Four hours is too few for the roster" in objections
        shot = tmp_path / "conference-participant-page.png"
        await page.screenshot(path=str(shot), full_page=True)
        keep_screenshot(shot)

        # Acknowledge: the event on the bus, the page says so; twice is still once.
        await page.get_by_role("button", name="I acknowledge receipt").click()
        await page.wait_for_url("**?done=acknowledged")
        assert "You acknowledged receipt on" in await page.locator("#acknowledged").inner_text()
        acknowledged = await captured.wait(
            lambda e: (
                e["event_type"] == "conference.acknowledged"
                and e["payload"]["participant_id"] == str(cast["doctor"])
            )
        )
        assert acknowledged["payload"]["role"] == "treating_doctor"
        assert acknowledged["payload"]["conference_id"] == str(conference_id)
        assert acknowledged["actor"]["id"] == f"participant-link:{cast['doctor']}"
        async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
            again = await client.post(doctor_url + "/acknowledgement")
        assert again.status_code == 303
        recorded = await admin_pool.fetchval(
            "SELECT count(*) FROM intake.case_history WHERE event_type = 'conference.acknowledged'"
            " AND summary->>'participant_id' = $1",
            str(cast["doctor"]),
        )
        assert recorded == 1

        # An objection: empty is refused on the page (422), then sent.
        await page.get_by_role("button", name="Raise an objection").click()
        assert (
            "Write your objection before sending it."
            in await page.get_by_role("alert").inner_text()
        )
        await page.get_by_label("Raise an objection").fill(
            "Point 1 omits my restriction on lifting"
        )
        await page.get_by_role("button", name="Raise an objection").click()
        await page.wait_for_url("**?done=objection")
        objected = await captured.wait(
            lambda e: (
                e["event_type"] == "conference.objection_raised"
                and e["payload"]["participant_id"] == str(cast["doctor"])
            )
        )
        assert objected["payload"]["objection"] == "Point 1 omits my restriction on lifting"
        assert "Point 1 omits my restriction" in await page.locator("#your-objection").inner_text()
        shot = tmp_path / "conference-participant-acknowledged.png"
        await page.screenshot(path=str(shot), full_page=True)
        keep_screenshot(shot)
        await context.close()

        # --- The same token opens nothing else ------------------------------------------
        token = doctor_url.rsplit("/", 1)[1]
        async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
            as_bearer = {"Authorization": f"Bearer {token}"}
            api = await client.get(f"/api/v1/cases/{case_id}", headers=as_bearer)
            assert api.status_code == 401
            listing = await client.get("/api/v1/cases", headers=as_bearer)
            assert listing.status_code == 401
            portal = await client.get(f"/portal/cases/{case_id}", headers=as_bearer)
            assert portal.status_code == 303 and "/portal/sign-in" in portal.headers["location"]
            assert "SECRET-DESCRIPTION" not in portal.text

            # Tampered: one character of the signature changed.
            head, _, signature = token.rpartition(".")
            forged = head + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
            tampered = await client.get(f"/portal/conference-links/{forged}")
            assert tampered.status_code == 403
            assert "This link is not valid" in tampered.text
            assert "Traceback" not in tampered.text and "SECRET-DESCRIPTION" not in tampered.text

            # The doctor's id on another conference of the case (one they are not on), or
            # on another case.
            elsewhere = await client.get(link(case_id, other_conference, cast["doctor"]))
            assert elsewhere.status_code == 404
            assert "This conference is not available" in elsewhere.text
            assert "A second conference, without the doctor" not in elsewhere.text
            employer_there = await client.get(link(case_id, other_conference, others["employer"]))
            assert employer_there.status_code == 200  # the link works for those on it
            assert "A second conference, without the doctor" in employer_there.text
            other_case = await client.get(link(str(uuid4()), conference_id, cast["doctor"]))
            assert other_case.status_code == 404

            # Expired: a clear page, 410.
            expired_token = mint_participant_link(
                DEV_JWT_SECRET,
                case_id=UUID(case_id),
                conference_id=conference_id,
                participant_id=cast["doctor"],
                expires_at=datetime.now(UTC) - timedelta(minutes=5),
                issued_at=datetime.now(UTC) - timedelta(days=30),
            )
            expired = await client.get(f"/portal/conference-links/{expired_token}")
            assert expired.status_code == 410
            assert "This link has expired" in expired.text
            assert expired.headers["referrer-policy"] == "no-referrer"

            # Absurdly long tokens are refused unread.
            too_long = await client.get("/portal/conference-links/" + "a" * 5000)
            assert too_long.status_code == 403
            assert "SECRET-DESCRIPTION" not in too_long.text

            # A signed-in HR manager's session does not widen the page.
            staff = await client.get(doctor_url, headers=AS_MANAGER)
            assert staff.status_code == 200
            assert "SECRET-DESCRIPTION" not in staff.text and "Work queue" not in staff.text

        # An HR manager signed in to the portal in the same browser sees the same page.
        staff_context = await browser.new_context(
            base_url=system.url("intake"), java_script_enabled=False
        )
        staff_page = await staff_context.new_page()
        await staff_page.goto("/portal/sign-in")
        await staff_page.get_by_label(re.compile("Victor Almeida")).check()
        await staff_page.get_by_role("button", name="Sign in").click()
        await staff_page.wait_for_url(re.compile(r"/portal/work-queue$"))
        await staff_page.goto(doctor_url)
        staff_body = await staff_page.content()
        assert "For Dr Alice Ng (Treating doctor)" in staff_body
        assert "Signed in as" not in staff_body and "SECRET-DESCRIPTION" not in staff_body
        assert await staff_page.locator('a[href^="/"]').count() == 0
        await staff_context.close()

        # Taken off the conference: the link no longer opens it. Routing changes only a
        # conference still planned, so the second one's employer representative is
        # replaced (routing requires one on every conference).
        employer_url = link(case_id, other_conference, others["employer"])
        worker_url = link(case_id, other_conference, others["worker"])
        replacement = {
            "role": "employer_representative",
            "name": "Grace Lim",
            "email": "grace.lim@example.com",
        }
        kept = [
            {**PEOPLE[key], "participant_id": str(others[key])} for key in ("worker", "manager")
        ]
        changed = await staff_post(
            system,
            f"/api/v1/cases/{case_id}/conferences/{other_conference}/changes",
            {
                **plan_body("A second conference, without the doctor", ()),
                "participants": [*kept, replacement],
                "reason": "The employer is represented by its HR lead",
            },
        )
        assert changed.status_code == 202, changed.text
        rescheduled = await decided(captured, "conference.rescheduled", other_conference)
        assert [p["name"] for p in rescheduled["payload"]["removed_participants"]] == [
            "Omar Haddad"
        ]

        async def removed() -> bool:
            row = await view_row(admin_pool, other_conference, others["employer"])
            return row is not None and row["removed"]

        await eventually(removed, "the employer representative marked removed")
        async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
            gone = await client.get(employer_url)
            assert gone.status_code == 403
            assert "no longer a participant" in gone.text
            refused = await client.post(employer_url + "/acknowledgement")
            assert refused.status_code == 403
            still = await client.get(worker_url)
            assert still.status_code == 200
            # The remaining participants no longer see the removed one.
            assert "Omar Haddad, Employer representative" not in still.text
            assert "Grace Lim, Employer representative" in still.text
            # The doctor's link to the first conference (summarised) opens as before, with
            # their receipt.
            doctor_still = await client.get(doctor_url)
            assert doctor_still.status_code == 200
            assert "You acknowledged receipt on" in doctor_still.text


@needs_chromium
async def test_the_worker_gives_consent_and_acknowledges_the_summary(
    system, browser, amqp, admin_pool, tmp_path
):
    case_id, _ = await raise_case(system)
    async with capture_events(amqp) as captured:
        # Planned before the worker's consent: routing holds the doctor back. Held without
        # them, summarised with one action for the worker.
        conference_id, cast = await plan_conference(
            system, captured, case_id, "Plan Sam's return to the depot"
        )
        await hold(system, captured, case_id, conference_id, cast, absent=("doctor",))
        await summarise(
            system,
            captured,
            case_id,
            conference_id,
            {
                "agreed_points": ["Graduated return over four weeks"],
                "actions": [
                    {
                        "description": "Book physiotherapy",
                        "owner_participant_id": str(cast["worker"]),
                        "due_on": sydney_weekday(14).isoformat(),
                    }
                ],
                "objections": [],
            },
        )

        async def worker_view() -> bool:
            row = await view_row(admin_pool, conference_id, cast["worker"])
            return row is not None and row["status"] == "summarised"

        await eventually(worker_view, "the worker's view projected")
        # The doctor awaiting consent is not shown, and their link does not open yet.
        async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
            waiting = await client.get(link(case_id, conference_id, cast["doctor"]))
        assert waiting.status_code == 403

        context = await browser.new_context(
            base_url=system.url("intake"), java_script_enabled=False
        )
        page = await context.new_page()
        await page.goto("/portal/sign-in")
        await page.get_by_label(re.compile("Sam Rivera")).check()
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(re.compile(r"/portal/cases$"))
        await page.goto(f"/portal/cases/{case_id}")
        section = page.locator("#case-conference")
        text = await section.inner_text()
        assert "Plan Sam's return to the depot" in text
        assert "Graduated return over four weeks" in text
        assert "Dr Alice Ng" not in text  # not invited yet (awaiting consent)
        assert await page.locator("#consent-practitioner_involvement").inner_text() == "not given"

        await section.get_by_role("button", name=re.compile("Give: My treating doctor")).click()
        await page.wait_for_url("**?conference=consent_given#case-conference")
        consent = await captured.wait(
            lambda e: e["event_type"] == "conference.consent_recorded" and e["case_id"] == case_id
        )
        assert consent["payload"]["consent"] == "practitioner_involvement"
        assert consent["payload"]["given_by"] == "worker"
        assert consent["payload"]["recorded_via"] == "portal"
        assert consent["payload"]["granted"] is True
        assert consent["actor"] == {"type": "employee", "id": "E-7001"}
        assert await page.locator("#consent-practitioner_involvement").inner_text() == "given"

        await section.get_by_role("button", name="I acknowledge receipt of the summary").click()
        await page.wait_for_url("**?conference=acknowledged#case-conference")
        acknowledged = await captured.wait(
            lambda e: (
                e["event_type"] == "conference.acknowledged"
                and e["payload"]["conference_id"] == str(conference_id)
            )
        )
        assert acknowledged["payload"]["participant_id"] == str(cast["worker"])
        assert acknowledged["payload"]["role"] == "worker"
        assert "You acknowledged receipt on" in await page.locator("#case-conference").inner_text()
        shot = tmp_path / "conference-worker-section.png"
        await section.screenshot(path=str(shot))
        keep_screenshot(shot)
        await context.close()

    # The JSON door for the reporter: only the worker's own consent.
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
        path = f"/api/v1/cases/{case_id}/consents"
        wrong = await client.post(
            path,
            json={"consent": "medical_consultation", "given_by": "treating_doctor"},
            headers=AS_SAM,
        )
        # A rule on the case (only the worker's own consent), not the body's shape: refused
        # in a sentence that names the field.
        assert wrong.status_code == 422
        assert wrong.json()["detail"].startswith("given_by:")
        unknown = await client.post(
            path, json={"consent": "everything", "given_by": "worker"}, headers=AS_SAM
        )
        assert unknown.status_code == 422
        assert unknown.json()["detail"][0]["loc"][-1] == "consent"
        stranger = await client.post(
            path, json={"consent": "medical_consultation", "given_by": "worker"}, headers=AS_ALEX
        )
        assert stranger.status_code == 404
        accepted = await client.post(
            path,
            json={"consent": "medical_consultation", "given_by": "worker", "granted": False},
            headers=AS_SAM,
        )
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["event_type"] == "conference.consent_recorded"


async def test_the_view_follows_invitation_hold_actions_completion_and_cancellation(
    system, amqp, admin_pool
):
    """Every decision the view is built from, as routing makes them in a conference's life:
    the practitioner invited once consent is in, held, summarised, one action done, one
    re-planned then carried out of the conference, completed; and a cancelled conference
    says so."""
    case_id, _ = await raise_case(system)
    async with capture_events(amqp) as captured:
        conference_id, cast = await plan_conference(
            system, captured, case_id, "Agree a return to work after the back injury"
        )
        doctor_url = link(case_id, conference_id, cast["doctor"])

        async def page(url: str) -> httpx.Response:
            async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
                return await client.get(url)

        async def answers(url: str, status: int, text: str | None = None) -> bool:
            response = await page(url)
            return response.status_code == status and (text is None or text in response.text)

        await eventually(lambda: answers(doctor_url, 403, "not been invited"), "held back")
        await consent_as_worker(system, case_id)
        await decided(captured, "conference.participant_invited", conference_id)
        await eventually(
            lambda: answers(doctor_url, 200, "Dr Alice Ng, Treating doctor"), "invited"
        )

        await hold(system, captured, case_id, conference_id, cast)
        await eventually(
            lambda: answers(doctor_url, 200, "the written summary will follow"), "held"
        )

        due_on = sydney_weekday(7)
        done_id, moved_id = await summarise(
            system,
            captured,
            case_id,
            conference_id,
            {
                "agreed_points": ["Two actions agreed"],
                "actions": [
                    {
                        "description": text,
                        "owner_participant_id": str(cast["doctor"]),
                        "due_on": due_on.isoformat(),
                    }
                    for text in ("Send the medical certificate", "Review")
                ],
                "objections": [],
            },
        )
        await eventually(lambda: answers(doctor_url, 200, "Two actions agreed"), "summarised")

        actions_path = f"/api/v1/cases/{case_id}/conferences/{conference_id}/actions"
        done = await staff_post(system, f"{actions_path}/{done_id}/completion", {})
        assert done.status_code == 202, done.text
        await decided(captured, "conference.action_completed", conference_id)
        # A new due date: routing tracks the action until the end of that working day in
        # the team's calendar (Sydney), so the page shows that day.
        new_due_on = sydney_weekday(21)
        moved = await staff_post(
            system,
            f"{actions_path}/{moved_id}/replanning",
            {"reason": "Specialist appointment moved", "due_on": new_due_on.isoformat()},
        )
        assert moved.status_code == 202, moved.text
        await decided(captured, "conference.action_replanned", conference_id)
        new_due_text = f"{new_due_on:%A} {new_due_on.day} {new_due_on:%B %Y}"

        def rows(shown: str) -> dict[str, tuple[str, str]]:
            found = re.findall(
                r"<tr><td>(.*?)</td><td>.*?</td><td>(.*?)</td><td>(.*?)</td></tr>", shown
            )
            return {description: (due_text, status) for description, due_text, status in found}

        async def replanned() -> bool:
            return rows((await page(doctor_url)).text).get("Review") == (
                new_due_text,
                "Re-planned",
            )

        await eventually(replanned, "the action re-planned to its new date")
        assert rows((await page(doctor_url)).text)["Send the medical certificate"][1] == "Done"

        # Carried out of the conference: with every action done or carried out, routing
        # completes the conference.
        ended = await staff_post(
            system, f"{actions_path}/{moved_id}/replanning", {"reason": "Moved to the review"}
        )
        assert ended.status_code == 202, ended.text
        await decided(captured, "conference.completed", conference_id)
        await eventually(lambda: answers(doctor_url, 200, "Completed: every agreed action"), "done")
        by_action = rows((await page(doctor_url)).text)
        assert by_action["Send the medical certificate"][1] == "Done"
        assert by_action["Review"][1] == "Carried out of this conference"

        # A cancelled conference says so to everyone on it.
        cancelled_id, on_it = await plan_conference(
            system, captured, case_id, "To be cancelled", ("worker", "employer", "manager")
        )
        cancelled = await staff_post(
            system,
            f"/api/v1/cases/{case_id}/conferences/{cancelled_id}/cancellation",
            {"reason": "The worker is back at full duties"},
        )
        assert cancelled.status_code == 202, cancelled.text
        await decided(captured, "conference.cancelled", cancelled_id)
    cancelled_url = link(case_id, cancelled_id, on_it["employer"])
    await eventually(
        lambda: answers(cancelled_url, 200, "This conference was cancelled."), "cancelled"
    )
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as client:
        too_early = await client.post(cancelled_url + "/acknowledgement")
    assert too_early.status_code == 409
    assert "no written summary" in too_early.text
