from datetime import UTC, datetime, timedelta

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from services.routing.domain.policy import PolicyError, load_policy, parse_policy
from services.routing.domain.triage import classify, prioritise, round_robin, sla_deadlines

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


def test_sla_deadlines_follow_priority_targets():
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    deadlines = sla_deadlines(POLICY, priority="P1", start=start)
    assert deadlines.first_response_due == start + timedelta(hours=4)
    assert deadlines.resolution_due == start + timedelta(hours=72)


@given(st.integers(min_value=0, max_value=10_000))
def test_round_robin_cycles_through_every_member(cursor):
    team = POLICY.teams["hr_operations"]
    seen = {round_robin(POLICY, team="hr_operations", cursor=cursor + i)[0].id for i in range(3)}
    assert seen == {m.id for m in team.members}


def test_policy_errors_name_the_offending_key():
    text = "version: 1\ndefault_category: nope\npriorities: {}\ncategories: {}\nteams: {}\n"
    with pytest.raises(PolicyError, match="default_category"):
        parse_policy(text, "bad.yaml")
    with pytest.raises(PolicyError, match="not valid YAML"):
        parse_policy("categories: [", "broken.yaml")


def test_policy_rejects_a_category_pointing_at_an_unknown_team():
    raw = load_policy().model_dump(mode="json")
    raw["categories"]["payroll_query"]["team"] = "ghosts"
    raw.pop("source_hash")
    with pytest.raises(PolicyError, match="unknown team 'ghosts'"):
        parse_policy(yaml.safe_dump(raw), "edited.yaml")


def test_policy_hash_identifies_the_file_content():
    assert len(POLICY.source_hash) == 64
    assert load_policy().source_hash == POLICY.source_hash
