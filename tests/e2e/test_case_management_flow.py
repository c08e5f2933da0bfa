"""A contract dispute settled by independent case management, through the whole system.

Intake, routing, notifications and audit run as processes on the real broker and database
with the shipped policy and the demo directory: routing puts the case in the *case
management* process and decides every stage move, the case manager's impartiality and when
the written agreement comes into force, and runs its obligations' clocks and the
follow-up check-ins. Staff and parties use intake's JSON API (the screenshots use the
portal in Debian's Chromium), the auditor the audit API. The steps run in order:

a. Sam Rivera (E-7001) disputes a change to his hours: routing puts the case in stage
   *assessment*; moving on before anyone is assessed is refused;
b. both parties are assessed (Sam; Priya Shah, A-1001, for the employer); Dana Whitfield,
   Priya's manager, is refused as case manager (impartiality); Grace Okafor is accepted;
c. ground rules, accepted by each party; a meeting, held, with the case manager's
   privileged notes that no one else in the product sees;
d. the written agreement: two obligations, accepted by both; routing puts it in force
   and the case into *follow_up* by itself;
e. the employer's obligation is met; the employee's falls due unmet (its instants moved
   into the past in routing's table, as the days would have): a reminder, then overdue
   with an escalation, mails to the party, the case manager and the escalation target;
   the first follow-up check-in falls due; the case ends *resolved by agreement*;
f. the audit replay and the case file hold the whole process, privileged notes included.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest

from tests.e2e.test_portal import needs_chromium
from tests.support.auth import auth_headers
from tests.support.directory import load_demo_directory
from tests.support.infra import own_database
from tests.support.process_flow import (
    AS_AUDITOR,
    AS_VICTOR,
    audit_process_reaches,
    client,
    eventually,
    needs,
    post,
    process_of,
    refused_with,
    screenshots,
    stage_becomes,
    text_of,
)
from tests.support.system import running_system

SAM = {"employee_id": "E-7001", "name": "Sam Rivera", "email": "sam.rivera@example.com"}
PRIYA = {"employee_id": "A-1001", "name": "Priya Shah", "email": "priya.shah@example.com"}
AS_SAM = auth_headers("u-sam", "employee", employee_id="E-7001")
AS_PRIYA = auth_headers("A-1001", "hr_agent", "employee", employee_id="A-1001")
AS_ALEX = auth_headers("u-alex", "employee", employee_id="E-7002")
AS_GRACE = auth_headers("A-2001", "hr_agent", employee_id="A-2001")
SAM_ACCOUNT = "SAM-ACCOUNT: my shifts were moved to nights without any consultation."
PRIYA_ACCOUNT = "PRIYA-ACCOUNT: the night rota was a temporary measure for the peak."
PRIVILEGED = "PRIVILEGED: the employer will likely pay the overtime to avoid a tribunal."
PAY = "The employer pays 12 hours of overtime"
TIMESHEETS = "Sam submits his November timesheets"
SECRETS = (SAM_ACCOUNT, PRIYA_ACCOUNT, PRIVILEGED, PAY, TIMESHEETS)


@pytest.fixture(scope="module")
def database_url(database_url):
    """A database of this module's own: it counts the mails of one case's parties."""
    with own_database("case_management_flow") as url:
        yield url


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    # Routing's directory as `make run` loads it: Priya's manager is Dana Whitfield.
    load_demo_directory(database_url, rabbitmq_url)
    with running_system(
        database_url, rabbitmq_url, logs_dir / "case-management-flow", ROUTING_TIMER_INTERVAL="0.2"
    ) as running:
        yield running


@pytest.fixture(scope="module")
def story() -> dict[str, Any]:
    return {}


async def mediation_view(system, case_id: str, headers=AS_GRACE) -> dict[str, Any]:
    async with client(system, headers) as c:
        got = await c.get(f"/api/v1/cases/{case_id}/mediation")
    assert got.status_code == 200, got.text
    return dict(got.json())


def mails_about(system, address: str, word: str) -> list[EmailMessage]:
    return [m for m in system.mail.messages_to(address) if word in text_of(m).lower()]


async def test_a_dispute_enters_case_management_and_an_early_move_is_refused(system, story):
    async with client(system, AS_SAM) as c:
        accepted = await c.post(
            "/api/v1/cases",
            json={
                "subject": "My hours were changed without agreement",
                "description": "My contract says day shifts; I was moved to nights.",
                "reporter": SAM,
                "category": "contract_dispute",
            },
        )
    assert accepted.status_code == 202, accepted.text
    case_id = accepted.json()["case_id"]
    view = await stage_becomes(system, case_id, "assessment")
    assert view["process"]["process"] == "case_management"
    story.update(case_id=case_id, reference=accepted.json()["reference"])
    since = datetime.now(UTC)
    await post(AS_VICTOR, system, case_id, "/stage", {"stage": "ground_rules"})
    await refused_with(system, case_id, since, "case manager")


async def test_parties_assessed_and_an_impartial_case_manager(system, story):
    needs(story, "case_id")
    case_id = story["case_id"]
    for party, role, account, outcomes in (
        (SAM, "employee", SAM_ACCOUNT, ["Back on day shifts", "Overtime paid"]),
        (PRIYA, "employer_representative", PRIYA_ACCOUNT, ["A rota both can live with"]),
    ):
        await post(
            AS_VICTOR, system, case_id, "/mediation/assessments",
            {"party": {**party, "role": role}, "account": account,
             "desired_outcomes": outcomes},
        )  # fmt: skip
    # Dana Whitfield manages Priya, a party: she may not manage the case.
    since = datetime.now(UTC)
    await post(
        AS_VICTOR, system, case_id, "/process-roles", {"role": "case_manager", "staff_id": "M-9001"}
    )
    await refused_with(system, case_id, since, "chain")
    await post(
        AS_VICTOR, system, case_id, "/process-roles", {"role": "case_manager", "staff_id": "A-2001"}
    )

    async def grace_manages() -> bool:
        roles = (await process_of(system, case_id))["roles"]
        return any(r["role"] == "case_manager" and r["staff_id"] == "A-2001" for r in roles)

    await eventually(grace_manages, "Grace as case manager")
    await post(AS_GRACE, system, case_id, "/stage", {"stage": "ground_rules"})
    await stage_becomes(system, case_id, "ground_rules")
    story["case_manager"] = "A-2001"


async def test_ground_rules_and_a_meeting_with_privileged_notes(system, story):
    needs(story, "case_manager")
    case_id = story["case_id"]
    base = "/mediation"
    rules = await post(
        AS_GRACE, system, case_id, f"{base}/ground-rules",
        {"rules": ["Each speaks without interruption", "What is said here stays here"]},
    )  # fmt: skip
    # Discussions need both parties' acceptance: refused after the first.
    await post(AS_SAM, system, case_id, f"{base}/ground-rules/{rules['ground_rules_id']}/accept")
    since = datetime.now(UTC)
    await post(AS_GRACE, system, case_id, "/stage", {"stage": "discussions"})
    await refused_with(system, case_id, since, "ground rules")
    await post(AS_PRIYA, system, case_id, f"{base}/ground-rules/{rules['ground_rules_id']}/accept")
    await post(AS_GRACE, system, case_id, "/stage", {"stage": "discussions"})
    await stage_becomes(system, case_id, "discussions")

    when = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    meeting = await post(
        AS_GRACE, system, case_id, f"{base}/meetings",
        {"scheduled_for": when.isoformat(), "duration_minutes": 90,
         "time_zone": "Europe/London", "location": "Meeting room 2, 1 Harbour Street"},
    )  # fmt: skip
    await post(
        AS_GRACE, system, case_id, f"{base}/meetings/{meeting['meeting_id']}/record",
        {"held_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
         "discussed": "SHARED: the rota, the overtime owed and the timesheets.",
         "proposals": ["Pay the overtime", "Day shifts from January"],
         "privileged_notes": PRIVILEGED},
    )  # fmt: skip

    own = await mediation_view(system, case_id)
    assert PRIVILEGED in str(own)
    victor = await mediation_view(system, case_id, AS_VICTOR)
    assert PRIVILEGED not in str(victor) and "SHARED: the rota" in str(victor)
    for party, own_account, other_account in (
        (AS_SAM, SAM_ACCOUNT, PRIYA_ACCOUNT),
        (AS_PRIYA, PRIYA_ACCOUNT, SAM_ACCOUNT),
    ):
        async with client(system, party) as c:
            mine = (await c.get(f"/api/v1/cases/{case_id}{base}/mine")).text
        assert own_account in mine and other_account not in mine and PRIVILEGED not in mine
    async with client(system, AS_ALEX) as c:
        assert (await c.get(f"/api/v1/cases/{case_id}{base}/mine")).status_code == 404

    async def invited(address: str) -> list[EmailMessage]:
        return [m for m in mails_about(system, address, "meeting") if "BEGIN:VCALENDAR" in
                text_of(m)]  # fmt: skip

    for address in ("sam.rivera@example.com", "priya.shah@example.com"):
        await eventually(lambda a=address: invited(a), f"the meeting invitation to {address}")
    story["met"] = True


async def test_the_agreement_comes_into_force_when_both_accept(system, story):
    needs(story, "met")
    case_id = story["case_id"]
    base = "/mediation"
    await post(AS_GRACE, system, case_id, "/stage", {"stage": "agreement"})
    await stage_becomes(system, case_id, "agreement")
    soon = date.today() + timedelta(days=21)
    drafted = await post(
        AS_GRACE, system, case_id, f"{base}/agreement",
        {"terms": [
            {"text": PAY, "owner_role": "employer_representative", "due_on": soon.isoformat()},
            {"text": TIMESHEETS, "owner_role": "employee", "due_on": soon.isoformat()},
            {"text": "Day shifts resume from January"},
        ]},
    )  # fmt: skip
    agreement_id, version = drafted["agreement_id"], drafted["version"]
    pay_term, timesheet_term = drafted["term_ids"][:2]
    for party in (AS_SAM, AS_PRIYA):
        await post(
            party, system, case_id, f"{base}/agreement/{agreement_id}/accept", {"version": version}
        )
    await stage_becomes(system, case_id, "follow_up")

    async def in_force() -> dict[str, Any] | None:
        view = await mediation_view(system, case_id)
        return view if view["agreement"]["state"] == "in_force" else None

    view = await eventually(in_force, "the agreement in force")
    assert {o["term_id"] for o in view["obligations"]} == {pay_term, timesheet_term}
    assert all(o["due_at"] for o in view["obligations"])
    assert len(view["follow_ups"]) == 2
    story.update(agreement_id=agreement_id, pay_term=pay_term, timesheet_term=timesheet_term)


async def test_one_obligation_met_one_overdue_escalates_and_a_check_in(system, story, database_url):
    needs(story, "agreement_id")
    case_id = story["case_id"]
    base = "/mediation"
    await post(
        AS_GRACE, system, case_id,
        f"{base}/agreement/obligations/{story['pay_term']}/met",
        {"met_on": date.today().isoformat(), "note": "Paid with the December payroll"},
    )  # fmt: skip
    # The days pass: the timesheets' reminder and due instants, and the first check-in.
    conn = await asyncpg.connect(database_url)
    try:
        past = datetime.now(UTC) - timedelta(minutes=1)
        await conn.execute(
            """UPDATE routing.agreement_timers SET fire_at = $2
               WHERE case_id = $1::uuid AND fired_at IS NULL
                 AND (term_id IS NOT NULL OR check_in = 1)""",
            case_id,
            past,
        )
    finally:
        await conn.close()

    async def overdue() -> dict[str, Any] | None:
        view = await mediation_view(system, case_id)
        states = {o["term_id"]: o for o in view["obligations"]}
        fell_due = [f for f in view["follow_ups"] if f["fell_due_at"]]
        late = states[story["timesheet_term"]]
        return view if late["state"] == "overdue" and fell_due else None

    view = await eventually(overdue, "the timesheets overdue and the first check-in due")
    states = {o["term_id"]: o for o in view["obligations"]}
    assert states[story["pay_term"]]["state"] == "met"  # a met obligation never fires
    assert states[story["timesheet_term"]]["escalated_to"]

    for address, word in (
        ("sam.rivera@example.com", "overdue"),
        ("grace.okafor@example.com", "overdue"),
        ("grace.okafor@example.com", "check-in"),
    ):

        async def mailed(a: str = address, w: str = word) -> list[EmailMessage]:
            return mails_about(system, a, w)

        await eventually(mailed, f"a mail to {address} about {word}")
    for address in ("sam.rivera@example.com", "priya.shah@example.com",
                    "grace.okafor@example.com"):  # fmt: skip
        for message in system.mail.messages_to(address):
            for secret in SECRETS:
                assert secret not in text_of(message), (address, message["Subject"])

    await post(
        AS_GRACE, system, case_id, "/stage",
        {"stage": "closed", "ending": "resolved_by_agreement",
         "reason": "Overtime paid; timesheets followed up at the check-in."},
    )  # fmt: skip
    view = await stage_becomes(system, case_id, "closed")
    assert view["process"]["ending"] == "resolved_by_agreement"
    story["closed"] = True


async def test_the_audit_record_holds_the_whole_process(system, story):
    needs(story, "closed")
    case_id = story["case_id"]
    process = await audit_process_reaches(system, case_id, "closed")
    async with client(system, AS_AUDITOR, "audit") as c:
        terms = {t["term_id"]: t for t in process["agreement"]["terms"]}
        assert terms[story["pay_term"]]["state"] == "met"
        assert terms[story["timesheet_term"]]["state"] == "overdue"
        assert set(process["ground_rules"]["accepted_by"]) == {
            "employee", "employer_representative"
        }  # fmt: skip
        exported = await c.post(f"/api/v1/audit/cases/{case_id}/export")
        assert exported.status_code in (200, 201), exported.text
    html = exported.json()["html"]
    for expected in (SAM_ACCOUNT, PRIYA_ACCOUNT, PRIVILEGED, PAY, "resolved by agreement"):
        assert expected in html, expected


@needs_chromium
async def test_screenshots_for_the_case_manager_and_each_party(system, story, tmp_path):
    needs(story, "agreement_id")
    page = f"/portal/cases/{story['case_id']}/mediation"
    await screenshots(
        system,
        tmp_path,
        [
            ("Grace Okafor", page, PRIVILEGED, (), "case-management-case-manager"),
            ("Sam Rivera", f"{page}/mine", SAM_ACCOUNT, (PRIYA_ACCOUNT, PRIVILEGED),
             "case-management-employee"),
            ("Priya Shah", f"{page}/mine", PRIYA_ACCOUNT, (SAM_ACCOUNT, PRIVILEGED),
             "case-management-employer"),
        ],
    )  # fmt: skip
