import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from services.routing.domain.policy import PolicyError, load_policy, parse_policy
from services.routing.domain.triage import (
    NoEligibleOwner,
    choose_owner,
    classify,
    conference_reasons,
    escalation_target,
    prioritise,
)
from shared.events import InjuryDetails

POLICY = load_policy()


@pytest.mark.parametrize(
    ("text", "category", "sensitivity"),
    [
        ("My payslip is wrong, overtime missing", "payroll_query", "normal"),
        ("Can I check my annual leave balance?", "leave_query", "normal"),
        ("Question about the remote work policy", "policy_question", "normal"),
        ("I want to raise a grievance about my workload", "grievance", "confidential"),
        ("He keeps making inappropriate comments, it is harassment", "harassment", "restricted"),
        ("I was discriminated against because of my age", "discrimination", "restricted"),
        ("I saw a colleague commit fraud and theft", "misconduct", "restricted"),
        ("I want to report bribery to the compliance team", "compliance", "restricted"),
        ("My employer changed my contract and notice period", "contract_dispute", "confidential"),
        ("I was fired without reason, wrongful dismissal", "wrongful_termination", "confidential"),
        ("I was injured in an accident at the depot", "workplace_injury", "confidential"),
        ("Where is the canteen menu?", "general_query", "normal"),
    ],
)
def test_every_case_type_of_the_architecture_is_classified(text, category, sensitivity):
    result = classify(POLICY, text=text, requested=None)
    assert (result.category, result.sensitivity) == (category, sensitivity)
    assert result.source == ("default" if category == "general_query" else "rules")
    if result.source == "rules":
        assert result.matched_terms, "classification must say why"


def test_reporter_choice_wins_over_keywords_when_it_is_a_known_category():
    chosen = classify(POLICY, text="payslip overtime", requested="grievance")
    assert (chosen.category, chosen.source) == ("grievance", "reporter")
    unknown = classify(POLICY, text="payslip overtime", requested="no_such_category")
    assert unknown.category == "payroll_query"


def test_ties_go_to_the_more_sensitive_category():
    # one term each for grievance ("unfair") and harassment ("harassment")
    result = classify(POLICY, text="unfair harassment", requested=None)
    assert result.category == "harassment"


def test_keywords_match_whole_words_only():
    assert classify(POLICY, text="I enjoy firedrills", requested=None).category == "general_query"


def test_urgent_terms_raise_priority_and_say_why():
    calm = prioritise(POLICY, category="grievance", text="my workload is unfair")
    urgent = prioritise(POLICY, category="grievance", text="he threatened me with violence")
    assert calm.priority == "P3"
    assert urgent.priority == "P1"
    assert any("threatened" in reason for reason in urgent.reasons)


def test_urgent_terms_never_lower_priority():
    assert prioritise(POLICY, category="harassment", text="nothing urgent").priority == "P2"


@given(st.integers(min_value=0, max_value=10_000))
def test_round_robin_cycles_through_every_member(cursor):
    team = POLICY.teams["hr_operations"]
    seen = {owner("hr_operations", cursor=cursor + i) for i in range(3)}
    assert seen == {m.id for m in team.members}


def test_priority_is_raised_by_channel_reporter_flag_and_serious_injury_with_reasons():
    base = prioritise(POLICY, category="payroll_query", text="payslip")
    assert base.priority == "P4" and not base.p1
    assert prioritise(POLICY, category="payroll_query", channel="phone").priority == "P3"
    flagged = prioritise(POLICY, category="payroll_query", reporter_urgent=True)
    assert flagged.priority == "P2"
    assert "raised to P2: the reporter marked it urgent" in flagged.reasons
    injury = prioritise(POLICY, category="workplace_injury", injury=InjuryDetails(serious=True))
    assert injury.p1 and injury.reasons[-1] == "raised to P1: serious workplace injury"


def test_raises_are_reapplied_to_a_new_category_default():
    first = prioritise(POLICY, category="payroll_query", text="x", reporter_urgent=True)
    moved = prioritise(POLICY, category="harassment", raises=first.raises)
    assert moved.priority == "P2"
    again = prioritise(POLICY, category="grievance", raises=first.raises)
    assert again.priority == "P2" and any("urgent" in r for r in again.reasons)


