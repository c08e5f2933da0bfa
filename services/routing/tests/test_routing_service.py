"""The routing process on the real broker and database: ownership, conflicts, clocks, timers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from services.routing.tests.harness import (
    event,
    fast_policy,
    publish,
    purge_other_queues,
    submission,
    tapped,
)
from shared.envelope import utcnow
from shared.events import (
    CaseAssignmentRequested,
    CaseMessageReceived,
    CaseRecategorisationRequested,
    CaseStatusChangeRequested,
    DirectoryEmployeeUpdated,
    InjuryDetails,
)
from tests.support.bus import declare_topology, find_dead_letter
from tests.support.infra import ROOT, ServiceProcess, free_port, service_env

# E-100 (respondent) reports to A-1002 (an HR Operations agent), who reports to A-1001,
# the team's lead: both must stay off the case and off its escalations.
DIRECTORY = """employee_id,name,email,manager_id,department,active
A-1001,Priya Shah,priya.shah@example.com,,HR,true
A-1002,Tom Becker,tom.becker@example.com,A-1001,HR,true
E-100,Riley Stone,riley.stone@example.com,A-1002,Warehouse,true
E-500,Rae Kim,rae.kim@example.com,E-100,Warehouse,yes
"""
CONFLICTED = {"E-100", "A-1002", "A-1001"}


@pytest.fixture(scope="module")
async def routing(database_url, rabbitmq_url, amqp, logs_dir, tmp_path_factory):
    await declare_topology(amqp)
    policy = fast_policy(tmp_path_factory.mktemp("policy") / "fast.yaml")
    csv_file = tmp_path_factory.mktemp("directory") / "employees.csv"
    csv_file.write_text(DIRECTORY, encoding="utf-8")
    env = service_env(
        database_url,
        rabbitmq_url,
        ROUTING_POLICY_FILE=str(policy),
        ROUTING_TIMER_INTERVAL="0.2",
        ROUTING_HTTP_PORT=str(free_port()),
    )
    imported = subprocess.run(  # noqa: ASYNC221 (setup, before any service runs)
        [sys.executable, "-m", "hrcase.cli", "routing", "directory", "import", str(csv_file)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert imported.returncode == 0, imported.stderr
    assert "imported 4 employees" in imported.stdout
    process = ServiceProcess(
        "routing", env, int(env["ROUTING_HTTP_PORT"]), logs_dir / "routing-it.log"
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
        await purge_other_queues(amqp)


async def test_policy_load_is_announced_once_per_content(routing, admin_pool, amqp):
    # Other suites in the same run may load other policy files: compare before and after.
    loads_before = await admin_pool.fetchval("SELECT count(*) FROM routing.policy_loads")
    assert loads_before >= 1
    async with tapped(amqp) as tap:
        routing.stop()
        routing.start()
        case_id, submitted = submission()
        await publish(amqp, submitted)
        await tap.wait(lambda: tap.of(case_id, "case.assigned"), what="routing after restart")
    assert not [e for e in tap.events if e.event_type == "routing.policy_loaded"]
    assert await admin_pool.fetchval("SELECT count(*) FROM routing.policy_loads") == loads_before


async def test_respondent_and_management_chain_are_never_owner_or_escalation_target(
    routing, amqp, admin_pool
):
    async with tapped(amqp) as tap:
        cases = [submission(f"Payslip wrong {i}", respondents=("E-100",)) for i in range(4)]
        await publish(amqp, *(envelope for _, envelope in cases))
        ids = [case_id for case_id, _ in cases]

        def escalated_everywhere():
            return all(len(tap.of(c, "case.escalated")) >= 2 for c in ids)

        await tap.wait(escalated_everywhere, timeout=30, what="escalations of every case")
    for case_id in ids:
        (assigned,) = tap.of(case_id, "case.assigned")
        assert assigned.payload["owner"]["id"] == "A-1003"
        (routed,) = tap.of(case_id, "case.routed")
        assert routed.payload["priority"] == "P4"
        for escalation in tap.of(case_id, "case.escalated"):
            assert escalation.payload["escalated_to"]["id"] not in CONFLICTED
        levels = sorted(e.payload["level"] for e in tap.of(case_id, "case.escalated"))
        # standard ladder: team lead (A-1001, conflicted) passes level 1 on to level 2
        assert levels[0] == 2
        kinds = tap.distinct(case_id)
        assert kinds["case.sla_warning"] == 1 and kinds["case.sla_breached"] == 1
        warning = tap.of(case_id, "case.sla_warning")[0]
        assert warning.correlation_id == cases[ids.index(case_id)][1].correlation_id
    fired = await admin_pool.fetchval(
        "SELECT count(*) FROM routing.timers WHERE case_id = ANY($1::uuid[])"
        " AND kind = 'breach' AND fired_at IS NOT NULL",
        ids,
    )
    assert fired == len(ids)  # first response only: resolution (2h) is far away


async def test_waiting_on_employee_pauses_and_the_reply_resumes(routing, amqp, admin_pool):
    case_id, submitted = submission("Question about the remote work policy")
    async with tapped(amqp) as tap:
        await publish(amqp, submitted)
        await tap.wait(lambda: tap.of(case_id, "case.assigned"), what="routed")
        await publish(
            amqp,
            event(
                CaseStatusChangeRequested(to_status="waiting_on_employee", reason="asked"), case_id
            ),
        )
        await tap.wait(lambda: len(tap.of(case_id, "case.status_changed")) == 2, what="paused")
        clocks = await admin_pool.fetch(
            "SELECT clock, running_since, due_at FROM routing.sla_clocks WHERE case_id = $1",
            case_id,
        )
        assert all(c["running_since"] is None and c["due_at"] is None for c in clocks)
        pending = await admin_pool.fetchval(
            "SELECT count(*) FROM routing.timers WHERE case_id = $1 AND fired_at IS NULL", case_id
        )
        assert pending == 0
        reply = CaseMessageReceived(
            reference=submitted.payload["reference"],
            channel="portal",
            sender_role="reporter",
            body="Here is the form",
            received_at=utcnow(),
        )
        await publish(amqp, event(reply, case_id))
        await tap.wait(lambda: len(tap.of(case_id, "case.status_changed")) == 3, what="resumed")
    moves = [
        (e.payload["from_status"], e.payload["to_status"])
        for e in tap.of(case_id, "case.status_changed")
    ]
    assert moves == [
        ("new", "assigned"),
        ("assigned", "waiting_on_employee"),
        ("waiting_on_employee", "in_progress"),
    ]
    running = await admin_pool.fetchval(
        "SELECT count(*) FROM routing.sla_clocks WHERE case_id = $1 AND running_since IS NOT NULL",
        case_id,
    )
    assert running == 2


async def test_requests_delivered_out_of_order_keep_the_latest_intent(routing, amqp, admin_pool):
    """What another replica may do: apply a case's older request after a newer one."""
    case_id, submitted = submission("Leave balance question")
    async with tapped(amqp) as tap:
        await publish(amqp, submitted)
        await tap.wait(lambda: tap.of(case_id, "case.assigned"), what="routed")
        pause = event(CaseStatusChangeRequested(to_status="waiting_on_employee"), case_id)
        reply = event(
            CaseMessageReceived(
                reference=submitted.payload["reference"],
                channel="email",
                sender_role="reporter",
                body="answer",
                received_at=utcnow(),
            ),
            case_id,
        )
        resolve = event(CaseStatusChangeRequested(to_status="resolved"), case_id)
        reopen_old = event(CaseStatusChangeRequested(to_status="in_progress"), case_id)
        # made in the order pause, reply, reopen_old(!), resolve; delivered reply first, then
        # the pause (superseded by the reply), then resolve, then the older in_progress.
        reopen_old = reopen_old.model_copy(update={"occurred_at": pause.occurred_at})
        await publish(amqp, reply, pause, resolve, reopen_old)

        async def settled() -> object:
            return await admin_pool.fetchval(
                "SELECT count(*) FROM routing.inbox WHERE event_id = ANY($1::uuid[])",
                [reply.event_id, pause.event_id, resolve.event_id, reopen_old.event_id],
            )

        for _ in range(100):
            if await settled() == 4:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
    status = await admin_pool.fetchval(
        "SELECT status FROM routing.cases WHERE case_id = $1", case_id
    )
    assert status == "resolved"
    moves = [
        (e.payload["from_status"], e.payload["to_status"])
        for e in tap.of(case_id, "case.status_changed")
    ]
    assert ("assigned", "waiting_on_employee") not in moves
    assert moves[-1] == ("assigned", "resolved")
    # Nothing superseded vanishes: each request not applied is refused, with the reason.
    refused = {
        e.payload["request_event_id"]: e.payload["reason"]
        for e in tap.of(case_id, "case.request_refused")
    }
    assert "employee replied" in refused[str(pause.event_id)]
    assert refused[str(reopen_old.event_id)].startswith("superseded")


