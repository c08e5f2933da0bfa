"""A case conference on a serious workplace-injury claim, through the whole system.

Intake, routing, notifications and audit run as processes on the real broker and database;
the worker and the external union representative use the portal in Debian's Chromium
(JavaScript off, like every portal test); staff use intake's JSON API as the contract in
issue 11 names it. The tests run in order and share one system and a `story` dict:

a. the worker (Sam Rivera) raises a workplace-injury claim marked serious in the portal:
   routing requires a conference and starts the planning clock;
b. the case owner plans it with the worker, an employer representative, the case manager,
   an external treating doctor and a union representative: the worker's notice goes out
   first, then the agenda with a calendar invitation (.ics, parsed back here) to every
   invited participant; the treating doctor hears nothing until the worker consents in
   the portal, then gets the agenda; the planning clock is met;
c. a second conference inside the notice period is refused, with the reason on the
   conference and as case.request_refused;
d. staff record attendance and the summary with an action owned by the employer
   representative; everyone gets the summary link (never its text); the union
   representative opens it with no account, acknowledges, and the link opens nothing else;
e. the action falls overdue and escalates; completing it completes the conference.

The policy is the default one except that the Sydney office (injury management) works
round the clock with no holidays, so working days are calendar days here. Two instants
cannot be waited for and are moved in routing's tables with SQL, as the days would have
moved them: step d brings the conference's day (its start in `routing.conferences`, as
`tests.support.conferences.conference_day_has_come` does), since routing refuses a
conference recorded as held more than `hold_early_minutes` before its start; step e moves
the action's reminder and due instants into the past (`routing.conference_actions`), since
routing refuses a due date already over, and routing's timer loop does the rest.

Screenshots go to each test's tmp_path/artifacts; with HRCASE_UPDATE_SCREENSHOTS=1 the ones
the README shows are also written to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import re
import shutil
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
import yaml

from services.routing.domain.policy import DEFAULT_POLICY_FILE, load_policy
from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, PNG_MAGIC, needs_chromium
from tests.support.auth import auth_headers
from tests.support.bus import EventCapture, capture_events
from tests.support.conferences import conference_day_has_come
from tests.support.infra import ROOT, own_database
from tests.support.system import running_system

DEADLINE = 60.0
ALL_WEEK = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
SYDNEY = ZoneInfo("Australia/Sydney")
CASE_URL = re.compile(r"/portal/cases/([0-9a-f-]{36})")
LINK = re.compile(
    r"https?://[^\s\"'<>]+/portal/conference-links/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)"
)
# A word only the case description holds.
SECRET = f"ladder{uuid.uuid4().hex[:8]}"
# What the worker wrote: private, it must never reach a participant's mail or link page.
DESCRIPTION = (
    f"Private ({SECRET}): I fell from the ladder at loading dock 3 and hurt my back and wrist;"
    " the doctor has signed me off work."
)
AGENDA = ["Medical update and capacity", "Suitable duties at the dock", "Next steps"]
AGREED = [
    "Suitable duties: four-hour shifts at the dispatch desk for three weeks",
    "The treating doctor reviews capacity again in three weeks",
]
ACTION = "Send the suitable duties plan to the worker and the doctor"
WORKER = {"name": "Sam Rivera", "email": "sam.rivera@example.com", "employee_id": "E-7001"}
EMPLOYER = {
    "role": "employer_representative",
    "name": "Morgan Lee",
    "email": "morgan.lee@acme-warehousing.example",
    "organisation": "Acme Warehousing",
}
DOCTOR = {
    "role": "treating_doctor",
    "name": "Dr Aisha Rahman",
    "email": "aisha.rahman@harbour-clinic.example",
    "organisation": "Harbour Medical Clinic",
}
UNION = {
    "role": "union_representative",
    "name": "Chris Doyle",
    "email": "chris.doyle@twu.example",
    "organisation": "Transport Workers Union",
}
AS_MANAGER = auth_headers("M-9001", "hr_manager", employee_id="M-9001")
SHOTS = Path(ROOT) / "docs" / "screenshots"


def conference_policy(path: Path) -> Path:
    raw = copy.deepcopy(yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8")))
    raw["calendars"]["sydney_office"]["hours"] = ALL_WEEK
    raw["calendars"]["sydney_office"]["holidays"] = []
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def database_url(database_url):
    """A database of this module's own: it counts mails and participants of one case."""
    with own_database("case_conferences") as url:
        yield url


