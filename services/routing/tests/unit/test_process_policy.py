"""The policy's `processes:` and the categories' `process:`: what loads, and what is
refused with the file, the key and the line."""

from __future__ import annotations

import pytest

from services.routing.domain.policy import (
    DEFAULT_POLICY_FILE,
    PolicyError,
    load_policy,
    parse_policy,
)

TEXT = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def refusal(old: str, new: str) -> tuple[str, str]:
    assert TEXT.count(old) == 1, old
    text = TEXT.replace(old, new)
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    return text, str(caught.value)


def test_the_shipped_processes_and_category_defaults():
    policy = load_policy()
    assert set(policy.processes) == {"query", "investigation", "case_management"}
    for category in ("harassment", "discrimination", "grievance", "misconduct", "compliance"):
        assert policy.process_for(category) == "investigation"
    for category in ("contract_dispute", "wrongful_termination"):
        assert policy.process_for(category) == "case_management"
    for category in ("payroll_query", "workplace_injury", "general_query"):
        assert policy.process_for(category) == "query"
    investigation = policy.processes["investigation"]
    assert [s.name for s in investigation.stages] == [
        "planning",
        "interviews",
        "findings",
        "outcome",
        "appeal_window",
        "appeal",
        "closed",
    ]
    assert investigation.approval_by == ("M-9001", "M-9003")
    assert investigation.appeal_window_working_days == 10
    assert set(investigation.endings) == {"outcome_final", "withdrawn", "referred_on"}


def test_an_unknown_requirement_names_file_key_and_line():
    text, message = refusal("requires: [meeting_held]}", "requires: [meeting_hled]}")
    line = line_of(text, "meeting_hled")
    assert f"p.yaml:{line}: processes.case_management.stages.3.requires.0" in message


def test_an_unknown_role_is_refused():
    text, message = refusal("roles: [case_manager]", "roles: [mediator]")
    assert f"p.yaml:{line_of(text, 'mediator')}: processes.case_management.roles.0" in message


def test_a_requirement_on_a_role_the_process_does_not_declare_is_refused():
    _, message = refusal("roles: [investigator, appeal_hearer]", "roles: [appeal_hearer]")
    assert "processes.investigation.stages.1.requires.0" in message
    assert "investigator_assigned needs the process to declare role 'investigator'" in message


def test_an_unknown_enter_on_event_is_refused():
    _, message = refusal("enter_on: [agreement.in_force]", "enter_on: [agreement.signed]")
    assert "processes.case_management.stages.4.enter_on.0" in message
    assert "unknown enter_on event 'agreement.signed'" in message


def test_a_category_naming_an_unknown_process_is_refused():
    text, message = refusal(
        "    team: employee_relations\n    process: case_management\n  wrongful",
        "    team: employee_relations\n    process: mediation\n  wrongful",
    )
    assert "categories.contract_dispute.process" in message
    assert "unknown process 'mediation'" in message
    assert f"p.yaml:{line_of(text, 'process: mediation')}:" in message


def test_without_query_a_category_without_process_is_refused():
    _, message = refusal("  query:\n    label: Query\n", "  quick_query:\n    label: Query\n")
    assert "category 'payroll_query' names unknown process 'query' (the default" in message


def test_an_unknown_approver_and_a_final_stage_with_requirements_are_refused():
    _, message = refusal("approval_by: [M-9001, M-9003]", "approval_by: [M-9001, Z-1]")
    assert "processes.investigation.approval_by.1" in message and "'Z-1'" in message
    _, message = refusal(
        "      - {name: closed, label: Closed}\n    endings:\n      resolved",
        "      - {name: closed, label: Closed, requires: [meeting_held]}\n    endings:\n"
        "      resolved",
    )
    assert "processes.case_management.stages.5" in message
    assert "the final stage 'closed' is entered with an ending" in message


def test_a_stage_named_twice_is_refused():
    _, message = refusal("{name: findings, label: Findings", "{name: interviews, label: Findings")
    assert "processes.investigation.stages.2.name: stage 'interviews' named twice" in message


def test_a_policy_without_processes_puts_cases_in_none():
    start = TEXT.index("processes:\n")
    end = TEXT.index("\ncategories:\n")
    text = TEXT[:start] + TEXT[end:]
    for name in ("investigation", "case_management"):
        text = text.replace(f"    process: {name}\n", "")
    policy = parse_policy(text, "p.yaml")
    assert policy.processes == {} and policy.process_for("harassment") is None