@pytest.mark.parametrize(
    ("injury", "expected"),
    [
        (None, ()),
        (InjuryDetails(), ()),
        (InjuryDetails(suitable_employment_available=True), ()),
        (InjuryDetails(serious=True), ("serious injury",)),
        (
            InjuryDetails(serious=True, suitable_employment_available=False),
            ("serious injury", "no suitable employment with the pre-injury employer"),
        ),
        (
            InjuryDetails(suitable_employment_available=False),
            ("no suitable employment with the pre-injury employer",),
        ),
    ],
)
def test_conference_is_required_for_serious_injury_or_no_suitable_employment(injury, expected):
    assert conference_reasons(injury) == expected


def owner(
    team: str,
    *,
    conflicted: frozenset[str] | set[str] = frozenset(),
    loads: dict[str, int] | None = None,
    cursor: int = 0,
    category: str = "general_query",
) -> str:
    return choose_owner(
        POLICY,
        team=team,
        category=category,
        conflicted=frozenset(conflicted),
        open_cases=loads or {},
        cursor=cursor,
    ).id


def test_round_robin_skips_conflicted_members():
    assert owner("hr_operations", cursor=0) == "A-1001"
    assert owner("hr_operations", cursor=0, conflicted={"A-1001"}) == "A-1002"
    assert owner("hr_operations", cursor=1, conflicted={"A-1002"}) == "A-1003"


def test_least_loaded_takes_the_member_with_fewest_open_cases_ties_in_rotation():
    assert owner("employee_relations", loads={"A-2001": 5, "A-2002": 2}) == "A-2002"
    assert owner("employee_relations", loads={}, cursor=1) == "A-2002"
    assert owner("employee_relations", loads={"A-2002": 0}, conflicted={"A-2002"}) == "A-2001"


def test_skill_match_only_picks_members_with_every_required_skill():
    # harassment needs harassment_investigation: Helen and Mei, not Omar.
    picks = {owner("investigations", category="harassment", cursor=c) for c in range(6)}
    assert picks == {"A-3001", "A-3003"}  # equal load: ties rotate among the skilled
    loads = {"A-3001": 3, "A-3003": 1, "A-3002": 0}
    assert owner("investigations", category="harassment", loads=loads) == "A-3003"
    with pytest.raises(NoEligibleOwner):
        owner("investigations", category="harassment", conflicted={"A-3001", "A-3003"})


@given(
    st.sets(st.sampled_from(["A-1001", "A-1002", "A-1003"]), max_size=2),
    st.integers(min_value=0, max_value=50),
)
def test_a_conflicted_person_is_never_chosen(conflicted, cursor):
    assert owner("hr_operations", conflicted=conflicted, cursor=cursor) not in conflicted


def test_escalation_ladder_skips_a_conflicted_target_to_the_next_level():
    first = escalation_target(POLICY, team="investigations", level=1, conflicted=frozenset())
    assert first is not None and (first[0], first[1].id) == (1, "M-9002")  # team lead
    passed = escalation_target(
        POLICY, team="investigations", level=1, conflicted=frozenset({"M-9002"})
    )
    assert passed is not None and (passed[0], passed[1].id) == (3, "M-9003")
    assert (
        escalation_target(
            POLICY, team="investigations", level=1, conflicted=frozenset({"M-9002", "M-9003"})
        )
        is None
    )


def test_policy_errors_name_the_offending_key():
    text = load_policy().model_dump_json().replace('"general_query"', '"nope"', 1)
    with pytest.raises(PolicyError, match="default_category"):
        parse_policy(text, "bad.yaml")
    with pytest.raises(PolicyError, match="not valid YAML"):
        parse_policy("categories: [", "broken.yaml")


def test_policy_rejects_a_category_pointing_at_an_unknown_team():
    raw = load_policy().model_dump(mode="json")
    raw["categories"]["payroll_query"]["team"] = "ghosts"
    raw.pop("source_hash")
    for spec in raw["calendars"].values():
        spec["holidays"] = [str(d) for d in spec["holidays"]]
    with pytest.raises(PolicyError, match="unknown team 'ghosts'"):
        parse_policy(yaml.safe_dump(raw), "edited.yaml")


def test_policy_hash_identifies_the_file_content():
    assert len(POLICY.source_hash) == 64
    assert load_policy().source_hash == POLICY.source_hash