@pytest.fixture(scope="module")
async def admin_pool(database_url):
    """An admin pool on this module's own database (the session's is on the shared one)."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory) -> Path:
    return conference_policy(tmp_path_factory.mktemp("conference-policy") / "policy.yaml")


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir, policy_file):
    with running_system(
        database_url,
        rabbitmq_url,
        logs_dir / "case-conferences",
        ROUTING_POLICY_FILE=str(policy_file),
        ROUTING_TIMER_INTERVAL="0.2",
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def capture(amqp, system):
    """Every event of the module's run, from before the first step."""
    async with capture_events(amqp) as captured:
        yield captured


@pytest.fixture(scope="module")
def story() -> dict[str, Any]:
    """What one step leaves for the next: ids, the plan, the links."""
    return {}


@pytest.fixture(scope="module")
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


def needs(story: dict[str, Any], *keys: str) -> None:
    """Skip a later step when an earlier one did not get as far as it needs."""
    missing = [k for k in keys if k not in story]
    if missing:
        pytest.skip(f"an earlier step did not leave {', '.join(missing)}")


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout=DEADLINE) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def event(
    capture: EventCapture, event_type: str, timeout: float = DEADLINE, **payload: Any
) -> dict[str, Any]:
    """The first captured event of `event_type` whose payload has these values."""
    return await capture.wait(
        lambda e: (
            e["event_type"] == event_type
            and all(e["payload"].get(k) == v for k, v in payload.items())
        ),
        timeout=timeout,
    )


async def drain(capture: EventCapture, seconds: float = 1.5) -> list[dict[str, Any]]:
    """Everything captured so far, after `seconds` more for late events to arrive."""
    with contextlib.suppress(AssertionError):
        await capture.wait(lambda e: False, timeout=seconds)
    return list(capture.events)


def client(system, headers=None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.url("intake"), timeout=10, headers=headers)


def staff(owner_id: str) -> dict[str, str]:
    return auth_headers(owner_id, "hr_agent", employee_id=owner_id)


async def conference_view(system, story: dict[str, Any], conference_id: str) -> dict[str, Any]:
    async with client(system, staff(story["owner_id"])) as c:
        got = await c.get(f"/api/v1/cases/{story['case_id']}/conferences/{conference_id}")
    assert got.status_code == 200, got.text
    view: dict[str, Any] = got.json()
    return view


