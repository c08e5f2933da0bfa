"""Processes on the real broker and database: the category's process when a case is
routed, staff's requests (switch, stage moves, process roles, outcome approval) decided
or refused naming the rule, stage requirements judged from intake's facts, `enter_on`
moves, and the timers (stage clocks, the appeal window) fired once across two replicas.

The policy is the shipped one with round-the-clock calendars (a working day is a day);
the investigation's approvers are widened (the team lead, the investigator A-3001) so
each approval rule can be shown refusing someone the policy would otherwise accept.
Time "passes" by moving a clock's instant in routing's own table, as the conference
tests move an action's due instant.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import yaml

from services.routing.tests.harness import (
    event,
    fast_policy,
    publish,
    purge_other_queues,
    submission,
    tapped,
)
from shared.envelope import Envelope, utcnow
from shared.events import (
    AgreementInForce,
    CaseAppealDecided,
    CaseAppealLodged,
    CaseConflictDeclared,
    CaseOutcomeApprovalRequested,
    CaseOutcomeDecided,
    CaseProcessChangeRequested,
    CaseProcessRoleAssignmentRequested,
    CaseRecategorisationRequested,
    CaseStageChangeRequested,
    DirectoryEmployeeUpdated,
    EventPayload,
    InvestigationAllegationRecorded,
    InvestigationFindingRecorded,
    InvestigationStatementRecorded,
    MediationAssessmentRecorded,
    MediationGroundRulesAccepted,
    MediationGroundRulesProposed,
    MediationMeetingHeld,
    MediationParty,
    OutcomeAction,
)
from tests.support.bus import declare_topology
from tests.support.infra import ServiceProcess, free_port, own_database, service_env

LONDON = ZoneInfo("Europe/London")  # the investigations desk's zone (round the clock here)
RESPONDENT = "E-7701"  # managed by A-3002 (an investigator) in this test's directory
EMPLOYER_REP = "E-7703"  # managed by A-2002 (a case manager)
REPORTER = "E-500"  # the harness's reporter


def process_policy(path: Path) -> Path:
    fast_policy(path, first_response_hours=50)
    raw = copy.deepcopy(yaml.safe_load(path.read_text(encoding="utf-8")))
    raw["processes"]["investigation"]["approval_by"] = ["M-9001", "M-9003", "team_lead", "A-3001"]
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def database_url(infrastructure):
    """A database of this module's own: its directory (respondents, parties and their
    managers) would change the employee counts other routing modules assert."""
    with own_database("processes_service") as url:
        yield url


@pytest.fixture(scope="module")
async def admin_pool(database_url):
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
async def routing(database_url, rabbitmq_url, amqp, admin_pool, logs_dir, tmp_path_factory):
    await declare_topology(amqp)
    policy = process_policy(tmp_path_factory.mktemp("policy") / "processes.yaml")
    env = service_env(
        database_url,
        rabbitmq_url,
        ROUTING_POLICY_FILE=str(policy),
        ROUTING_TIMER_INTERVAL="0.2",
        ROUTING_HTTP_PORT=str(free_port()),
    )
    process = ServiceProcess(
        "routing", env, int(env["ROUTING_HTTP_PORT"]), logs_dir / "routing-processes.log"
    )
    process.start()
    try:
        directory = [
            DirectoryEmployeeUpdated(employee_id=RESPONDENT, name="Sam Rivers",
                                     email="sam.rivers@example.com", manager_id="A-3002"),
            DirectoryEmployeeUpdated(employee_id="E-7702", name="Kit Moss",
                                     email="kit.moss@example.com", manager_id="E-0002"),
            DirectoryEmployeeUpdated(employee_id=EMPLOYER_REP, name="Jo Marsh",
                                     email="jo.marsh@example.com", manager_id="A-2002"),
        ]  # fmt: skip
        await publish(amqp, *(event(d, None) for d in directory))
        for _ in range(100):
            count = await admin_pool.fetchval(
                "SELECT count(*) FROM routing.employees WHERE employee_id = ANY($1::text[])",
                [RESPONDENT, "E-7702", EMPLOYER_REP],
            )
            if count == 3:
                break
            await asyncio.sleep(0.1)
        yield process
    finally:
        process.stop()
        await purge_other_queues(amqp)


@pytest.fixture
def second_routing(routing):
    """A second replica on the same queue and tables: process timers still fire once."""
    env = dict(routing.env)
    port = free_port()
    env.update(ROUTING_HTTP_PORT=str(port))
    replica = ServiceProcess("routing", env, port, routing.log_path.with_name("routing-proc-2.log"))
    replica.start()
    yield replica
    replica.stop()


def answer_to(tap, case_id: uuid.UUID, request: Envelope) -> list[Envelope]:
    return [e for e in tap.of(case_id) if e.causation_id == request.event_id]


class Case:
    """One case and its requests: send a request and wait for routing's answer."""

    def __init__(self, amqp, tap, pool, case_id: uuid.UUID, reference: str) -> None:
        self.amqp, self.tap, self.pool = amqp, tap, pool
        self.case_id, self.reference = case_id, reference

    def envelope(self, payload: EventPayload) -> Envelope:
        return event(payload, self.case_id)

    async def tell(self, *payloads: EventPayload) -> None:
        """Facts (no answer expected), in order, each applied (in routing's inbox) before
        the next: with two replicas, events of one case may otherwise overtake."""
        for payload in payloads:
            fact = self.envelope(payload)
            await publish(self.amqp, fact)
            for _ in range(200):
                if await self.pool.fetchval(
                    "SELECT true FROM routing.inbox WHERE event_id = $1", fact.event_id
                ):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"routing never applied {fact.event_type}")

    async def ask(self, payload: EventPayload, what: str = "the answer") -> list[Envelope]:
        request = self.envelope(payload)
        await publish(self.amqp, request)
        await self.tap.wait(lambda: answer_to(self.tap, self.case_id, request), what=what)
        await asyncio.sleep(0.3)  # a decision may be followed by more (an enter_on move)
        return answer_to(self.tap, self.case_id, request)

    async def refused(self, payload: EventPayload) -> str:
        (answer,) = await self.ask(payload, "the refusal")
        assert answer.event_type == "case.request_refused", answer.payload
        return str(answer.payload["reason"])

    async def move(self, stage: str, **fields: Any) -> Envelope:
        answers = await self.ask(
            CaseStageChangeRequested(reference=self.reference, stage=stage, **fields)
        )
        assert [a.event_type for a in answers] == ["case.stage_entered"], answers[0].payload
        return answers[0]

    async def refuse_move(self, stage: str, **fields: Any) -> str:
        return await self.refused(
            CaseStageChangeRequested(reference=self.reference, stage=stage, **fields)
        )

    async def assign(self, role: str, staff_id: str) -> Envelope:
        (answer,) = await self.ask(
            CaseProcessRoleAssignmentRequested(
                reference=self.reference, role=role, staff_id=staff_id
            )
        )
        assert answer.event_type == "case.process_role_assigned", answer.payload
        return answer

    async def refuse_role(self, role: str, staff_id: str) -> str:
        return await self.refused(
            CaseProcessRoleAssignmentRequested(
                reference=self.reference, role=role, staff_id=staff_id
            )
        )


