"""A harassment complaint investigated from plan to appeal, through the whole system.

Intake, routing, notifications and audit run as processes on the real broker and database
with the shipped policy: routing puts the case in the *investigation* process and decides
every stage move, role and approval; the tests use intake's JSON API as staff and parties
would, the portal in Debian's Chromium for the screenshots, and the audit API as an
auditor. The steps run in order and share one system and a `story` dict:

a. Sam Rivera (E-7001) complains about his supervisor Jordan Blake (E-7100): routing puts
   the case in stage *planning*; a move to *interviews* is refused (no investigator, no
   allegation) with routing's reason on the case;
b. a conflict is declared for Mei Tanaka, who is then refused as investigator; Jordan
   (the respondent) is refused too; Helen Carter is accepted and, though she may not own
   the case, now reads it;
c. Helen records the allegation, moves to interviews, schedules both interviews (each
   person gets their own invitation with a calendar file and no case content), records
   both statements; Jordan sees his own statement and confirms it, never Sam's;
d. the findings stage's target passes: the case shows it overdue, the owner is told and
   the team lead gets the escalation; the finding, the outcome; Helen may not approve her
   own outcome, Dana Whitfield (named by the policy) does; the case enters the appeal
   window; both parties are told in writing, each mail without the statements or the
   reasoning;
e. Jordan appeals; Helen may not hear it (involved), Victor Almeida may; he decides it and
   the case is closed with the ending *outcome_final*;
f. the audit replay shows the stage and findings as of an instant between them, and the
   case file contains the whole process; the screenshots of the investigator's page and
   of each party's page (with HRCASE_UPDATE_SCREENSHOTS=1 also into docs/screenshots/).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
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
    role_holder,
    screenshots,
    stage_becomes,
    text_of,
)
from tests.support.process_flow import (
    assert_no_secrets as assert_secrets_kept,
)
from tests.support.system import running_system

SAM = {"employee_id": "E-7001", "name": "Sam Rivera", "email": "sam.rivera@example.com"}
AS_SAM = auth_headers("u-sam", "employee", employee_id="E-7001")
AS_JORDAN = auth_headers("u-jordan", "employee", employee_id="E-7100")
AS_ALEX = auth_headers("u-alex", "employee", employee_id="E-7002")
AS_HELEN = auth_headers("A-3001", "investigator", employee_id="A-3001")
AS_DANA = auth_headers("M-9001", "hr_manager", employee_id="M-9001")
# What each person said: private to them and to the investigation.
SAM_SAYS = "SAM-STATEMENT: he called me useless in front of the loading team, twice."
JORDAN_SAYS = "JORDAN-STATEMENT: I raised my voice about the late pallets, nothing more."
REASONING = "REASONING: three witnesses heard the remark; the rota confirms the shift."
SECRETS = (SAM_SAYS, JORDAN_SAYS, REASONING, "called me useless")


@pytest.fixture(scope="module")
def database_url(database_url):
    """A database of this module's own: it counts mails to the parties of one case."""
    with own_database("investigation_flow") as url:
        yield url


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    # Routing's directory as `make run` loads it: the parties' work contacts and their
    # management chains (who may not investigate, hear or manage the case).
    load_demo_directory(database_url, rabbitmq_url)
    with running_system(
        database_url, rabbitmq_url, logs_dir / "investigation-flow", ROUTING_TIMER_INTERVAL="0.2"
    ) as running:
        yield running


@pytest.fixture(scope="module")
def story() -> dict[str, Any]:
    return {}


def mails_to(system, address: str) -> list[EmailMessage]:
    return system.mail.messages_to(address)


def assert_no_secrets(system, *addresses: str) -> None:
    assert_secrets_kept(system, SECRETS, *addresses)


async def test_a_complaint_enters_the_investigation_and_an_early_move_is_refused(system, story):
    async with client(system, AS_SAM) as c:
        accepted = await c.post(
            "/api/v1/cases",
            json={
                "subject": "My supervisor humiliates me",
                "description": "Jordan Blake calls me names in front of the team (harassment).",
                "reporter": SAM,
                "category": "harassment",
                "respondents": [{"employee_id": "E-7100", "name": "Jordan Blake"}],
            },
        )
    assert accepted.status_code == 202, accepted.text
    case_id = accepted.json()["case_id"]
    view = await stage_becomes(system, case_id, "planning")
    assert view["process"]["process"] == "investigation"
    assert view["process"]["assigned_by"] == "policy"
    assert [s["name"] for s in view["stages"]][:3] == ["planning", "interviews", "findings"]
    assert view["clock"] and view["clock"]["target_at"]
    story.update(case_id=case_id, reference=accepted.json()["reference"])

    since = datetime.now(UTC)
    await post(AS_VICTOR, system, case_id, "/stage", {"stage": "interviews"})
    await refused_with(system, case_id, since, "investigator")
    assert (await process_of(system, case_id))["process"]["stage"] == "planning"