async def test_manual_assignment_refuses_a_conflicted_person_and_records_the_previous_owner(
    routing, amqp, admin_pool
):
    case_id, submitted = submission("Payslip deduction", respondents=("E-100",))
    async with tapped(amqp) as tap:
        await publish(amqp, submitted)
        await tap.wait(lambda: tap.of(case_id, "case.assigned"), what="routed")
        conflicted = event(CaseAssignmentRequested(owner_id="A-1002", reason="knows it"), case_id)
        await publish(amqp, conflicted)
        # A business refusal goes back to the requester; the DLQ is kept for faults.
        (refusal,) = await tap.wait(
            lambda: tap.of(case_id, "case.request_refused"), what="assignment refused"
        )
        assert refusal.payload["request_event_id"] == str(conflicted.event_id)
        assert "conflict of interest" in refusal.payload["reason"]
        fine = event(CaseAssignmentRequested(owner_id="A-2001", reason="needs ER"), case_id)
        await publish(amqp, fine)
        await tap.wait(lambda: len(tap.of(case_id, "case.assigned")) == 2, what="reassigned")
    manual = tap.of(case_id, "case.assigned")[-1].payload
    assert manual["owner"]["id"] == "A-2001" and manual["previous_owner_id"] == "A-1003"
    assert manual["strategy"] == "manual" and manual["team"] == "employee_relations"
    row = await admin_pool.fetchrow(
        "SELECT owner_id, team FROM routing.cases WHERE case_id = $1", case_id
    )
    assert dict(row) == {"owner_id": "A-2001", "team": "employee_relations"}


