"""Policy validation: errors name the file, the key path and the line."""

from pathlib import Path

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


def test_shipped_policy_is_valid_and_covers_every_case_type():
    policy = load_policy()
    assert {
        "payroll_query",
        "leave_query",
        "policy_question",
        "grievance",
        "harassment",
        "discrimination",
        "misconduct",
        "compliance",
        "contract_dispute",
        "wrongful_termination",
        "workplace_injury",
        "general_query",
    } <= set(policy.categories)
    assert {t.strategy for t in policy.teams.values()} == {
        "round_robin",
        "least_loaded",
        "skill_match",
    }


def test_a_bad_time_zone_names_file_key_and_line():
    text = TEXT.replace("time_zone: Australia/Sydney", "time_zone: Mars/Olympus")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policy.yaml")
    line = line_of(text, "Mars/Olympus")
    assert f"policy.yaml:{line}: calendars.sydney_office.time_zone" in str(caught.value)
    assert "unknown IANA time zone" in str(caught.value)


def test_a_bad_member_email_points_at_the_member_line():
    text = TEXT.replace("email: james.ng@example.com", "email: not-an-email")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    line = line_of(text, "not-an-email")
    assert f"p.yaml:{line}: teams.injury_management.members.1.email" in str(caught.value)


def test_an_unknown_team_reference_points_at_its_line():
    text = TEXT.replace("    team: hr_operations\n", "    team: ghosts\n", 1)
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    line = line_of(text, "team: ghosts")
    assert f"p.yaml:{line}: categories.payroll_query.team:" in str(caught.value)
    assert "unknown team 'ghosts'" in str(caught.value)


def test_bad_hours_escalation_and_skills_are_all_reported():
    text = (
        TEXT.replace('mon: ["08:00-20:00"]', 'mon: ["20:00-08:00"]')
        .replace("to: M-9001}", "to: M-0000}")
        .replace("required_skills: [compliance]", "required_skills: [astrology]")
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    assert "calendars.investigations_desk.hours" in str(caught.value)
    assert "closes before it opens" in str(caught.value)
    # A schema error stops before the cross-reference checks; fix it and they show.
    text = text.replace('mon: ["20:00-08:00"]', 'mon: ["08:00-20:00"]')
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    message = str(caught.value)
    assert f"p.yaml:{line_of(text, 'M-0000')}: escalation_ladders.standard.1.to" in message
    assert "categories.compliance.required_skills" in message and "astrology" in message


def test_unknown_keys_are_refused(tmp_path: Path):
    file = tmp_path / "p.yaml"
    file.write_text(TEXT.replace("warn_at: 0.75", "warn_at: 0.75\n  warn_at_typo: 1"))
    with pytest.raises(PolicyError, match=rf"{file}:\d+: sla.warn_at_typo: Extra inputs"):
        load_policy(file)