async def new_case(amqp, tap, pool, subject: str, category: str, **fields: Any) -> Case:
    case_id, submitted = submission(subject, category=category, **fields)
    await publish(amqp, submitted)
    await tap.wait(lambda: tap.of(case_id, "case.stage_entered"), what="the first stage")
    return Case(amqp, tap, pool, case_id, submitted.payload["reference"])


def allegation(reference: str, respondent: str = RESPONDENT) -> InvestigationAllegationRecorded:
    return InvestigationAllegationRecorded(
        reference=reference,
        allegation_id=uuid.uuid4(),
        allegation_type="harassment",
        summary="Repeated comments about my appearance",
        respondent_employee_id=respondent,
    )


def statement(reference: str, role: str, employee_id: str | None) -> InvestigationStatementRecorded:
    return InvestigationStatementRecorded(
        reference=reference,
        statement_id=uuid.uuid4(),
        given_by_role=role,
        given_by_name="Someone",
        given_by_employee_id=employee_id,
        text="What I saw and heard.",
    )


# --- tests -------------------------------------------------------------------------------


async def test_a_routed_case_starts_in_its_category_s_process(routing, amqp, admin_pool):
    expected = {
        "harassment": ("investigation", "planning", True),
        "contract_dispute": ("case_management", "assessment", True),
        "payroll_query": ("query", "handling", False),
    }
    async with tapped(amqp) as tap:
        cases = {
            category: await new_case(amqp, tap, admin_pool, f"About my {category}", category)
            for category in expected
        }
        payroll = cases["payroll_query"]
        # Re-categorising does not change the process.
        recategorise = payroll.envelope(
            CaseRecategorisationRequested(category="contract_dispute", reason="it is the contract")
        )
        await publish(amqp, recategorise)
        await tap.wait(lambda: answer_to(tap, payroll.case_id, recategorise), what="re-routed")
        await asyncio.sleep(1.0)
    for category, (process, first, clocked) in expected.items():
        case = cases[category]
        (assigned,) = tap.of(case.case_id, "case.process_assigned")
        assert assigned.payload["process"] == process
        assert assigned.payload["assigned_by"] == "policy"
        assert assigned.payload["stages"][0]["name"] == first
        # The shipped investigation policy lets interviewees bring a companion.
        assert assigned.payload["companion_allowed"] is True
        (entered,) = tap.of(case.case_id, "case.stage_entered")
        assert (entered.payload["stage"], entered.payload["direction"]) == (first, "start")
        assert (entered.payload["target_at"] is not None) is clocked
        assert (
            entered.payload["owner_id"]
            == tap.of(case.case_id, "case.assigned")[0].payload["owner"]["id"]
        )
    (planning,) = tap.of(cases["harassment"].case_id, "case.stage_entered")
    (submitted,) = tap.of(cases["harassment"].case_id, "case.submitted")
    submitted_at = datetime.fromisoformat(submitted.payload["submitted_at"])
    # Planning: 5 working days; every day works here, so the close of the 5th day after.
    day = submitted_at.astimezone(LONDON).date() + timedelta(days=6)
    assert datetime.fromisoformat(planning.payload["target_at"]) == datetime.combine(
        day, datetime.min.time(), LONDON
    )
    assert [e.payload["category"] for e in tap.of(payroll.case_id, "case.routed")] == [
        "payroll_query",
        "contract_dispute",
    ]