async def test_recategorisation_reruns_priority_and_sla_and_moves_the_team(routing, amqp):
    case_id, submitted = submission("Payslip question", urgent=True)
    async with tapped(amqp) as tap:
        await publish(amqp, submitted)
        await tap.wait(lambda: tap.of(case_id, "case.assigned"), what="routed")
        fix = CaseRecategorisationRequested(category="grievance", reason="about the workload")
        await publish(amqp, event(fix, case_id))
        await tap.wait(lambda: len(tap.of(case_id, "case.assigned")) == 2, what="re-routed")
    first, second = (e.payload for e in tap.of(case_id, "case.routed"))
    assert (first["category"], first["priority"]) == ("payroll_query", "P2")  # urgent flag
    assert (second["category"], second["sensitivity"], second["priority"]) == (
        "grievance",
        "confidential",
        "P2",
    )
    assert second["priority_reasons"][0].startswith("re-categorised from payroll_query")
    # grievance defaults to P3; the reporter's urgent flag still raises it
    assert "raised to P2: the reporter marked it urgent" in second["priority_reasons"]
    reassigned = tap.of(case_id, "case.assigned")[-1].payload
    assert reassigned["team"] == "employee_relations"
    assert reassigned["owner"]["id"] in {"A-2001", "A-2002"}
    assert (
        reassigned["previous_owner_id"]
        == tap.of(case_id, "case.assigned")[0].payload["owner"]["id"]
    )


async def test_serious_injury_is_p1_with_a_mandatory_case_conference(routing, amqp):
    case_id, submitted = submission(
        "I slipped in the warehouse",
        injury=InjuryDetails(serious=True, suitable_employment_available=False),
    )
    async with tapped(amqp) as tap:
        await publish(amqp, submitted)
        await tap.wait(lambda: tap.of(case_id, "conference.required"), what="conference")
    (routed,) = tap.of(case_id, "case.routed")
    assert routed.payload["priority"] == "P1"
    assert "raised to P1: serious workplace injury" in routed.payload["priority_reasons"]
    (conference,) = tap.of(case_id, "conference.required")
    assert conference.payload["reasons"] == [
        "serious injury",
        "no suitable employment with the pre-injury employer",
    ]
    assert tap.of(case_id, "case.assigned")[0].payload["owner"]["id"] in {"A-4001", "A-4002"}


