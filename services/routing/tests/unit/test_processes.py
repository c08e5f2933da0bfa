"""Process rules: stage moves, requirements over the facts, stage clocks, role eligibility
and outcome approval (domain/processes.py), on the shipped policy's processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing.domain.policy import load_policy
from services.routing.domain.processes import (
    ALLEGATION,
    APPEAL,
    APPEAL_DECISION,
    ASSESSMENT,
    GROUND_RULES,
    GROUND_RULES_ACCEPTED,
    MEETING,
    REPORTER,
    STATEMENT,
    FactRecord,
    OutcomeRecord,
    ProcessFacts,
    ProcessRefused,
    RoleCheck,
    appeal_window_ends_at,
    approval_problem,
    automatic_entry,
    facts_from,
    holds,
    plan_move,
    role_problem,
    stage_clock,
    unmet,
)

POLICY = load_policy()
INVESTIGATION = POLICY.processes["investigation"]
CASE_MANAGEMENT = POLICY.processes["case_management"]
QUERY = POLICY.processes["query"]
T0 = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)  # a Monday
LONDON = ZoneInfo("Europe/London")


def fact(kind: str, key: str, minutes: int = 0, **data: object) -> FactRecord:
    return FactRecord(kind, key, data, T0 + timedelta(minutes=minutes))


def outcome(
    outcome_id: str = "o1", decided_by: str = "A-3001", approved: bool = False, **more: object
) -> OutcomeRecord:
    return OutcomeRecord(
        outcome_id=outcome_id,
        decided_by=decided_by,
        decided_at=T0,
        approved_by="M-9001" if approved else None,
        approved_at=T0 if approved else None,
        **more,  # type: ignore[arg-type]
    )


HEARD = facts_from(
    [
        fact(ALLEGATION, "a1", respondent_employee_id="E-7001"),
        fact(ALLEGATION, "a2", respondent_employee_id="E-7002"),
        fact(STATEMENT, "s1", given_by_role="complainant", given_by_employee_id="E-1001"),
        fact(STATEMENT, "s2", given_by_role="respondent", given_by_employee_id="E-7001"),
        fact(STATEMENT, "s3", given_by_role="respondent", given_by_employee_id="E-7002"),
    ],
    roles={"investigator": "A-3001"},
)


def move(
    process=INVESTIGATION,
    current: str = "planning",
    target: str = "interviews",
    facts: ProcessFacts = HEARD,
    ending: str | None = None,
    reason: str | None = None,
    ended: bool = False,
):
    return plan_move(
        process,
        current=current,
        ended=ended,
        target=target,
        ending=ending,
        reason=reason,
        facts=facts,
    )


# --- moves -------------------------------------------------------------------------------


def test_forward_into_a_stage_whose_requirements_hold():
    planned = move()
    assert (planned.stage.name, planned.previous, planned.direction) == (
        "interviews",
        "planning",
        "forward",
    )


def test_forward_is_refused_naming_each_unmet_requirement():
    with pytest.raises(ProcessRefused) as refused:
        move(facts=ProcessFacts())
    assert str(refused.value) == (
        "stage Interviews needs an investigator assigned; at least one allegation recorded"
    )


def test_forward_one_stage_at_a_time():
    with pytest.raises(ProcessRefused, match="one at a time: stage Interviews comes before"):
        move(target="findings")


def test_only_optional_stages_are_skipped():
    lodged = facts_from([fact(APPEAL, "p1", outcome_id="o1")], outcomes=[outcome(approved=True)])
    # The appeal window is not optional: it cannot be skipped on the way to the appeal.
    with pytest.raises(ProcessRefused, match="Appeal window comes before Appeal"):
        move(current="outcome", target="appeal", facts=lodged)
    assert move(current="appeal_window", target="appeal", facts=lodged).direction == "forward"


def test_back_needs_a_reason():
    with pytest.raises(ProcessRefused, match="moving back to stage Planning needs a reason"):
        move(current="findings", target="planning", reason="  ")
    back = move(current="findings", target="planning", reason="a new allegation")
    assert (back.direction, back.reason) == ("back", "a new allegation")


def test_final_needs_a_known_ending_whose_requirements_hold_and_a_reason():
    with pytest.raises(ProcessRefused, match="needs an ending: outcome_final, withdrawn"):
        move(target="closed", reason="done")
    with pytest.raises(ProcessRefused, match="has no ending 'settled'"):
        move(target="closed", ending="settled", reason="done")
    with pytest.raises(ProcessRefused, match="Closed needs a reason"):
        move(target="closed", ending="withdrawn")
    with pytest.raises(ProcessRefused, match="the ending outcome_final needs the appeal window"):
        move(target="closed", ending="outcome_final", reason="final")
    ended = move(target="closed", ending="withdrawn", reason="the complainant withdrew")
    assert (ended.direction, ended.ending) == ("final", "withdrawn")


def test_an_ending_only_with_the_final_stage():
    with pytest.raises(ProcessRefused, match="an ending is given only when entering the final"):
        move(ending="withdrawn", reason="x")


def test_unknown_stage_same_stage_and_ended_process():
    with pytest.raises(ProcessRefused, match="has no stage 'hearing'; its stages are planning,"):
        move(target="hearing")
    with pytest.raises(ProcessRefused, match="already in stage Planning"):
        move(target="planning")
    with pytest.raises(ProcessRefused, match="has ended"):
        move(current="closed", target="planning", reason="reopen", ended=True)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([INVESTIGATION, CASE_MANAGEMENT, QUERY]),
    st.data(),
)
def test_an_allowed_move_never_skips_a_required_stage_nor_ends_without_an_ending(process, data):
    names = [s.name for s in process.stages]
    current = data.draw(st.sampled_from(names[:-1]))
    target = data.draw(st.sampled_from(names))
    ending = data.draw(st.sampled_from([None, *process.endings]))
    reason = data.draw(st.sampled_from([None, "because"]))
    everything = facts_from(
        [
            fact(ALLEGATION, "a1", respondent_employee_id="E-7001"),
            fact(STATEMENT, "s1", given_by_role="complainant"),
            fact(STATEMENT, "s2", given_by_role="respondent", given_by_employee_id="E-7001"),
            fact("finding", "a1", finding="inconclusive"),
        ],
        roles={"investigator": "A-3001", "case_manager": "A-2001"},
        outcomes=[outcome(approved=True, window_closed_at=T0)],
    )
    facts = data.draw(st.sampled_from([ProcessFacts(), everything]))
    try:
        planned = move(process, current, target, facts, ending, reason)
    except ProcessRefused as refused:
        assert str(refused)  # a sentence to read
        return
    here, there = names.index(current), names.index(target)
    if planned.direction == "final":
        assert there == len(names) - 1 and planned.ending in process.endings and reason
    elif planned.direction == "back":
        assert there < here and reason
    else:
        assert there > here
        assert all(s.optional for s in process.stages[here + 1 : there])
        assert not unmet(process.stages[there].requires, facts)


# --- enter_on ----------------------------------------------------------------------------


def test_an_approved_outcome_enters_the_appeal_window_by_itself():
    approved = facts_from([], outcomes=[outcome(approved=True)])
    stage = automatic_entry(
        INVESTIGATION,
        current="outcome",
        ended=False,
        event_type="case.outcome_approved",
        facts=approved,
    )
    assert stage is not None and stage.name == "appeal_window"
    # Not from an earlier stage (a required stage would be skipped), nor once ended.
    assert (
        automatic_entry(
            INVESTIGATION,
            current="findings",
            ended=False,
            event_type="case.outcome_approved",
            facts=approved,
        )
        is None
    )
    assert (
        automatic_entry(
            INVESTIGATION,
            current="outcome",
            ended=True,
            event_type="case.outcome_approved",
            facts=approved,
        )
        is None
    )


def test_an_event_no_stage_names_moves_nothing():
    assert (
        automatic_entry(
            CASE_MANAGEMENT,
            current="agreement",
            ended=False,
            event_type="mediation.meeting_held",
            facts=ProcessFacts(meetings_held=2),
        )
        is None
    )


# --- requirements over the facts ---------------------------------------------------------


def test_every_respondent_heard_needs_a_respondent_statement_from_each():
    partly = facts_from(
        [
            fact(ALLEGATION, "a1", respondent_employee_id="E-7001"),
            fact(ALLEGATION, "a2", respondent_employee_id="E-7002"),
            fact(STATEMENT, "s2", given_by_role="respondent", given_by_employee_id="E-7001"),
            fact(STATEMENT, "s3", given_by_role="witness", given_by_employee_id="E-7002"),
        ]
    )
    assert not holds("every_respondent_heard", partly)
    assert holds("every_respondent_heard", HEARD)
    assert not holds("every_respondent_heard", ProcessFacts())  # nobody named: not yet


def test_every_allegation_found_and_a_later_fact_replaces_an_earlier():
    records = [
        fact(ALLEGATION, "a1", respondent_employee_id="E-7001"),
        fact(ALLEGATION, "a1", minutes=5, respondent_employee_id="E-7003"),
        fact("finding", "a1", finding="substantiated"),
    ]
    facts = facts_from(records)
    assert facts.respondent_ids == frozenset({"E-7003"})
    assert holds("every_allegation_found", facts)
    assert not holds("every_allegation_found", facts_from(records[:2]))


def test_ground_rules_acceptance_counts_for_the_latest_proposal_only():
    first = [
        fact(GROUND_RULES, "g1", party_employee_ids=["E-1001", "E-7100"]),
        fact(GROUND_RULES_ACCEPTED, "g1:employee", ground_rules_id="g1", party_role="employee"),
        fact(
            GROUND_RULES_ACCEPTED,
            "g1:employer_representative",
            ground_rules_id="g1",
            party_role="employer_representative",
        ),
    ]
    assert holds("ground_rules_accepted_by_every_party", facts_from(first))
    second = [
        *first,
        fact(GROUND_RULES, "g2", minutes=10, party_employee_ids=["E-1001", "E-7100"]),
        fact(GROUND_RULES_ACCEPTED, "g2:employee", 11, ground_rules_id="g2", party_role="employee"),
    ]
    replaced = facts_from(second)
    assert not holds("ground_rules_accepted_by_every_party", replaced)
    assert replaced.parties == frozenset({"E-1001", "E-7100"})


def test_assessment_meeting_appeal_and_reporter_facts():
    facts = facts_from(
        [
            fact(ASSESSMENT, "employee", employee_id="E-1001"),
            fact(ASSESSMENT, "employer_representative", employee_id="E-7100"),
            fact(MEETING, "m1", held_at=T0.isoformat()),
            fact(APPEAL, "p1", outcome_id="o1"),
            fact(REPORTER, REPORTER, employee_id="E-1001"),
        ],
        outcomes=[outcome(approved=True)],
    )
    assert holds("every_party_assessed", facts) and holds("meeting_held", facts)
    assert holds("appeal_lodged", facts) and not holds("appeal_settled", facts)
    assert facts.complainant_id == "E-1001"
    decided = facts_from(
        [fact(APPEAL, "p1", outcome_id="o1"), fact(APPEAL_DECISION, "p1", decision="dismissed")]
    )
    assert holds("appeal_settled", decided)
    window_closed = facts_from([], outcomes=[outcome(approved=True, window_closed_at=T0)])
    assert holds("appeal_settled", window_closed)


# --- clocks ------------------------------------------------------------------------------


def test_a_stage_target_is_the_close_of_the_nth_working_day_in_the_team_calendar():
    calendar = POLICY.team_calendar("investigations")  # Mon-Fri 08-20, Sat 09-13
    planning = INVESTIGATION.stage("planning")
    assert planning is not None
    clock = stage_clock(INVESTIGATION, planning, calendar, T0)
    # Monday + 5 working days (Tue..Sat): Saturday's close, 13:00 London.
    assert clock.target_at == datetime(2027, 2, 6, 13, 0, tzinfo=LONDON)
    assert clock.due_soon_at is not None and T0 < clock.due_soon_at < clock.target_at
    window = INVESTIGATION.stage("appeal_window")
    assert window is not None
    assert stage_clock(INVESTIGATION, window, calendar, T0).target_at is None


@settings(max_examples=150, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    ),
    st.sampled_from(["uk_office", "investigations_desk", "sydney_office"]),
)
def test_a_stage_reminder_always_falls_between_entry_and_target(entered, calendar_name):
    calendar = POLICY.working_calendars[calendar_name]
    for stage in INVESTIGATION.stages:
        clock = stage_clock(INVESTIGATION, stage, calendar, entered)
        if clock.target_at is None:
            continue
        assert clock.target_at > entered
        assert clock.due_soon_at is None or entered < clock.due_soon_at < clock.target_at


def test_the_appeal_window_closes_at_the_end_of_the_nth_working_day():
    calendar = POLICY.team_calendar("investigations")
    # Monday + 10 working days with Saturdays: Tue..Sat (5), Mon..Fri (10) = Fri 12 Feb.
    ends = appeal_window_ends_at(calendar, T0, 10)
    assert ends == datetime(2027, 2, 12, 20, 0, tzinfo=LONDON)


# --- roles -------------------------------------------------------------------------------


def check(process=INVESTIGATION, **changes: object) -> RoleCheck:
    fields: dict[str, object] = {
        "process_name": "investigation",
        "process": process,
        "known": True,
        "respondent_conflicted": frozenset({"E-7001", "E-7100", "E-0002"}),
    }
    fields.update(changes)
    return RoleCheck(**fields)  # type: ignore[arg-type]


def test_an_eligible_investigator():
    assert role_problem("investigator", "A-3001", check()) is None


@pytest.mark.parametrize(
    ("role", "staff_id", "changes", "expected"),
    [
        ("case_manager", "A-2001", {}, "has no case manager role (its roles: investigator,"),
        ("investigator", "X-1", {"known": False}, "'X-1' is not HR staff"),
        ("investigator", "A-3001", {"inactive": True}, "marked inactive"),
        ("investigator", "A-3001", {"current_holder": "A-3001"}, "already holds"),
        ("investigator", "A-3001", {"declared": frozenset({"A-3001"})}, "declared a conflict"),
        ("investigator", "E-7001", {}, "is a respondent or in a respondent's management chain"),
        ("investigator", "E-7100", {}, "is a respondent or in a respondent's management chain"),
        ("investigator", "E-1001", {"complainant_id": "E-1001"}, "is the complainant"),
        (
            "appeal_hearer",
            "A-3001",
            {"ever_held": {"investigator": frozenset({"A-3001"})}},
            "someone not yet involved",
        ),
        (
            "appeal_hearer",
            "M-9001",
            {"outcome_people": frozenset({"A-3001", "M-9001"})},
            "someone not yet involved",
        ),
    ],
)
def test_role_refusals_name_the_rule(role, staff_id, changes, expected):
    problem = role_problem(role, staff_id, check(**changes))
    assert problem is not None and expected in problem


def test_a_case_manager_is_outside_both_parties_chains():
    chained = check(
        CASE_MANAGEMENT,
        process_name="case_management",
        respondent_conflicted=frozenset(),
        party_conflicted=frozenset({"E-1001", "E-7200", "E-0002"}),
    )
    problem = role_problem("case_manager", "E-7200", chained)
    assert problem is not None and "impartial" in problem
    assert role_problem("case_manager", "A-2001", chained) is None
    # An investigator is not held to the parties' chains (only the respondents').
    assert (
        role_problem("investigator", "E-7200", check(party_conflicted=chained.party_conflicted))
        is None
    )


# --- outcome approval --------------------------------------------------------------------

FOUND = facts_from(
    [
        fact(ALLEGATION, "a1", respondent_employee_id="E-7001"),
        fact("finding", "a1", finding="substantiated"),
    ],
    roles={"investigator": "A-3001"},
    outcomes=[outcome()],
)


def approval(approver: str = "M-9001", **changes: object) -> str | None:
    fields: dict[str, object] = {
        "outcome_id": "o1",
        "approver_id": approver,
        "stage": "outcome",
        "facts": FOUND,
        "team_lead": "M-9002",
        "investigators": frozenset({"A-3001"}),
        "conflicted": frozenset({"E-7001", "E-7100"}),
    }
    fields.update(changes)
    return approval_problem(INVESTIGATION, **fields)  # type: ignore[arg-type]


def test_a_named_approver_approves():
    assert approval() is None
    assert approval("M-9003") is None


@pytest.mark.parametrize(
    ("approver", "changes", "expected"),
    [
        ("M-9002", {}, "M-9002 may not approve outcomes in the Investigation process"),
        ("M-9001", {"outcome_id": "o9"}, "no such decided outcome"),
        ("M-9001", {"stage": "findings"}, "approved in stage outcome, not findings"),
        (
            "M-9001",
            {
                "facts": facts_from(
                    [fact(ALLEGATION, "a1", respondent_employee_id="E-7001")], outcomes=[outcome()]
                )
            },
            "only with a finding on every allegation",
        ),
        ("M-9001", {"investigators": frozenset({"M-9001"})}, "the investigator cannot approve"),
        ("M-9001", {"conflicted": frozenset({"M-9001"})}, "conflict of interest"),
        (
            "M-9001",
            {"facts": facts_from([], outcomes=[outcome(approved=True)])},
            "already approved",
        ),
    ],
)
def test_approval_refusals_name_the_rule(approver, changes, expected):
    problem = approval(approver, **changes)
    assert problem is not None and expected in problem


def test_the_decider_cannot_approve_and_team_lead_resolves_to_the_case_team_lead():
    decided_by_dana = facts_from(
        [
            fact(ALLEGATION, "a1", respondent_employee_id="E-7001"),
            fact("finding", "a1", finding="substantiated"),
        ],
        outcomes=[outcome(decided_by="M-9001")],
    )
    problem = approval(facts=decided_by_dana)
    assert problem is not None and "the decider cannot approve" in problem
    lead_policy = INVESTIGATION.model_copy(update={"approval_by": ("team_lead",)})
    fields = {
        "outcome_id": "o1",
        "stage": "outcome",
        "facts": FOUND,
        "team_lead": "M-9002",
        "investigators": frozenset({"A-3001"}),
        "conflicted": frozenset(),
    }
    assert approval_problem(lead_policy, approver_id="M-9002", **fields) is None  # type: ignore[arg-type]
    assert approval_problem(lead_policy, approver_id="M-9001", **fields) is not None  # type: ignore[arg-type]


def test_a_superseded_outcome_is_not_approved():
    later = OutcomeRecord("o2", "A-3001", T0 + timedelta(hours=1))
    facts = facts_from(
        [
            fact(ALLEGATION, "a1", respondent_employee_id="E-7001"),
            fact("finding", "a1", finding="substantiated"),
        ],
        outcomes=[outcome(), later],
    )
    problem = approval(facts=facts)
    assert problem is not None and "a later outcome was decided" in problem


RECORDS = [
    fact(ALLEGATION, "a1", 0, respondent_employee_id="E-7001"),
    fact(ALLEGATION, "a1", 3, respondent_employee_id="E-7002"),
    fact(STATEMENT, "s1", 1, given_by_role="complainant", given_by_employee_id="E-500"),
    fact(GROUND_RULES, "g1", 2, party_employee_ids=["E-500", "E-7100"]),
    fact(GROUND_RULES, "g2", 4, party_employee_ids=["E-500", "E-7100"]),
    fact(GROUND_RULES_ACCEPTED, "g1:employee", 5, ground_rules_id="g1", party_role="employee"),
    fact(GROUND_RULES_ACCEPTED, "g2:employee", 6, ground_rules_id="g2", party_role="employee"),
    fact(APPEAL, "p1", 7, outcome_id="o1"),
]


@settings(max_examples=100, deadline=None)
@given(st.permutations(RECORDS))
def test_the_snapshot_does_not_depend_on_the_order_rows_are_read(records):
    facts = facts_from(records)
    assert facts == facts_from(RECORDS)
    assert facts.allegations == {"a1": "E-7002"}  # the later record of a1
    assert facts.ground_rules_accepted == frozenset({"employee"})  # of g2, the latest