async def test_staff_switch_the_process_with_a_reason(routing, amqp, admin_pool):
    async with tapped(amqp) as tap:
        case = await new_case(amqp, tap, admin_pool, "My payslip", "payroll_query")
        assigned, entered = await case.ask(
            CaseProcessChangeRequested(
                reference=case.reference, process="investigation", reason="a harassment claim"
            )
        )
        assert assigned.event_type == "case.process_assigned"
        assert assigned.payload["assigned_by"] == "staff"
        assert assigned.payload["previous_process"] == "query"
        assert assigned.payload["reason"] == "a harassment claim"
        assert (entered.payload["stage"], entered.payload["direction"]) == ("planning", "start")
        same = await case.refused(
            CaseProcessChangeRequested(
                reference=case.reference, process="investigation", reason="x"
            )
        )
        unknown = await case.refused(
            CaseProcessChangeRequested(reference=case.reference, process="arbitration", reason="x")
        )
    assert same == "the case is already in the Investigation process"
    assert unknown.startswith("the policy has no process 'arbitration' (its processes: query,")


async def test_stage_moves_follow_the_rules_and_the_facts(routing, amqp, admin_pool):
    async with tapped(amqp) as tap:
        case = await new_case(amqp, tap, admin_pool, "I was harassed", "harassment")
        gated = await case.refuse_move("interviews")
        await case.assign("investigator", "A-3001")
        still = await case.refuse_move("interviews")
        await case.tell(allegation(case.reference))
        forward = await case.move("interviews")
        skipping = await case.refuse_move("outcome")
        unheard = await case.refuse_move("findings")
        await case.tell(statement(case.reference, "complainant", REPORTER))
        half = await case.refuse_move("findings")
        await case.tell(statement(case.reference, "respondent", RESPONDENT))
        await case.move("findings")
        no_reason = await case.refuse_move("planning")
        back = await case.move("planning", reason="a second allegation to plan for")
        unknown = await case.refuse_move("hearing")
        no_ending = await case.refuse_move("closed", reason="done")
        not_settled = await case.refuse_move("closed", ending="outcome_final", reason="done")
        without_reason = await case.refuse_move("closed", ending="withdrawn")
        final = await case.move("closed", ending="withdrawn", reason="the complainant withdrew")
        ended = await case.refuse_move("planning", reason="again")
    assert (
        gated == "stage Interviews needs an investigator assigned; at least one allegation recorded"
    )
    assert still == "stage Interviews needs at least one allegation recorded"
    assert (forward.payload["previous_stage"], forward.payload["direction"]) == (
        "planning",
        "forward",
    )
    assert forward.payload["target_at"] is not None and forward.payload["due_soon_at"] is not None
    assert skipping.startswith("stages move forward one at a time: stage Findings comes before")
    assert unheard == (
        "stage Findings needs a statement from the complainant; a statement from every"
        " respondent the allegations name"
    )
    assert half == "stage Findings needs a statement from every respondent the allegations name"
    assert no_reason == "moving back to stage Planning needs a reason"
    assert (back.payload["direction"], back.payload["reason"]) == (
        "back",
        "a second allegation to plan for",
    )
    assert unknown.startswith("the Investigation process has no stage 'hearing'")
    assert no_ending.startswith("entering the final stage Closed needs an ending: outcome_final")
    assert not_settled.startswith("the ending outcome_final needs the appeal window closed")
    assert without_reason == "entering the final stage Closed needs a reason"
    assert (final.payload["direction"], final.payload["ending"]) == ("final", "withdrawn")
    assert final.payload["target_at"] is None
    assert "has ended" in ended