async def test_an_inactive_hr_member_gets_no_new_cases(routing, amqp, admin_pool):
    leaver = DirectoryEmployeeUpdated(employee_id="A-2002", name="Lukas Meyer", active=False)
    await publish(amqp, event(leaver, None))
    for _ in range(100):
        if await admin_pool.fetchval(
            "SELECT NOT active FROM routing.employees WHERE employee_id = 'A-2002'"
        ):
            break
        await asyncio.sleep(0.1)
    cases = [submission(f"My contract and notice period changed {i}") for i in range(3)]
    async with tapped(amqp) as tap:
        await publish(amqp, *(e for _, e in cases))
        await tap.wait(lambda: all(tap.of(c, "case.assigned") for c, _ in cases), what="routed")
    owners = {tap.of(c, "case.assigned")[0].payload["owner"]["id"] for c, _ in cases}
    assert owners == {"A-2001"}
    back = DirectoryEmployeeUpdated(employee_id="A-2002", name="Lukas Meyer", active=True)
    await publish(amqp, event(back, None))
    for _ in range(100):
        if await admin_pool.fetchval(
            "SELECT active FROM routing.employees WHERE employee_id = 'A-2002'"
        ):
            break
        await asyncio.sleep(0.1)


async def test_directory_updates_change_who_is_conflicted(routing, amqp, admin_pool):
    # A-1003 becomes the respondent's manager: nobody in HR Operations is left.
    update = DirectoryEmployeeUpdated(
        employee_id="E-200", name="Nico Park", manager_id="A-1003", department="Sales"
    )
    await publish(amqp, event(update, None))

    async def stored() -> object:
        return await admin_pool.fetchval(
            "SELECT manager_id FROM routing.employees WHERE employee_id = 'E-200'"
        )

    for _ in range(100):
        if await stored():
            break
        await asyncio.sleep(0.1)
    case_id, submitted = submission("Payslip wrong again", respondents=("E-100", "E-200"))
    async with tapped(amqp) as tap:
        await publish(amqp, submitted)
        await tap.wait(lambda: tap.of(case_id, "case.assigned"), what="routed")
    (assigned,) = tap.of(case_id, "case.assigned")
    # Every HR Operations member is conflicted: the fallback team takes it.
    assert assigned.payload["team"] == "employee_relations"
    assert assigned.payload["owner"]["id"] in {"A-2001", "A-2002"}


