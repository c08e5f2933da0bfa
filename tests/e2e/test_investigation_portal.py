"""The investigation in the portal, in Chromium without JavaScript, from the sign-in page:
the investigator (Victor, HR manager) records the facts on the investigation page; the
respondent (Jordan) finds it under "Investigations concerning you", sees their own
statement and never the complainant's, confirms it and appeals; the complainant (Sam)
reaches theirs from the case page. Routing's process decisions are published as routing
would (tests/e2e/test_investigations.py). Screenshots go to docs/screenshots/ only with
HRCASE_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import contextlib
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from hrcase.services import QUEUES
from shared.events import CaseOutcomeApproved, Person
from tests.e2e.test_investigations import (
    as_routing,
    enter_stage,
    eventually,
    put_in_process,
    raise_case,
    staff_view,
)
from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, PNG_MAGIC, needs_chromium
from tests.support.bus import capture_events
from tests.support.processes import policy_without_processes
from tests.support.system import running_system

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PDF = b"%PDF-1.4\n% interview notes\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir, tmp_path_factory):
    # Routing routes the cases but, with no processes in its policy, leaves the process
    # decisions to this module, which publishes them as routing would.
    policy = policy_without_processes(tmp_path_factory.mktemp("policy") / "policy.yaml")
    with running_system(
        database_url,
        rabbitmq_url,
        logs_dir / "investigation-portal",
        only=("intake", "routing"),
        ROUTING_POLICY_FILE=str(policy),
    ) as running:
        yield running


@pytest.fixture(scope="module", autouse=True)
async def purge_after(amqp, system):
    yield
    async with amqp.channel() as channel:
        for name in (*QUEUES["notifications"].queue_names, *QUEUES["audit"].queue_names):
            with contextlib.suppress(Exception):
                await (await channel.get_queue(name, ensure=False)).purge()


def keep(shot: Path) -> None:
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    if os.environ.get("HRCASE_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / shot.name).write_bytes(data)


async def signed_in(browser: Any, system: Any, who: str, landing: str) -> Any:
    context = await browser.new_context(base_url=system.url("intake"), java_script_enabled=False)
    page = await context.new_page()
    await page.goto("/portal/sign-in")
    await page.get_by_label(re.compile(who)).check()
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(landing))
    return page


async def submit(page: Any, form_action: str, button: str) -> None:
    await page.locator(f"form[action$='{form_action}']").get_by_role("button", name=button).click()


async def investigator_records(page: Any, case_id: str) -> None:
    # The allegation: first without a summary (the page says what to fix), then whole.
    await page.locator("#allegation_type").select_option("harassment")
    await page.locator("#respondent_employee_id").fill("E-7100")
    await page.locator("#respondent_name").fill("Jordan Blake")
    await submit(page, "/investigation/allegations", "Record allegation")
    assert "summary" in (await page.locator(".alert").inner_text()).lower()
    assert await page.locator("#respondent_employee_id").input_value() == "E-7100"
    await page.locator("#summary").fill("Comments about Sam's appearance in team meetings.")
    await submit(page, "/investigation/allegations", "Record allegation")
    await page.wait_for_url(re.compile(r"done=allegation"))
    assert "Jordan Blake (E-7100)" in await page.locator("#allegations").inner_text()

    await page.locator("#interviewee_role").select_option("respondent")
    await page.locator("#interviewee_name").fill("Jordan Blake")
    await page.locator("#interviewee_email").fill("jordan.blake@example.com")
    await page.locator("#interviewee_employee_id").fill("E-7100")
    when = (datetime.now(UTC) + timedelta(days=8)).replace(hour=10, minute=0)
    await page.locator("#scheduled_for").fill(when.strftime("%Y-%m-%dT%H:%M"))
    await page.locator("#time_zone").fill("Europe/London")
    await page.locator("#location").fill("Room 4.2, 1 Harbour Street")
    await submit(page, "/investigation/interviews", "Schedule interview")
    await page.wait_for_url(re.compile(r"done=interview"))

    for role, name, employee_id, words in (
        ("complainant", "Sam Rivera", "E-7001", "COMPLAINANT-TEXT: in front of the team."),
        ("respondent", "Jordan Blake", "E-7100", "RESPONDENT-TEXT: I never said that."),
    ):
        await page.locator("#given_by_role").select_option(role)
        await page.locator("#given_by_name").fill(name)
        await page.locator("#given_by_employee_id").fill(employee_id)
        await page.locator("#text").fill(words)
        await page.locator("form[action$='/investigation/statements'] input[type=checkbox]").check()
        await submit(page, "/investigation/statements", "Record statement")
        await page.wait_for_url(re.compile(r"done=statement"))

    await page.locator("#evidence_description").fill("Notes of the team meeting")
    await page.locator("#source").fill("Sam Rivera")
    await page.set_input_files(
        "#file", files=[{"name": "notes.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    await submit(page, "/investigation/evidence", "Add evidence")
    await page.wait_for_url(re.compile(r"done=evidence"))
    assert "notes.pdf" in await page.locator("#evidence-log").inner_text()

    # A finding before the findings stage: the page gives routing's stage rule.
    await page.locator("#reasoning").fill("Two witnesses agree.")
    await submit(page, "/investigation/findings", "Record finding")
    assert "findings" in await page.locator("#investigation-refusal").inner_text()


@needs_chromium
async def test_investigator_and_parties_in_the_portal(amqp, system, tmp_path):
    from playwright.async_api import async_playwright

    case_id, reference = await raise_case(system)
    await put_in_process(amqp, system, case_id, reference, "investigation")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        victor = await signed_in(browser, system, "Victor Almeida", r"/portal/work-queue$")
        await victor.goto(f"/portal/cases/{case_id}")
        await victor.get_by_role("link", name="Open the investigation").click()
        await victor.wait_for_url(f"**/portal/cases/{case_id}/investigation")
        await investigator_records(victor, case_id)

        await enter_stage(amqp, system, case_id, reference, "findings")
        page_url = f"/portal/cases/{case_id}/investigation"
        await victor.goto(page_url)  # not a reload: that would post the refused form again
        await victor.locator("#reasoning").fill("JORDAN-REASONING: two witnesses agree.")
        await victor.locator("#finding_value").select_option("substantiated")
        await submit(victor, "/investigation/findings", "Record finding")
        await victor.wait_for_url(re.compile(r"done=finding"))
        findings = await victor.locator("#findings").inner_text()
        assert "JORDAN-REASONING" in findings and "superseded" not in findings
        await enter_stage(amqp, system, case_id, reference, "outcome")
        await victor.goto(page_url)
        await victor.locator("#outcome_summary").fill("Final written warning; team training.")
        await victor.locator("#action_kind_0").select_option("final_warning")
        await victor.locator("#action_description_0").fill("Final written warning")
        await victor.locator("#action_concerns_0").fill("E-7100")
        await victor.locator("#action_kind_1").select_option("training")
        await victor.locator("#action_description_1").fill("Dignity at work training")
        await submit(victor, "/investigation/outcome", "Decide outcome")
        await victor.wait_for_url(re.compile(r"done=outcome"))
        async with capture_events(amqp) as captured:
            await submit(victor, "/investigation/outcome/approval", "Approve this outcome")
            await victor.wait_for_url(re.compile(r"done=approval"))
            request = await captured.wait(
                lambda e: (
                    e["event_type"] == "case.outcome_approval_requested" and e["case_id"] == case_id
                )
            )
        assert request["payload"]["approver_id"] == "M-9002"
        await as_routing(
            amqp,
            case_id,
            CaseOutcomeApproved(
                reference=reference,
                outcome_id=UUID(request["payload"]["outcome_id"]),
                approver=Person(
                    id="M-9001", name="Dana Whitfield", email="dana.whitfield@example.com"
                ),
                decided_by="M-9002",
                appeal_window_ends_at=datetime.now(UTC) + timedelta(days=14),
            ),
        )

        async def approved() -> bool:
            return bool(
                (await staff_view(system, case_id))["outcome"]["approval_state"] == "approved"
            )

        await eventually(approved, "the outcome approved")
        await victor.goto(page_url)
        assert "Approved" in await victor.locator("#outcome-state").inner_text()
        shot = tmp_path / "investigation-investigator.png"
        await victor.screenshot(path=str(shot), full_page=True)
        keep(shot)

        # The respondent: from their home, never the complainant's statement.
        jordan = await signed_in(browser, system, "Jordan Blake", r"/portal/cases$")
        section = jordan.locator("#investigations-concerning-you")
        assert await section.count() == 1
        await jordan.get_by_role("link", name=f"Investigation {reference}").click()
        await jordan.wait_for_url(f"**/portal/cases/{case_id}/investigation/mine")
        body = await jordan.locator("main").inner_text()
        assert "RESPONDENT-TEXT" in body and "COMPLAINANT-TEXT" not in body
        assert "notes.pdf" not in body and "Notes of the team meeting" not in body
        assert "JORDAN-REASONING" in body and "Final written warning" in body
        assert "Dignity at work training" in body
        assert "You may bring a companion" in body
        await jordan.get_by_role("button", name="Confirm it is accurate").click()
        await jordan.wait_for_url(re.compile(r"done=confirmed"))
        assert "You confirmed it" in await jordan.locator("#statements").inner_text()
        shot = tmp_path / "investigation-respondent.png"
        await jordan.screenshot(path=str(shot), full_page=True)
        keep(shot)
        await jordan.locator("#grounds").fill("The witnesses were not at the meeting.")
        await jordan.get_by_role("button", name="Lodge appeal").click()
        await jordan.wait_for_url(re.compile(r"done=appeal"))
        assert "It is being heard" in await jordan.locator("#appeal").inner_text()
        # The complainant's case page itself is not theirs to see.
        answer = await jordan.goto(f"/portal/cases/{case_id}")
        assert answer is not None and answer.status == 404

        # The complainant: from their case page, their own statement only.
        sam = await signed_in(browser, system, "Sam Rivera", r"/portal/cases$")
        await sam.goto(f"/portal/cases/{case_id}")
        await sam.get_by_role("link", name=re.compile("Your investigation")).click()
        await sam.wait_for_url(f"**/portal/cases/{case_id}/investigation/mine")
        body = await sam.locator("main").inner_text()
        assert "COMPLAINANT-TEXT" in body and "RESPONDENT-TEXT" not in body
        assert "Final written warning" not in body and "Dignity at work training" in body
        shot = tmp_path / "investigation-complainant.png"
        await sam.screenshot(path=str(shot), full_page=True)
        keep(shot)

        # Someone else: the 404 page.
        alex = await signed_in(browser, system, "Alex Chen", r"/portal/cases$")
        answer = await alex.goto(f"/portal/cases/{case_id}/investigation/mine")
        assert answer is not None and answer.status == 404
        await browser.close()