async def test_process_roles_refuse_conflicted_and_involved_people(routing, amqp, admin_pool):
    async with tapped(amqp) as tap:
        case = await new_case(amqp, tap, admin_pool, "Harassment by two colleagues", "harassment")
        await case.tell(allegation(case.reference), allegation(case.reference, "A-3003"))
        respondent = await case.refuse_role("investigator", "A-3003")
        manager = await case.refuse_role("investigator", "A-3002")
        await case.tell(
            CaseConflictDeclared(
                reference=case.reference, staff_id="A-3001", reason="we share a team"
            )
        )
        declared = await case.refuse_role("investigator", "A-3001")
        unknown = await case.refuse_role("investigator", "X-404")
        no_such_role = await case.refuse_role("case_manager", "A-2001")
        first = await case.assign("investigator", "M-9003")
        second = await case.assign("investigator", "M-9002")
        involved = await case.refuse_role("appeal_hearer", "M-9003")
        hearer = await case.assign("appeal_hearer", "M-9001")
    assert respondent == (
        "conflict of interest: A-3003 is a respondent or in a respondent's management chain"
    )
    assert manager == (
        "conflict of interest: A-3002 is a respondent or in a respondent's management chain"
    )
    assert declared == "A-3001 declared a conflict of interest on this case"
    assert unknown == "'X-404' is not HR staff in the routing policy"
    assert no_such_role.startswith("the Investigation process has no case manager role")
    assert first.payload["person"]["email"] == "cpo@example.com"
    assert first.payload["previous_id"] is None
    assert second.payload["previous_id"] == "M-9003"
    assert "someone not yet involved" in involved
    assert hearer.payload["role"] == "appeal_hearer"