def test_directory_import_refuses_a_bad_file_and_changes_nothing(routing, tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "employee_id,name,email,manager_id,department,active\n"
        "E-1,Ok,ok@example.com,,X,true\nE-2,,x@example.com,,X,maybe\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "hrcase.cli", "routing", "directory", "import", str(bad)],
        cwd=ROOT,
        env=routing.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{bad}:3:" in result.stderr


def test_a_full_export_marks_leavers_inactive(routing, tmp_path: Path):
    export = tmp_path / "full.csv"
    # Without E-500; E-200 and A-2002 came from directory events earlier in this module.
    export.write_text("\n".join(DIRECTORY.splitlines()[:-1]) + "\n", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hrcase.cli",
            "routing",
            "directory",
            "import",
            "--full-export",
            str(export),
        ],
        cwd=ROOT,
        env=routing.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "marked 3 employees missing from the export inactive" in result.stdout


async def test_a_case_with_every_candidate_conflicted_out_asks_a_person_to_assign(
    routing, amqp, admin_pool
):
    # A grievance about HR itself: HR Operations (A-1001/A-1002 manage E-100; A-1003 is
    # named) and the fallback team (A-2001, A-2002 named) are all conflicted out.
    respondents = ("E-100", "A-1003", "A-2001", "A-2002")
    case_id, submitted = submission("Payslip withheld by HR", respondents=respondents)
    async with tapped(amqp) as tap:
        await publish(amqp, submitted)
        (needed,) = await tap.wait(
            lambda: tap.of(case_id, "case.assignment_needed"), what="assignment needed"
        )
        await tap.wait(lambda: tap.of(case_id, "case.status_changed"), what="status")
        # A business event, not a fault: nothing for this case in routing's DLQ.
        assert (
            await find_dead_letter(amqp, "routing.events.dlq", str(submitted.event_id), timeout=2)
            is None
        )
        assert not tap.of(case_id, "case.assigned")
        (routed,) = tap.of(case_id, "case.routed")
        assert routed.payload["category"] == "payroll_query"
        (status,) = tap.of(case_id, "case.status_changed")
        assert (status.payload["from_status"], status.payload["to_status"]) == ("new", "routed")
        payload = needed.payload
        assert payload["team"] == "hr_operations"
        assert "conflicted out" in payload["reason"]
        # HR managers are asked (none conflicted here); no respondent or reporter in it.
        assert {p["id"] for p in payload["notify"]} == {"M-9001", "M-9002", "M-9003"}
        text = needed.to_json_bytes().decode()
        for personal in (*respondents, "E-500", "Rae Kim", "rae.kim", "withheld"):
            assert personal not in text
        row = await admin_pool.fetchrow(
            "SELECT owner_id, status FROM routing.cases WHERE case_id = $1", case_id
        )
        assert dict(row) == {"owner_id": None, "status": "routed"}

        # An HR manager assigns a person with no conflict: the case is owned from then on.
        fine = event(CaseAssignmentRequested(owner_id="A-3001", reason="no conflict"), case_id)
        await publish(amqp, fine)
        (assigned,) = await tap.wait(lambda: tap.of(case_id, "case.assigned"), what="assigned")
        await tap.wait(lambda: len(tap.of(case_id, "case.status_changed")) == 2, what="status")
    assert assigned.payload["owner"]["id"] == "A-3001"
    assert assigned.payload["previous_owner_id"] is None
    moved = tap.of(case_id, "case.status_changed")[-1].payload
    assert (moved["from_status"], moved["to_status"]) == ("routed", "assigned")
    row = await admin_pool.fetchrow(
        "SELECT owner_id, status FROM routing.cases WHERE case_id = $1", case_id
    )
    assert dict(row) == {"owner_id": "A-3001", "status": "assigned"}


async def test_recategorising_into_a_team_with_every_member_conflicted_is_refused(
    routing, amqp, admin_pool
):
    case_id, submitted = submission("Payslip question", respondents=("A-2001", "A-2002"))
    async with tapped(amqp) as tap:
        await publish(amqp, submitted)
        (first,) = await tap.wait(lambda: tap.of(case_id, "case.assigned"), what="routed")
        # ER is the grievance team and the conflict fallback: nobody is left.
        request = event(
            CaseRecategorisationRequested(category="grievance", reason="a grievance"), case_id
        )
        await publish(amqp, request)
        (refusal,) = await tap.wait(
            lambda: tap.of(case_id, "case.request_refused"), what="recategorisation refused"
        )
    assert refusal.payload["request_event_id"] == str(request.event_id)
    assert "conflicted out" in refusal.payload["reason"]
    assert len(tap.of(case_id, "case.assigned")) == 1
    owner = await admin_pool.fetchval(
        "SELECT owner_id FROM routing.cases WHERE case_id = $1", case_id
    )
    assert owner == first.payload["owner"]["id"]


async def test_an_unowned_case_recategorised_to_a_team_with_someone_eligible_is_owned(
    routing, amqp, admin_pool
):
    respondents = ("E-100", "A-1003", "A-2001", "A-2002")
    case_id, submitted = submission("Payslip cut last month", respondents=respondents)
    async with tapped(amqp) as tap:
        await publish(amqp, submitted)
        await tap.wait(lambda: tap.of(case_id, "case.assignment_needed"), what="needs a person")
        await tap.wait(lambda: tap.of(case_id, "case.status_changed"), what="routed")
        fix = CaseRecategorisationRequested(category="workplace_injury", reason="an injury")
        await publish(amqp, event(fix, case_id))
        (assigned,) = await tap.wait(lambda: tap.of(case_id, "case.assigned"), what="owned")
        await tap.wait(lambda: len(tap.of(case_id, "case.status_changed")) == 2, what="status")
    assert assigned.payload["team"] == "injury_management"
    assert assigned.payload["previous_owner_id"] is None
    moved = tap.of(case_id, "case.status_changed")[-1].payload
    assert (moved["from_status"], moved["to_status"]) == ("routed", "assigned")
    row = await admin_pool.fetchrow(
        "SELECT owner_id, status FROM routing.cases WHERE case_id = $1", case_id
    )
    assert row["status"] == "assigned" and row["owner_id"] == assigned.payload["owner"]["id"]