async def test_only_an_impartial_investigator_is_accepted(system, story):
    needs(story, "case_id")
    case_id = story["case_id"]
    # Mei may not read a restricted case she does not own: her manager records it for her.
    await post(
        AS_VICTOR, system, case_id, "/conflicts",
        {"staff_id": "A-3003", "reason": "Mei plays football with Jordan."},
    )  # fmt: skip
    since = datetime.now(UTC)
    await post(
        AS_VICTOR, system, case_id, "/process-roles", {"role": "investigator", "staff_id": "A-3003"}
    )
    await refused_with(system, case_id, since, "conflict")
    since = datetime.now(UTC)
    await post(
        AS_VICTOR, system, case_id, "/process-roles", {"role": "investigator", "staff_id": "E-7100"}
    )
    await refused_with(system, case_id, since)
    assert await role_holder(system, case_id, "investigator") is None

    await post(
        AS_VICTOR, system, case_id, "/process-roles", {"role": "investigator", "staff_id": "A-3001"}
    )

    async def helen_holds() -> bool:
        return await role_holder(system, case_id, "investigator") == "A-3001"

    await eventually(helen_holds, "Helen as investigator")
    async with client(system, AS_HELEN) as c:
        assert (await c.get(f"/api/v1/cases/{case_id}")).status_code == 200
    # Her role assignment mail links the case, nothing more.
    assigned = [m for m in mails_to(system, "helen.carter@example.com") if "investigator" in
                text_of(m).lower()]  # fmt: skip
    assert assigned, [m["Subject"] for m in mails_to(system, "helen.carter@example.com")]
    story["investigator"] = "A-3001"


async def test_interviews_and_statements_and_each_party_sees_only_their_own(system, story):
    needs(story, "investigator")
    case_id = story["case_id"]
    inv = "/investigation"
    allegation = await post(
        AS_HELEN, system, case_id, f"{inv}/allegations",
        {"allegation_type": "harassment", "summary": "Called Sam useless in front of the team",
         "respondent_employee_id": "E-7100", "respondent_name": "Jordan Blake"},
        201,
    )  # fmt: skip
    story["allegation_id"] = allegation["allegation_id"]
    await post(AS_HELEN, system, case_id, "/stage", {"stage": "interviews"})
    await stage_becomes(system, case_id, "interviews")

    when = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    for person, role in ((SAM, "complainant"), (
        {"employee_id": "E-7100", "name": "Jordan Blake", "email": "jordan.blake@example.com"},
        "respondent",
    )):  # fmt: skip
        await post(
            AS_HELEN, system, case_id, f"{inv}/interviews",
            {"interviewee": {**person, "role": role}, "scheduled_for": when.isoformat(),
             "duration_minutes": 60, "time_zone": "Europe/London",
             "location": "Room 4.2, 1 Harbour Street"},
            201,
        )  # fmt: skip

    # A move to findings before anyone is heard is refused.
    since = datetime.now(UTC)
    await post(AS_HELEN, system, case_id, "/stage", {"stage": "findings"})
    await refused_with(system, case_id, since, "statement")

    sam_statement = await post(
        AS_HELEN, system, case_id, f"{inv}/statements",
        {"given_by_role": "complainant", "given_by_name": "Sam Rivera",
         "given_by_employee_id": "E-7001", "text": SAM_SAYS,
         "allegation_ids": [story["allegation_id"]]},
        201,
    )  # fmt: skip
    jordan_statement = await post(
        AS_HELEN, system, case_id, f"{inv}/statements",
        {"given_by_role": "respondent", "given_by_name": "Jordan Blake",
         "given_by_employee_id": "E-7100", "text": JORDAN_SAYS,
         "allegation_ids": [story["allegation_id"]], "companion_name": "Pat Doyle"},
        201,
    )  # fmt: skip

    async def invited(address: str) -> list[EmailMessage]:
        return [m for m in mails_to(system, address) if "BEGIN:VCALENDAR" in text_of(m)]

    for address in ("sam.rivera@example.com", "jordan.blake@example.com"):
        found = await eventually(lambda a=address: invited(a), f"the invitation to {address}")
        assert "companion" in text_of(found[0]).lower()
        assert story["reference"] in text_of(found[0])
    assert_no_secrets(system, "sam.rivera@example.com", "jordan.blake@example.com")

    async with client(system, AS_JORDAN) as c:
        mine = await c.get(f"/api/v1/cases/{case_id}{inv}/mine")
        assert mine.status_code == 200, mine.text
        shown = mine.text
        assert JORDAN_SAYS in shown and SAM_SAYS not in shown
        confirmed = await c.post(
            f"/api/v1/cases/{case_id}{inv}/statements/{jordan_statement['statement_id']}/review",
            json={"confirmed": True},
        )
        assert confirmed.status_code in (201, 202), confirmed.text
        # Sam's statement is not his to review.
        other = await c.post(
            f"/api/v1/cases/{case_id}{inv}/statements/{sam_statement['statement_id']}/review",
            json={"confirmed": True},
        )
        assert other.status_code == 404, other.text
    async with client(system, AS_SAM) as c:
        mine = await c.get(f"/api/v1/cases/{case_id}{inv}/mine")
        assert mine.status_code == 200 and SAM_SAYS in mine.text and JORDAN_SAYS not in mine.text
    async with client(system, AS_ALEX) as c:  # a colleague who is no party
        assert (await c.get(f"/api/v1/cases/{case_id}{inv}/mine")).status_code == 404

    await post(AS_HELEN, system, case_id, "/stage", {"stage": "findings"})
    await stage_becomes(system, case_id, "findings")
    story["statements"] = True