async def test_a_case_manager_is_impartial_and_mediation_facts_gate_the_stages(
    routing, amqp, admin_pool
):
    async with tapped(amqp) as tap:
        case = await new_case(amqp, tap, admin_pool, "My contract was changed", "contract_dispute")
        employee = MediationParty(
            role="employee", employee_id=REPORTER, name="Rae Kim", email="rae.kim@example.com"
        )
        employer = MediationParty(
            role="employer_representative",
            employee_id=EMPLOYER_REP,
            name="Jo Marsh",
            email="jo.marsh@example.com",
        )
        assessments = [
            MediationAssessmentRecorded(
                reference=case.reference,
                party=party,
                account="My side of it.",
                desired_outcomes=["A fair outcome"],
            )
            for party in (employee, employer)
        ]
        await case.tell(*assessments)
        partial = await case.refuse_role("case_manager", "A-2002")
        await case.assign("case_manager", "A-2001")
        await case.move("ground_rules")
        rules_id = uuid.uuid4()
        await case.tell(
            MediationGroundRulesProposed(
                reference=case.reference,
                ground_rules_id=rules_id,
                rules=["Speak in turn"],
                parties=[employee, employer],
            ),
            MediationGroundRulesAccepted(
                reference=case.reference,
                ground_rules_id=rules_id,
                party_role="employee",
                employee_id=REPORTER,
            ),
        )
        one_party = await case.refuse_move("discussions")
        await case.tell(
            MediationGroundRulesAccepted(
                reference=case.reference,
                ground_rules_id=rules_id,
                party_role="employer_representative",
                employee_id=EMPLOYER_REP,
            )
        )
        await case.move("discussions")
        no_meeting = await case.refuse_move("agreement")
        await case.tell(
            MediationMeetingHeld(
                reference=case.reference,
                meeting_id=uuid.uuid4(),
                held_at=utcnow(),
                discussed="Hours and duties.",
                privileged_notes="My own notes.",
            )
        )
        await case.move("agreement")
        agreement = event(
            AgreementInForce(reference=case.reference, agreement_id=uuid.uuid4(), version=1),
            case.case_id,
        )
        await publish(amqp, agreement)
        await tap.wait(lambda: answer_to(tap, case.case_id, agreement), what="follow-up")
        (follow_up,) = answer_to(tap, case.case_id, agreement)
        resolved = await case.move(
            "closed", ending="resolved_by_agreement", reason="agreement kept"
        )
    assert partial == (
        "a case manager must be impartial: A-2002 is a party or in a party's management chain"
    )
    assert (
        one_party
        == "stage Facilitated discussions needs the latest ground rules accepted by each party"
    )
    assert no_meeting == "stage Written agreement needs at least one facilitated discussion held"
    assert follow_up.event_type == "case.stage_entered"
    assert (follow_up.payload["stage"], follow_up.payload["direction"]) == ("follow_up", "forward")
    assert follow_up.payload["reason"] == "entered on agreement.in_force"
    assert resolved.payload["ending"] == "resolved_by_agreement"


