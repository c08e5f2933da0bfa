"""Investigation rules (pure): the process and stage a fact needs, an outcome's missing
findings, who is a party, what a party's letter holds, the appeal window; input checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.intake.domain.investigations import (
    AllegationInput,
    EvidenceItemInput,
    InterviewInput,
    StatementReviewInput,
    appeal_window_open,
    concerns,
    letter_actions,
    outcome_conflict,
    party_roles,
    process_conflict,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def process(**overrides: Any) -> dict[str, Any]:
    return {"process": "investigation", "stage": "planning", "stage_state": "on_track",
            "ending": None, **overrides}  # fmt: skip


def test_a_fact_needs_the_investigation_process_not_ended_and_the_stage() -> None:
    assert "not in a process" in (process_conflict(None) or "")
    assert "case_management process" in (process_conflict(process(process="case_management")) or "")
    assert process_conflict(process()) is None
    ended = process(stage="closed", stage_state="ended", ending="withdrawn")
    assert "ended (withdrawn)" in (process_conflict(ended) or "")
    assert "planning stage" in (process_conflict(process(), ("findings", "outcome")) or "")
    assert process_conflict(process(stage="outcome"), ("findings", "outcome")) is None


def test_an_outcome_needs_a_current_finding_on_every_allegation() -> None:
    a1 = {"allegation_id": "a1", "allegation_type": "harassment", "respondent_employee_id": "E-1"}
    a2 = {"allegation_id": "a2", "allegation_type": "bullying", "respondent_employee_id": "E-2"}
    assert "record the allegations" in (outcome_conflict([], []) or "")
    found: list[dict[str, Any]] = [{"allegation_id": "a1", "superseded_by": None}]
    reason = outcome_conflict([a1, a2], found) or ""
    assert "a2 (bullying, respondent E-2)" in reason and "a1" not in reason
    superseded_only: list[dict[str, Any]] = [{"allegation_id": "a2", "superseded_by": "f9"}]
    assert outcome_conflict([a1, a2], found + superseded_only)
    assert (
        outcome_conflict([a1, a2], [*found, {"allegation_id": "a2", "superseded_by": None}]) is None
    )


def test_parties_and_what_concerns_them() -> None:
    allegations = [{"respondent_employee_id": "E-7100"}, {"respondent_employee_id": "E-7002"}]
    kw: dict[str, Any] = {"reporter_employee_id": "E-7001", "anonymous": False,
                          "allegations": allegations}  # fmt: skip
    assert party_roles("E-7001", **kw) == {"complainant"}
    assert party_roles("E-7100", **kw) == {"respondent"}
    assert party_roles("E-9999", **kw) == set()
    assert party_roles(None, **kw) == set()
    assert party_roles("E-7001", **{**kw, "anonymous": True}) == set()
    assert concerns(allegations[1], "E-7001", {"complainant"})
    assert concerns(allegations[0], "E-7100", {"respondent"})
    assert not concerns(allegations[1], "E-7100", {"respondent"})
    actions: list[dict[str, Any]] = [
        {"concerns_employee_id": None},
        {"concerns_employee_id": "E-7100"},
        {"concerns_employee_id": "E-7002"},
    ]
    assert letter_actions(actions, "E-7100") == actions[:2]
    assert letter_actions(actions, "E-7001") == actions[:1]


def test_the_appeal_window() -> None:
    approved = {"approval_state": "approved", "appeal_window_ends_at": NOW + timedelta(days=1),
                "window_closed_at": None}  # fmt: skip
    assert appeal_window_open(approved, NOW)
    assert not appeal_window_open(approved, NOW + timedelta(days=2))
    assert not appeal_window_open({**approved, "window_closed_at": NOW}, NOW)
    assert not appeal_window_open({**approved, "approval_state": "decided"}, NOW)
    assert not appeal_window_open(None, NOW)


def test_inputs_name_what_is_wrong() -> None:
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    person = {"role": "witness", "name": "Lee", "email": "lee@example.com"}
    InterviewInput(interviewee=person, scheduled_for=later, duration_minutes=30,
                   video_link="https://meet.example.com/x")  # fmt: skip
    bad: list[tuple[type[Any], dict[str, Any], str]] = [
        (InterviewInput, {"interviewee": person, "scheduled_for": later,
                          "duration_minutes": 30}, "video_link"),
        (InterviewInput, {"interviewee": person, "scheduled_for": later, "duration_minutes": 30,
                          "video_link": "http://x"}, "video_link"),
        (AllegationInput, {"allegation_type": "harassment", "summary": "x",
                           "respondent_employee_id": "E-1", "respondent_name": "A\nB"},
         "respondent_name"),
        (EvidenceItemInput, {"description": "d", "source": "s", "sha256": "xyz"}, "sha256"),
        (StatementReviewInput, {"confirmed": False}, "corrections"),
    ]  # fmt: skip
    for model, data, field in bad:
        with pytest.raises(ValidationError) as raised:
            model.model_validate(data)
        assert field in str(raised.value), (model, field)
    assert EvidenceItemInput(description="d", source="s", sha256=" " + "A" * 64).sha256 == "a" * 64
    assert StatementReviewInput(confirmed=True, corrections="  ").corrections is None