async def test_a_stage_past_its_target_tells_the_owner_and_escalates(system, story, database_url):
    """The findings stage's target passes (moved into the past in routing's table, as the
    working days would have): the case shows it overdue, the owner is told and the team
    lead (level 1 of the investigations ladder) gets the escalation, once each."""
    needs(story, "statements")
    case_id = story["case_id"]
    conn = await asyncpg.connect(database_url)
    try:
        owner = await conn.fetchval(
            "SELECT owner_id FROM routing.cases WHERE case_id = $1::uuid", case_id
        )
        await conn.execute(
            "UPDATE routing.case_processes SET due_soon_at = NULL,"
            " target_at = now() - interval '1 minute' WHERE case_id = $1::uuid",
            case_id,
        )
    finally:
        await conn.close()

    async def overdue() -> dict[str, Any] | None:
        clock = (await process_of(system, case_id))["clock"]
        return clock if clock and clock["state"] == "overdue" else None

    await eventually(overdue, "the findings stage overdue on the case")
    owner_address = {"A-3001": "helen.carter@example.com", "A-3003": "mei.tanaka@example.com"}
    for address, subject in (
        (owner_address[owner], "Stage target overdue"),
        ("victor.almeida@example.com", "Overdue stage escalated to you"),
    ):

        async def mailed(a: str = address, w: str = subject) -> list[EmailMessage]:
            return [m for m in mails_to(system, a) if w in str(m["Subject"])]

        found = await eventually(mailed, f"{subject!r} to {address}")
        assert len(found) == 1 and "Findings" in text_of(found[0])
    assert_no_secrets(system, owner_address[owner], "victor.almeida@example.com")


async def test_finding_outcome_and_approval_by_a_second_person(system, story):
    needs(story, "statements")
    case_id = story["case_id"]
    inv = "/investigation"
    await post(
        AS_HELEN, system, case_id, f"{inv}/findings",
        {"allegation_id": story["allegation_id"], "finding": "substantiated",
         "reasoning": REASONING},
        201,
    )  # fmt: skip
    story["found_at"] = datetime.now(UTC)
    await asyncio.sleep(1.1)  # the audit replay below looks at an instant between the two
    await post(AS_HELEN, system, case_id, "/stage", {"stage": "outcome"})
    await stage_becomes(system, case_id, "outcome")
    await post(
        AS_HELEN, system, case_id, f"{inv}/outcome",
        {"summary": "The allegation is substantiated.",
         "actions": [{"kind": "final_warning", "description": "Final written warning",
                      "concerns_employee_id": "E-7100"},
                     {"kind": "training", "description": "Respect at work training for the dock"}]},
        201,
    )  # fmt: skip

    # Helen (who decided it) is not among the approvers the policy names: routing's reason
    # is on the outcome.
    await post(AS_HELEN, system, case_id, f"{inv}/outcome/approval", {})

    async def approval_refused() -> str | None:
        async with client(system, AS_VICTOR) as c:
            outcome = (await c.get(f"/api/v1/cases/{case_id}{inv}")).json()["outcome"]
        return outcome and outcome.get("approval_refused_reason")

    reason = await eventually(approval_refused, "the approval refused")
    assert "may not approve" in reason and "M-9001" in reason, reason
    await post(AS_DANA, system, case_id, f"{inv}/outcome/approval", {})
    view = await stage_becomes(system, case_id, "appeal_window")
    assert view["process"]["stage_label"] == "Appeal window"

    async def told(address: str) -> list[EmailMessage]:
        return [m for m in mails_to(system, address) if "appeal" in text_of(m).lower()]

    for address in ("sam.rivera@example.com", "jordan.blake@example.com"):
        await eventually(lambda a=address: told(a), f"the outcome mail to {address}")
    assert_no_secrets(system, "sam.rivera@example.com", "jordan.blake@example.com")
    async with client(system, AS_JORDAN) as c:
        letter = (await c.get(f"/api/v1/cases/{case_id}{inv}/mine")).text
    assert "Final written warning" in letter and "substantiated" in letter
    async with client(system, AS_SAM) as c:
        letter = (await c.get(f"/api/v1/cases/{case_id}{inv}/mine")).text
    # The complainant learns the finding and the general action, not the respondent's sanction.
    assert "substantiated" in letter and "Respect at work training" in letter
    assert "Final written warning" not in letter
    story["approved"] = True