async def test_outcome_approval_opens_the_appeal_window_which_closes_once(
    routing, second_routing, amqp, admin_pool
):
    async with tapped(amqp) as tap:
        case = await new_case(amqp, tap, admin_pool, "Harassment at the depot", "harassment")
        outcome_id = uuid.uuid4()

        def approval(
            approver: str, outcome: uuid.UUID = outcome_id
        ) -> CaseOutcomeApprovalRequested:
            return CaseOutcomeApprovalRequested(
                reference=case.reference, outcome_id=outcome, approver_id=approver
            )

        nothing_decided = await case.refused(approval("M-9002"))
        await case.assign("investigator", "A-3001")
        await case.tell(
            CaseOutcomeDecided(
                reference=case.reference,
                outcome_id=outcome_id,
                summary="Substantiated: a final warning.",
                actions=[
                    OutcomeAction(
                        action_id=uuid.uuid4(),
                        kind="final_warning",
                        description="A final written warning.",
                        concerns_employee_id=RESPONDENT,
                    )
                ],
                decided_by="M-9001",
            )
        )
        too_early = await case.refused(approval("M-9002"))
        await investigated_without_reassigning(case)
        await case.tell(
            CaseConflictDeclared(reference=case.reference, staff_id="M-9003", reason="friends")
        )
        investigator = await case.refused(approval("A-3001"))
        decider = await case.refused(approval("M-9001"))
        conflicted = await case.refused(approval("M-9003"))
        not_named = await case.refused(approval("A-1001"))
        request = case.envelope(approval("M-9002"))  # the team lead (team_lead)
        await publish(amqp, request)
        await tap.wait(lambda: len(answer_to(tap, case.case_id, request)) >= 2, what="approval")
        approved, window = answer_to(tap, case.case_id, request)
        again = await case.refused(approval("M-9002"))

        # An appeal enters the appeal stage by itself.
        appeal_id = uuid.uuid4()
        lodged = case.envelope(
            CaseAppealLodged(
                reference=case.reference,
                appeal_id=appeal_id,
                outcome_id=outcome_id,
                by_role="respondent",
                by_employee_id=RESPONDENT,
                grounds="The finding ignores my witness.",
            )
        )
        await publish(amqp, lodged)
        await tap.wait(lambda: answer_to(tap, case.case_id, lodged), what="the appeal stage")
        (appeal_stage,) = answer_to(tap, case.case_id, lodged)

        # Time travel: the window's end comes; one replica of two announces it, once.
        await admin_pool.execute(
            "UPDATE routing.process_outcomes SET appeal_window_ends_at = now()"
            " WHERE outcome_id = $1",
            outcome_id,
        )
        await tap.wait(lambda: tap.of(case.case_id, "case.appeal_window_closed"), what="closed")
        await asyncio.sleep(1.5)
        await case.tell(
            CaseAppealDecided(
                reference=case.reference,
                appeal_id=appeal_id,
                decision="dismissed",
                reasoning="The witness was heard.",
                decided_by="M-9001",
            )
        )
        final = await case.move("closed", ending="outcome_final", reason="appeal dismissed")

    assert nothing_decided == "no such decided outcome on this case"
    assert too_early == "an outcome is approved in stage outcome, not planning"
    assert investigator == "the investigator cannot approve the outcome of their own investigation"
    assert decider == "a second person approves the outcome: the decider cannot approve it"
    assert conflicted.startswith("conflict of interest: M-9003")
    assert not_named.startswith("A-1001 may not approve outcomes in the Investigation process")
    assert again == "the outcome is already approved"
    assert approved.event_type == "case.outcome_approved", approved.payload
    assert approved.payload["approver"]["id"] == "M-9002"
    assert approved.payload["decided_by"] == "M-9001"
    assert approved.payload["respondents"] == [
        {"id": RESPONDENT, "name": "Sam Rivers", "email": "sam.rivers@example.com"}
    ]
    # 10 working days: the close of the 10th day after the approval's (every day works).
    day = request.occurred_at.astimezone(LONDON).date() + timedelta(days=11)
    assert datetime.fromisoformat(approved.payload["appeal_window_ends_at"]) == datetime.combine(
        day, datetime.min.time(), LONDON
    )
    assert (window.payload["stage"], window.payload["direction"]) == ("appeal_window", "forward")
    assert window.payload["reason"] == "entered on case.outcome_approved"
    assert appeal_stage.payload["stage"] == "appeal"
    (closed,) = tap.of(case.case_id, "case.appeal_window_closed")
    assert (closed.payload["outcome_id"], closed.payload["appealed"]) == (str(outcome_id), True)
    fired = await admin_pool.fetchval(
        "SELECT window_closed_event_id FROM routing.process_outcomes WHERE outcome_id = $1",
        outcome_id,
    )
    assert fired == closed.event_id
    assert final.payload["ending"] == "outcome_final"


async def investigated_without_reassigning(case: Case) -> None:
    """The investigator is assigned already: allegation, statements, finding, to `outcome`."""
    alleged = allegation(case.reference)
    await case.tell(alleged)
    await case.move("interviews")
    await case.tell(
        statement(case.reference, "complainant", REPORTER),
        statement(case.reference, "respondent", RESPONDENT),
    )
    await case.move("findings")
    await case.tell(
        InvestigationFindingRecorded(
            reference=case.reference,
            finding_id=uuid.uuid4(),
            allegation_id=alleged.allegation_id,
            finding="substantiated",
            reasoning="On the balance of probabilities.",
        )
    )
    await case.move("outcome")


