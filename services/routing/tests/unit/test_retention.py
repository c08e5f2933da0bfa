"""Retention rules: periods after closure, the rule's text, the shipped schedule and its
validation at load, and which legal holds cover a case."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
import yaml

from services.routing.domain.policy import DEFAULT_POLICY_FILE, PolicyError, load_policy
from services.routing.domain.retention import (
    Hold,
    RetentionPeriod,
    hold_covers,
    retention_move,
)


def test_the_shipped_schedule_keeps_queries_two_years_and_complaints_seven():
    retention = load_policy().retention
    assert retention.rule_for("payroll_query") == "retention: payroll_query 2 years after closure"
    assert retention.period_for("harassment").years == 7
    assert retention.period_for("discrimination").years == 7
    assert retention.period_for("workplace_injury").years == 7
    # A category not listed takes the default, and the rule says so.
    assert retention.rule_for("grievance") == "retention: grievance (default) 6 years after closure"


def test_periods_count_calendar_years_or_days_after_closure():
    closed = datetime(2028, 2, 29, 16, 30, tzinfo=UTC)
    assert RetentionPeriod(years=2).due_after(closed) == datetime(2030, 2, 28, 16, 30, tzinfo=UTC)
    assert RetentionPeriod(years=4).due_after(closed) == datetime(2032, 2, 29, 16, 30, tzinfo=UTC)
    assert RetentionPeriod(days=30).due_after(closed) == datetime(2028, 3, 30, 16, 30, tzinfo=UTC)
    assert RetentionPeriod(days=1).describe() == "1 day"


def _policy_with(tmp_path: Path, retention: object) -> Path:
    raw = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    raw["retention"] = retention
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        ({"categories": {"payrol_query": {"years": 2}}}, "unknown category 'payrol_query'"),
        ({"default": {"years": 2, "days": 3}}, "give exactly one of years or days"),
        ({"default": {}}, "give exactly one of years or days"),
        ({"default": {"years": 0}}, "greater than or equal to 1"),
        ({"default": {"months": 3}}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_schedule_is_refused_at_load_naming_the_key(tmp_path, retention, message):
    with pytest.raises(PolicyError, match=r"policy.yaml:\d+: retention\.") as caught:
        load_policy(_policy_with(tmp_path, retention))
    assert message in str(caught.value)


def test_a_hold_covers_its_case_a_matter_containing_it_or_one_of_its_subjects():
    case, other = uuid4(), uuid4()
    subjects = ["employee:E-1", "email:" + "a" * 64]
    on_case = Hold(uuid4(), case, None, ())
    on_matter = Hold(uuid4(), None, None, (other, case))
    on_person = Hold(uuid4(), None, "employee:E-1", ())
    elsewhere = [Hold(uuid4(), other, None, ()), Hold(uuid4(), None, "employee:E-2", ())]
    for hold in (on_case, on_matter, on_person):
        assert hold_covers(hold, case_id=case, subject_ids=subjects)
    for hold in (*elsewhere, Hold(uuid4(), None, None, (other,))):
        assert not hold_covers(hold, case_id=case, subject_ids=subjects)


@pytest.mark.parametrize(
    ("from_status", "to_status", "move"),
    [
        ("in_progress", "resolved", "arm"),  # nothing closes a resolved case by itself
        ("in_progress", "closed", "arm"),
        ("resolved", "closed", "arm"),  # the closure starts the period again
        ("resolved", "in_progress", "cancel"),  # reopened
        ("closed", "in_progress", "cancel"),
        ("closed", "closed", "none"),
        ("assigned", "in_progress", "none"),
        ("in_progress", "waiting_on_employee", "none"),
    ],
)
def test_retention_starts_when_a_case_ends_and_a_reopening_stops_it(from_status, to_status, move):
    assert retention_move(from_status, to_status) == move