async def test_an_appeal_is_heard_by_someone_not_yet_involved(system, story):
    needs(story, "approved")
    case_id = story["case_id"]
    inv = "/investigation"
    await post(AS_JORDAN, system, case_id, f"{inv}/appeal",
               {"grounds": "The witnesses were not on my shift."}, 201)  # fmt: skip
    await stage_becomes(system, case_id, "appeal")
    since = datetime.now(UTC)
    await post(
        AS_VICTOR, system, case_id, "/process-roles",
        {"role": "appeal_hearer", "staff_id": "A-3001"},
    )  # fmt: skip
    await refused_with(system, case_id, since, "involved")
    await post(
        AS_VICTOR, system, case_id, "/process-roles",
        {"role": "appeal_hearer", "staff_id": "M-9002"},
    )  # fmt: skip

    async def victor_hears() -> bool:
        return await role_holder(system, case_id, "appeal_hearer") == "M-9002"

    await eventually(victor_hears, "Victor as appeal hearer")
    await post(
        AS_VICTOR, system, case_id, f"{inv}/appeal/decision",
        {"decision": "dismissed", "reasoning": "The rota shows both on the same shift."},
        201,
    )  # fmt: skip
    # Closing needs an ending the process allows, and a reason.
    await post(
        AS_VICTOR, system, case_id, "/stage",
        {"stage": "closed", "ending": "outcome_final", "reason": "Appeal dismissed."},
    )  # fmt: skip
    view = await stage_becomes(system, case_id, "closed")
    assert view["process"]["ending"] == "outcome_final"
    story["closed"] = True


async def test_the_audit_replay_and_the_case_file_hold_the_process(system, story):
    needs(story, "closed", "found_at")
    case_id = story["case_id"]
    now = await audit_process_reaches(system, case_id, "closed")
    async with client(system, AS_AUDITOR, "audit") as c:
        assert now["ending"] == "outcome_final"
        assert now["outcome"]["approved_by"] == "M-9001"
        assert [s["stage"] for s in now["stages"]] == [
            "planning", "interviews", "findings", "outcome", "appeal_window", "appeal", "closed"
        ]  # fmt: skip
        at = (story["found_at"] + timedelta(milliseconds=500)).isoformat()
        then = (await c.get(f"/api/v1/audit/cases/{case_id}/state", params={"at": at})).json()
        process = then["state"]["process"]
        assert process["stage"] == "findings"
        assert process["allegations"][story["allegation_id"]]["finding"] == "substantiated"
        assert process["outcome"] is None

        exported = await c.post(f"/api/v1/audit/cases/{case_id}/export")
        assert exported.status_code in (200, 201), exported.text
    html = exported.json()["html"]
    for expected in (SAM_SAYS, JORDAN_SAYS, REASONING, "outcome final", "Final written warning"):
        assert expected in html, expected
    assert exported.json()["document"]["state"]["process"]["ending"] == "outcome_final"


@needs_chromium
async def test_screenshots_for_the_investigator_and_each_party(system, story, tmp_path):
    needs(story, "approved")
    case_id = story["case_id"]
    page = f"/portal/cases/{case_id}/investigation"
    await screenshots(
        system,
        tmp_path,
        [
            ("Helen Carter", page, SAM_SAYS, (), "investigation-flow-investigator"),
            ("Jordan Blake", f"{page}/mine", JORDAN_SAYS, (SAM_SAYS,),
             "investigation-flow-respondent"),
            ("Sam Rivera", f"{page}/mine", SAM_SAYS, (JORDAN_SAYS,),
             "investigation-flow-complainant"),
        ],
    )  # fmt: skip