async def test_a_stage_reminds_then_escalates_once_and_a_move_clears_its_clock(
    routing, second_routing, amqp, admin_pool
):
    async with tapped(amqp) as tap:
        case = await new_case(amqp, tap, admin_pool, "Inappropriate comments", "harassment")
        # The lead (M-9002, levels 1 and 2 of the sensitive ladder) declared a conflict.
        await case.tell(
            CaseConflictDeclared(reference=case.reference, staff_id="M-9002", reason="related")
        )
        await asyncio.sleep(0.5)
        await admin_pool.execute(
            "UPDATE routing.case_processes SET due_soon_at = now() WHERE case_id = $1",
            case.case_id,
        )
        await tap.wait(lambda: tap.of(case.case_id, "case.stage_due_soon"), what="reminder")
        await admin_pool.execute(
            "UPDATE routing.case_processes SET target_at = now() WHERE case_id = $1",
            case.case_id,
        )
        await tap.wait(lambda: tap.of(case.case_id, "case.stage_overdue"), what="overdue")
        await asyncio.sleep(1.5)  # the other replica's ticks would have fired a duplicate
        await case.assign("investigator", "A-3001")
        await case.tell(allegation(case.reference))
        moved = await case.move("interviews")
    (reminder,) = tap.of(case.case_id, "case.stage_due_soon")
    assert (reminder.payload["stage"], reminder.payload["process"]) == ("planning", "investigation")
    owner = tap.of(case.case_id, "case.assigned")[0].payload["owner"]
    assert reminder.payload["owner"] == owner
    (overdue,) = tap.of(case.case_id, "case.stage_overdue")
    assert overdue.payload["escalated_to"]["id"] == "M-9003"  # level 3: the lead is conflicted
    # The overdue event names the escalation (as a task's does): no second announcement.
    assert not tap.of(case.case_id, "case.escalated")
    row = await admin_pool.fetchrow(
        "SELECT stage, target_at, due_soon_fired_at, overdue_fired_at, overdue_event_id"
        " FROM routing.case_processes WHERE case_id = $1",
        case.case_id,
    )
    assert row["stage"] == "interviews"
    assert row["due_soon_fired_at"] is None and row["overdue_fired_at"] is None
    assert row["target_at"] == datetime.fromisoformat(moved.payload["target_at"])
    assert row["overdue_event_id"] is None  # cleared with the clock


async def test_an_unappealed_window_closes_once_and_settles_the_outcome(
    routing, second_routing, amqp, admin_pool
):
    async with tapped(amqp) as tap:
        case = await new_case(amqp, tap, admin_pool, "Comments at the depot", "harassment")
        await case.assign("investigator", "A-3001")
        await investigated_without_reassigning(case)
        outcome_id = uuid.uuid4()
        await case.tell(
            CaseOutcomeDecided(
                reference=case.reference,
                outcome_id=outcome_id,
                summary="Not substantiated.",
                actions=[
                    OutcomeAction(
                        action_id=uuid.uuid4(), kind="no_action", description="No action."
                    )
                ],
                decided_by="A-3001",
            )
        )
        approved, window = await case.ask(
            CaseOutcomeApprovalRequested(
                reference=case.reference, outcome_id=outcome_id, approver_id="M-9001"
            )
        )
        assert approved.event_type == "case.outcome_approved", approved.payload
        unsettled = await case.refuse_move("closed", ending="outcome_final", reason="final")
        await admin_pool.execute(
            "UPDATE routing.process_outcomes SET appeal_window_ends_at = now()"
            " WHERE outcome_id = $1",
            outcome_id,
        )
        await tap.wait(lambda: tap.of(case.case_id, "case.appeal_window_closed"), what="closed")
        await asyncio.sleep(1.5)  # the other replica's ticks would have fired a duplicate
        final = await case.move("closed", ending="outcome_final", reason="not appealed")
    assert window.payload["stage"] == "appeal_window"
    assert unsettled.startswith("the ending outcome_final needs the appeal window closed")
    (closed,) = tap.of(case.case_id, "case.appeal_window_closed")
    assert (closed.payload["outcome_id"], closed.payload["appealed"]) == (str(outcome_id), False)
    assert (final.payload["direction"], final.payload["ending"]) == ("final", "outcome_final")