async def conference_reaches(
    system,
    story: dict[str, Any],
    conference_id: str,
    check: Callable[[dict[str, Any]], bool],
    what: str,
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        view = await conference_view(system, story, conference_id)
        return view if check(view) else None

    found: dict[str, Any] = await eventually(reached, what)
    return found


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""  # type: ignore[union-attr]


def mails_to(system, address: str) -> list[EmailMessage]:
    return system.mail.messages_to(address)


def ics_of(message: EmailMessage) -> Any | None:
    """The parsed calendar invitation attached to (or inside) a mail, or None."""
    from icalendar import Calendar

    for part in message.walk():
        if part.get_content_type() == "text/calendar" or (
            part.get_filename() or ""
        ).lower().endswith(".ics"):
            raw = part.get_payload(decode=True)
            assert isinstance(raw, bytes)
            return Calendar.from_ical(raw)
    return None


def agenda_mails(system, address: str) -> list[EmailMessage]:
    return [m for m in mails_to(system, address) if ics_of(m) is not None]


def link_in(message: EmailMessage) -> str:
    found = LINK.search(body_of(message))
    assert found, body_of(message)
    return found.group(0)


async def shoot(page: Any, tmp_path: Path, name: str, *, for_docs: bool = False) -> None:
    """A full-page screenshot into the test's artifacts (and docs/screenshots when asked)."""
    folder = tmp_path / "artifacts"
    folder.mkdir(exist_ok=True)
    shot = folder / f"{name}.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(PNG_MAGIC) and shot.stat().st_size > 1000
    if for_docs and os.environ.get("HRCASE_UPDATE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SHOTS / f"{name}.png")


async def reload_until(page: Any, check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Reload the page until `check()` holds, as a person would press F5."""
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the page never showed {what}: {page.url}")
        await asyncio.sleep(0.5)
        await page.reload()


async def new_context(browser, system):
    return await browser.new_context(
        base_url=system.url("intake"),
        java_script_enabled=False,
        viewport={"width": 1100, "height": 900},
    )


async def sign_in(browser, system, who: str):
    context = await new_context(browser, system)
    page = await context.new_page()
    await page.goto("/portal/sign-in")
    await page.get_by_label(re.compile(who)).check()
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/portal/(cases|work-queue)$"))
    return context, page


def notice_days(policy_file: Path) -> int:
    """The notice, in working days, the rules give a case of Injury Management."""
    policy = load_policy(policy_file)
    jurisdiction = policy.jurisdiction_for(policy.teams["injury_management"], None)
    days: int = policy.conferences.rules_for(jurisdiction).notice_working_days
    return days


def plan_body(scheduled: datetime, participants: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "purpose": "Agree a return to suitable duties and ongoing treatment after the fall",
        "scheduled_for": scheduled.isoformat(),
        "duration_minutes": 60,
        "time_zone": "Australia/Sydney",
        "mode": "in_person",
        "venue": "workplace",
        "location": "Acme Warehousing, meeting room 2, 12 Harbour Street, Sydney NSW",
        "participants": participants,
        "agenda": AGENDA,
        "desired_outcomes": [
            {
                "topic": "Future employment",
                "proposals": [
                    {"by": "employer_representative", "text": "Dispatch desk, four-hour shifts"}
                ],
            },
            {"topic": "Ongoing treatment"},
        ],
    }


# --- a. the claim ------------------------------------------------------------------------


@needs_chromium
async def test_a_serious_injury_claim_in_the_portal_requires_a_conference(
    system, capture, browser, story, tmp_path
):
    context, page = await sign_in(browser, system, "Sam Rivera")
    await page.get_by_role("link", name="Raise a case").first.click()
    await page.get_by_label("Subject").fill("Fall at loading dock 3")
    await page.get_by_label("Category").select_option("workplace_injury")
    await page.get_by_label("What happened?").fill(DESCRIPTION)
    yesterday = (datetime.now(SYDNEY) - timedelta(days=1)).date()
    await page.get_by_label("Date of injury").fill(yesterday.isoformat())
    await page.get_by_label("Serious injury?").select_option("yes")
    await page.get_by_label(re.compile("suitable employment")).select_option("unknown")
    await page.get_by_role("button", name="Submit").click()
    await page.wait_for_url(CASE_URL)
    case_id = CASE_URL.search(page.url).group(1)  # type: ignore[union-attr]
    reference = (await page.get_by_role("heading", level=1).inner_text()).split(":")[0]
    await context.close()

    required = await capture.wait(
        lambda e: e["event_type"] == "conference.required" and e["case_id"] == case_id,
        timeout=DEADLINE,
    )
    assert "serious injury" in required["payload"]["reasons"]
    # The planning clock starts from the requirement, due when the conference must be
    # planned by; it is a clock of the case (no conference exists yet).
    started = await capture.wait(
        lambda e: (
            e["event_type"] == "statutory_clock.started"
            and e["case_id"] == case_id
            and e["payload"]["pack"] == "conference_rules"
            and e["payload"]["trigger"] == "conference.required"
        ),
        timeout=DEADLINE,
    )
    assert started["payload"]["conference_id"] is None
    assert datetime.fromisoformat(started["payload"]["due_at"]) > datetime.fromisoformat(
        started["payload"]["started_at"]
    )

    async def owned() -> str | None:
        async with client(system, AS_MANAGER) as c:
            view = (await c.get(f"/api/v1/cases/{case_id}")).json()
        owner = (view.get("assignment") or {}).get("owner_id")
        return str(owner) if view.get("status") == "assigned" and owner else None

    owner_id = await eventually(owned, "the claim assigned in Injury Management")
    assert owner_id in ("A-4001", "A-4002")
    story.update(
        case_id=case_id,
        reference=reference,
        owner_id=owner_id,
        owner_name={"A-4001": "Sofia Rossi", "A-4002": "James Ng"}[owner_id],
        owner_email={"A-4001": "sofia.rossi@example.com", "A-4002": "james.ng@example.com"}[
            owner_id
        ],
        planning_clock=(started["payload"]["pack"], started["payload"]["clock"]),
    )


# --- b. plan, notice, agenda, consent ------------------------------------------------------


@needs_chromium
async def test_b_planning_tells_the_worker_first_and_sends_the_agenda_to_each_participant(
    system, capture, browser, story, policy_file, tmp_path
):
    needs(story, "case_id", "owner_id")
    case_id, owner_id = story["case_id"], story["owner_id"]
    days = notice_days(policy_file)
    # Round the clock, every day is a working day: a week past the notice is clear of it.
    day = datetime.now(SYDNEY).date() + timedelta(days=days + 7)
    scheduled = datetime(day.year, day.month, day.day, 10, 0, tzinfo=SYDNEY)
    participants = [
        {"role": "worker", **WORKER},
        EMPLOYER,
        {
            "role": "case_manager",
            "name": story["owner_name"],
            "email": story["owner_email"],
            "employee_id": owner_id,
        },
        DOCTOR,
        UNION,
    ]
    # The planning form an HR manager sees (filled in, not sent: the owner plans by API).
    await fill_the_planning_form(browser, system, case_id, scheduled, tmp_path)
    async with client(system, staff(owner_id)) as c:
        accepted = await c.post(
            f"/api/v1/cases/{case_id}/conferences",
            json=plan_body(scheduled, participants),
        )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "requested"
    conference_id = accepted.json()["conference_id"]

    planned = await event(capture, "conference.planned", conference_id=conference_id)
    assert planned["case_id"] == case_id and planned["producer"] == "routing"
    assert planned["payload"]["sequence"] == 0
    assert planned["payload"]["notice_working_days"] == days
    by_role = {p["role"]: p for p in planned["payload"]["participants"]}
    assert set(by_role) == {p["role"] for p in participants}
    ids = {role: p["participant_id"] for role, p in by_role.items()}
    # The treating doctor waits for the worker's consent; everyone else is invited.
    assert planned["payload"]["awaiting_consent"] == [ids["treating_doctor"]]
    assert datetime.fromisoformat(planned["payload"]["plan"]["scheduled_for"]) == scheduled

    invited = ["worker", "employer_representative", "case_manager", "union_representative"]
    notice = await event(
        capture,
        "conference.notice_sent",
        conference_id=conference_id,
        participant_id=ids["worker"],
    )
    agendas = {
        role: await event(
            capture,
            "conference.agenda_sent",
            conference_id=conference_id,
            participant_id=ids[role],
        )
        for role in invited
    }
    for role, sent in agendas.items():
        assert sent["payload"]["method"] == "REQUEST" and sent["payload"]["sequence"] == 0, role
        # The worker is told first: the notice reached the relay before any agenda.
        assert notice["payload"]["sent_at"] <= sent["payload"]["sent_at"], role
    uids = {s["payload"]["ics_uid"] for s in agendas.values()}
    assert len(uids) == 1  # one event in everyone's calendar
    (uid,) = uids

    emails = {role: by_role[role]["email"] for role in by_role}

    async def agendas_arrived() -> bool:
        return all(agenda_mails(system, emails[role]) for role in invited)

    await eventually(agendas_arrived, "an agenda mail for every invited participant")
    # Of all the conference's mails, the very first to reach the relay is the worker's notice.
    first = next(
        m
        for m in system.mail.received()
        if re.search("conference is planned|Case conference: agenda", str(m["Subject"]))
    )
    assert emails["worker"] in str(first["To"]) and ics_of(first) is None, first["Subject"]
    assert str(first["Subject"]).startswith(f"[{story['reference']}] A case conference is planned")
    told = body_of(first)
    assert "Agree a return to suitable duties" in told and LINK.search(told)
    assert SECRET not in told and "wrist" not in told
    for role in invited:
        [mail] = agenda_mails(system, emails[role])
        calendar = ics_of(mail)
        assert str(calendar["METHOD"]) == "REQUEST", role
        [vevent] = calendar.walk("VEVENT")
        assert str(vevent["UID"]) == uid, role
        assert int(vevent["SEQUENCE"]) == 0, role
        assert vevent.decoded("DTSTART") == scheduled, role
        assert vevent.decoded("DTEND") - vevent.decoded("DTSTART") == timedelta(minutes=60)
        attendees = vevent.get("ATTENDEE")
        attendees = attendees if isinstance(attendees, list) else [attendees]
        addresses = {str(a).lower().removeprefix("mailto:") for a in attendees}
        # Every invited participant is an attendee; the doctor, not invited yet, is not.
        assert addresses == {emails[r].lower() for r in invited}, (role, addresses)
        text = body_of(mail)
        for item in AGENDA:
            assert item in text, (role, item)
        assert LINK.search(text), role
        assert SECRET not in text and "wrist" not in text, role  # never the case description
    # The doctor hears nothing before the worker's consent.
    await drain(capture)
    assert mails_to(system, DOCTOR["email"]) == []

    view = await conference_reaches(
        system, story, conference_id, lambda v: v["status"] == "planned", "the conference planned"
    )
    invitations = {p["participant_id"]: p["invitation"] for p in view["participants"]}
    assert invitations[ids["treating_doctor"]] == "awaiting_consent"
    assert invitations[ids["union_representative"]] == "invited"

    # The worker consents in the portal, on their own case page.
    context, page = await sign_in(browser, system, "Sam Rivera")
    await page.goto(f"/portal/cases/{case_id}")
    section = page.locator("#case-conference")

    async def shown() -> bool:
        return bool(await section.get_by_text(AGENDA[0]).count())

    await reload_until(page, shown, "the conference on the worker's case page")
    assert await page.get_by_text(SECRET).count() >= 1  # their own case page, description and all
    await page.get_by_role("button", name=re.compile("^Give: My treating doctor")).click()
    await page.wait_for_url(re.compile(f"/portal/cases/{case_id}"))
    assert await page.locator("#consent-practitioner_involvement").inner_text() == "given"
    await shoot(page, tmp_path, "worker-case-page-conference")
    await context.close()
    consent = await capture.wait(
        lambda e: e["event_type"] == "conference.consent_recorded" and e["case_id"] == case_id,
        timeout=DEADLINE,
    )
    assert consent["payload"]["consent"] == "practitioner_involvement"
    assert consent["payload"]["given_by"] == "worker"
    assert consent["payload"]["recorded_via"] == "portal" and consent["payload"]["granted"]
    await event(
        capture,
        "conference.participant_invited",
        conference_id=conference_id,
        participant_id=ids["treating_doctor"],
    )
    await event(
        capture,
        "conference.agenda_sent",
        conference_id=conference_id,
        participant_id=ids["treating_doctor"],
    )

    async def doctor_agenda() -> list[EmailMessage]:
        return agenda_mails(system, DOCTOR["email"])

    [mail] = await eventually(doctor_agenda, "the treating doctor's agenda")
    [vevent] = ics_of(mail).walk("VEVENT")
    assert str(vevent["UID"]) == uid and vevent.decoded("DTSTART") == scheduled

    pack, clock = story["planning_clock"]
    met = await capture.wait(
        lambda e: (
            e["event_type"] == "statutory_clock.met"
            and e["case_id"] == case_id
            and (e["payload"]["pack"], e["payload"]["clock"]) == (pack, clock)
        ),
        timeout=DEADLINE,
    )
    assert met["payload"]["met_by"] == "conference.planned" and met["payload"]["on_time"]
    await conference_reaches(
        system,
        story,
        conference_id,
        lambda v: (
            {p["participant_id"]: p["invitation"] for p in v["participants"]}[
                ids["treating_doctor"]
            ]
            == "invited"
        ),
        "the doctor invited on the staff view",
    )
    story.update(conference_id=conference_id, ids=ids, emails=emails, uid=uid, scheduled=scheduled)


async def fill_the_planning_form(
    browser: Any, system: Any, case_id: str, scheduled: datetime, tmp_path: Path
) -> None:
    """Victor Almeida (HR manager) opens "Plan a conference" from the case page: the worker
    and the case manager are already on it; he adds the rest and the agenda."""
    context, page = await sign_in(browser, system, "Victor Almeida")
    await page.goto(f"/portal/cases/{case_id}")
    await page.get_by_role("link", name="Plan a conference").click()
    await page.wait_for_url(f"**/portal/cases/{case_id}/conferences/new")
    assert await page.locator("#p0_role").input_value() == "worker"
    assert await page.locator("#p0_email").input_value() == WORKER["email"]
    await page.locator("#purpose").fill(
        "Agree a return to suitable duties and ongoing treatment after the fall"
    )
    await page.locator("#scheduled_date").fill(scheduled.date().isoformat())
    await page.locator("#scheduled_time").fill("10:00")
    await page.locator("#location").fill("Acme Warehousing, meeting room 2, 12 Harbour Street")
    rows = [EMPLOYER, DOCTOR, UNION]
    for row in range(8):
        if not rows:
            break
        if await page.locator(f"#p{row}_email").input_value():
            continue  # pre-filled: the worker, the case manager
        person = rows.pop(0)
        await page.locator(f"#p{row}_role").select_option(person["role"])
        await page.locator(f"#p{row}_name").fill(person["name"])
        await page.locator(f"#p{row}_email").fill(person["email"])
        await page.locator(f"#p{row}_organisation").fill(person["organisation"])
    assert rows == [], "the form has too few participant rows"
    await page.locator("#agenda").fill("\n".join(AGENDA))
    await shoot(page, tmp_path, "conference-e2e-planning-form", for_docs=True)
    await context.close()


# --- c. too close ---------------------------------------------------------------------------


async def test_c_a_date_inside_the_notice_period_is_refused_with_the_reason(
    system, capture, story, policy_file
):
    needs(story, "case_id", "owner_id")
    case_id = story["case_id"]
    assert notice_days(policy_file) >= 1, "the default rules must ask for notice"
    soon = datetime.now(SYDNEY) + timedelta(hours=2)
    participants = [
        {"role": "worker", **WORKER},
        EMPLOYER,
        {"role": "case_manager", "name": story["owner_name"], "email": story["owner_email"]},
    ]
    async with client(system, staff(story["owner_id"])) as c:
        accepted = await c.post(
            f"/api/v1/cases/{case_id}/conferences",
            json=plan_body(soon, participants),
        )
    assert accepted.status_code == 202, accepted.text
    conference_id = accepted.json()["conference_id"]
    refusal = await capture.wait(
        lambda e: (
            e["event_type"] == "case.request_refused"
            and e["case_id"] == case_id
            and e["payload"]["request_type"] == "conference.planning_requested"
        ),
        timeout=DEADLINE,
    )
    reason = refusal["payload"]["reason"]
    assert re.search(r"notice|working day", reason, re.I), reason
    view = await conference_reaches(
        system, story, conference_id, lambda v: v["status"] == "refused", "the refusal shown"
    )
    assert reason in str(view), view
    planned = [
        e
        for e in await drain(capture, 1.0)
        if e["event_type"] == "conference.planned"
        and e["payload"]["conference_id"] == conference_id
    ]
    assert planned == []


# --- d. held, summarised, acknowledged through the link -----------------------------------


@needs_chromium
async def test_d_the_summary_link_shows_one_conference_and_opens_nothing_else(
    system, capture, browser, story, admin_pool, tmp_path
):
    needs(story, "conference_id", "ids")
    case_id, conference_id, ids = story["case_id"], story["conference_id"], story["ids"]
    headers = staff(story["owner_id"])
    attendance = [
        {"participant_id": pid, "attended": role != "treating_doctor"} for role, pid in ids.items()
    ]
    # Weeks before its date the conference cannot be recorded as held: routing refuses and
    # the conference's page (its API) shows why.
    async with client(system, headers) as c:
        early = await c.post(
            f"/api/v1/cases/{case_id}/conferences/{conference_id}/attendance",
            json={"held_at": datetime.now(UTC).isoformat(), "attendance": attendance},
        )
    assert early.status_code == 202, early.text
    view = await conference_reaches(
        system,
        story,
        conference_id,
        lambda v: "scheduled time" in str(v.get("last_refusal")),
        "the early hold refused",
    )
    assert view["status"] == "planned" and "reschedule" in view["last_refusal"], view
    # The day comes (its start moved into the past in routing's table), then staff record
    # it as held now.
    await conference_day_has_come(admin_pool, conference_id)
    held_at = datetime.now(UTC) - timedelta(seconds=1)
    async with client(system, headers) as c:
        held = await c.post(
            f"/api/v1/cases/{case_id}/conferences/{conference_id}/attendance",
            json={"held_at": held_at.isoformat(), "attendance": attendance},
        )
    assert held.status_code == 202, held.text
    held_event = await event(capture, "conference.held", conference_id=conference_id)
    assert datetime.fromisoformat(held_event["payload"]["summary_due_at"]) > held_at

    due_on = (datetime.now(SYDNEY) + timedelta(days=3)).date()
    async with client(system, headers) as c:
        summarised = await c.post(
            f"/api/v1/cases/{case_id}/conferences/{conference_id}/summary",
            json={
                "agreed_points": AGREED,
                "actions": [
                    {
                        "description": ACTION,
                        "owner_participant_id": ids["employer_representative"],
                        "due_on": due_on.isoformat(),
                    }
                ],
                "objections": [],
            },
        )
    assert summarised.status_code == 202, summarised.text
    recorded = await event(capture, "conference.summary_recorded", conference_id=conference_id)
    assert recorded["payload"]["on_time"]
    [action] = recorded["payload"]["actions"]
    assert action["owner_email"] == EMPLOYER["email"] and action["due_on"] == due_on.isoformat()

    # Everyone gets the summary link, the treating doctor too (invited since the consent).
    for pid in ids.values():
        await event(
            capture, "conference.summary_sent", conference_id=conference_id, participant_id=pid
        )
    emails = story["emails"]

    def summary_mails(address: str) -> list[EmailMessage]:
        return [
            m
            for m in mails_to(system, address)
            if ics_of(m) is None and re.search("summary", str(m["Subject"]), re.I)
        ]

    async def all_summaries() -> bool:
        return all(summary_mails(emails[role]) for role in ids)

    await eventually(all_summaries, "the summary mail for every participant")
    links = {}
    for role in ids:
        [mail] = summary_mails(emails[role])
        text = body_of(mail)
        links[role] = link_in(mail)
        # Only that the summary is ready and the link: never its text, never the case.
        for point in AGREED:
            assert point not in text, role
        assert SECRET not in text and ACTION not in text and "wrist" not in text, role
    assert len(set(links.values())) == len(links)  # each participant their own link

    # The union representative opens their link with no account and no session.
    context = await new_context(browser, system)
    page = await context.new_page()
    opened = await page.goto(links["union_representative"])
    assert opened is not None and opened.status == 200
    content = await page.content()
    for item in AGENDA + AGREED:
        assert item in content, item
    assert SECRET not in content and "wrist" not in content
    await shoot(page, tmp_path, "conference-e2e-external-participant", for_docs=True)
    await page.get_by_role("button", name=re.compile("acknowledg", re.I)).first.click()
    acknowledged = await event(
        capture,
        "conference.acknowledged",
        conference_id=conference_id,
        participant_id=ids["union_representative"],
    )
    assert acknowledged["payload"]["role"] == "union_representative"
    await shoot(page, tmp_path, "conference-external-participant-acknowledged")
    view = await conference_reaches(
        system,
        story,
        conference_id,
        lambda v: any(
            p["participant_id"] == ids["union_representative"] and p.get("acknowledged_at")
            for p in v["participants"]
        ),
        "the acknowledgement on the staff view",
    )
    assert view["status"] in ("summarised", "held"), view["status"]

    # The link is that conference only: nothing else of the case, nor the staff portal.
    token = LINK.search(links["union_representative"]).group(1)  # type: ignore[union-attr]
    for path in (
        f"/portal/cases/{case_id}",
        "/portal/work-queue",
        f"/portal/cases/{case_id}?token={token}",
    ):
        response = await page.goto(path)
        assert response is not None
        landed = page.url
        refused = response.status in (401, 403, 404) or "/portal/sign-in" in landed
        assert refused, (path, response.status, landed)
        assert SECRET not in await page.content(), path
    await context.close()
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=10) as c:
        for tried in (
            c.get(f"/api/v1/cases/{case_id}", headers={"Authorization": f"Bearer {token}"}),
            c.get(
                f"/api/v1/cases/{case_id}/conferences/{conference_id}",
                headers={"Authorization": f"Bearer {token}"},
            ),
            c.get(f"/api/v1/cases/{case_id}", params={"token": token}),
            c.get(f"/portal/cases/{case_id}", headers={"Cookie": f"hrcase_session={token}"}),
        ):
            response = await tried
            assert response.status_code in (401, 403, 404) or (
                response.status_code in (302, 303) and "sign-in" in response.headers["location"]
            ), response.text
            assert SECRET not in response.text
    # The staff conference page shows the acknowledgement and the worker's portal consent.
    context, page = await sign_in(browser, system, "Victor Almeida")
    await page.goto(f"/portal/cases/{case_id}/conferences/{conference_id}")
    union_row = page.locator(f"#participant-{ids['union_representative']}")
    assert (await union_row.locator(".acknowledgement").inner_text()).startswith("Acknowledged")
    consents = await page.locator("#consents + ul").inner_text()
    assert re.search(r"given by the worker \(in the portal", consents), consents
    await shoot(page, tmp_path, "conference-e2e-staff-page", for_docs=True)
    await context.close()
    story.update(action=action, links=links)


# --- e. the action falls overdue ------------------------------------------------------------


async def test_e_an_overdue_action_escalates_and_completing_it_completes_the_conference(
    system, capture, story, admin_pool
):
    needs(story, "action")
    case_id, conference_id = story["case_id"], story["conference_id"]
    action_id = story["action"]["action_id"]

    # Due in three days: its reminder instant, then its due instant, move into the past in
    # routing's table, as the days would have moved them (see the module docstring). One
    # at a time: a reminder that would come after the due instant is never sent.
    async def move(column: str) -> None:
        moved = await admin_pool.execute(
            f"UPDATE routing.conference_actions SET {column} = now() - interval '1 second'"
            " WHERE action_id = $1 AND status = 'open'",
            UUID(action_id),
        )
        assert moved == "UPDATE 1", moved

    await move("due_soon_at")
    due_soon = await event(capture, "conference.action_due_soon", action_id=action_id)
    assert due_soon["payload"]["owner_email"] == EMPLOYER["email"]

    async def reminder_mail() -> list[EmailMessage]:
        return [
            m
            for m in mails_to(system, EMPLOYER["email"])
            if re.search("due soon", str(m["Subject"]), re.I)
        ]

    [reminder] = await eventually(reminder_mail, "the action owner's reminder")
    assert LINK.search(body_of(reminder)) and ACTION not in str(reminder["Subject"])
    await move("due_at")
    overdue = await event(capture, "conference.action_overdue", action_id=action_id)
    escalated_to = overdue["payload"]["escalated_to"]
    assert escalated_to is not None, overdue
    assert overdue["payload"]["owner_email"] == EMPLOYER["email"]

    async def escalation_mail() -> list[EmailMessage]:
        return [
            m
            for m in mails_to(system, escalated_to["email"])
            if re.search("escalated to you", str(m["Subject"]), re.I)
        ]

    [mail] = await eventually(escalation_mail, "the escalation mail")
    assert story["reference"] in str(mail["Subject"])
    assert f"/portal/cases/{case_id}" in body_of(mail)  # staff: the case page
    assert SECRET not in body_of(mail) and ACTION not in body_of(mail)

    # The action's owner and the case owner hear that it is overdue too.
    async def overdue_mails() -> bool:
        return all(
            any(
                str(m["Subject"]).endswith("Conference action overdue")
                for m in mails_to(system, address)
            )
            for address in (EMPLOYER["email"], story["owner_email"])
        )

    await eventually(overdue_mails, "the overdue mails to the action's owner and the case owner")

    async with client(system, staff(story["owner_id"])) as c:
        done = await c.post(
            f"/api/v1/cases/{case_id}/conferences/{conference_id}/actions/{action_id}/completion",
            json={"note": "Plan sent on paper and by mail"},
        )
    assert done.status_code == 202, done.text
    completed = await event(capture, "conference.action_completed", action_id=action_id)
    assert completed["payload"]["on_time"] is False
    finished = await event(capture, "conference.completed", conference_id=conference_id)
    assert finished["payload"]["actions_completed"] == 1
    assert finished["payload"]["actions_replanned"] == 0
    view = await conference_reaches(
        system,
        story,
        conference_id,
        lambda v: v["status"] == "completed",
        "the conference complete",
    )
    [tracked] = view["actions"]
    assert tracked["status"] == "done"
