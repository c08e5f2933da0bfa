"""Independent case management's rules (pure): input checks, who reads what, states."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from pydantic import BaseModel, ValidationError

from services.intake.domain import mediation as rules

NOW = datetime.now(UTC)
SAM = {"party_role": "employee", "employee_id": "E-7001", "name": "Sam Rivera",
       "email": "sam.rivera@example.com", "account": "SAM-ACCOUNT",
       "desired_outcomes": ["A rota"], "documents": [{"filename": "rota.txt"}],
       "recorded_at": NOW}  # fmt: skip
JORDAN = {**SAM, "party_role": "employer_representative", "employee_id": "E-7100",
          "name": "Jordan Blake", "account": "JORDAN-ACCOUNT", "documents": []}  # fmt: skip


def _errors(model: type[BaseModel], body: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return {str(e["loc"][-1]) for e in caught.value.errors()}


def test_a_term_is_an_obligation_with_both_owner_and_due_day_or_neither() -> None:
    due = (date.today() + timedelta(days=10)).isoformat()
    assert rules.TermInput.model_validate({"text": "x"}).owner_role is None
    assert rules.TermInput.model_validate({"text": "x", "owner_role": "employee", "due_on": due})
    assert _errors(rules.TermInput, {"text": "x", "owner_role": "employee"}) == {"due_on"}
    assert _errors(rules.TermInput, {"text": "x", "due_on": due}) == {"due_on"}
    past = {"text": "x", "owner_role": "employee", "due_on": "2001-01-01"}
    assert _errors(rules.TermInput, past) == {"due_on"}


def test_a_meeting_needs_a_place_or_an_https_link_in_the_future() -> None:
    ahead = (NOW + timedelta(days=3)).isoformat()
    assert rules.MeetingInput.model_validate(
        {"scheduled_for": ahead, "duration_minutes": 60, "location": "Room 2"}
    )
    assert _errors(rules.MeetingInput, {"scheduled_for": ahead, "duration_minutes": 60}) == {
        "location"
    }
    link = {"scheduled_for": ahead, "duration_minutes": 60, "video_link": "http://x"}
    assert _errors(rules.MeetingInput, link) == {"video_link"}
    past = {"scheduled_for": "2001-01-01T10:00:00Z", "duration_minutes": 60, "location": "R"}
    assert _errors(rules.MeetingInput, past) == {"scheduled_for"}


def test_process_and_stage_conflicts() -> None:
    assert rules.process_conflict(None)
    assert rules.process_conflict({"process": "investigation"})
    assert rules.process_conflict({"process": "case_management", "ending": "withdrawn"})
    assert rules.process_conflict({"process": "case_management", "stage": "assessment"}) is None
    assert rules.agreement_stage_conflict({"stage": "discussions"})
    assert rules.agreement_stage_conflict({"stage": "agreement"}) is None


def _meeting() -> dict[str, Any]:
    return {"meeting_id": uuid4(), "scheduled_for": NOW, "duration_minutes": 60,
            "time_zone": "UTC", "location": "Room 2", "video_link": None,
            "case_manager": {"name": "Grace Okafor"}, "held_at": NOW,
            "discussed": "SHARED", "proposals": ["P"], "privileged_notes": "PRIVATE"}  # fmt: skip


def _agreement(acceptances: dict[str, Any], in_force: int | None = None) -> dict[str, Any]:
    term = uuid4()
    return {"agreement_id": uuid4(), "version": 2, "acceptances": acceptances,
            "in_force_version": in_force, "in_force_at": NOW if in_force else None,
            "terms": [{"term_id": str(term), "text": "Rota ahead",
                       "owner_role": "employer_representative", "due_on": "2030-01-01"},
                      {"term_id": str(uuid4()), "text": "Confidential"}]}  # fmt: skip


def _staff(viewer_is_case_manager: bool) -> dict[str, Any]:
    return rules.staff_view(
        process={"process": "case_management", "stage": "agreement"}, case_manager=None,
        viewer_is_case_manager=viewer_is_case_manager, assessments=[SAM, JORDAN],
        ground_rules=[], meetings=[_meeting()], agreement=None, obligations=[], follow_ups=[],
    )  # fmt: skip


def test_privileged_notes_are_for_the_case_manager_only() -> None:
    assert _staff(True)["meetings"][0]["privileged_notes"] == "PRIVATE"
    assert _staff(False)["meetings"][0]["privileged_notes"] is None
    assert "PRIVATE" not in repr(_staff(False))


def test_a_party_reads_their_own_account_and_obligations_only() -> None:
    agreement = _agreement({"employee": {"version": 2, "accepted_at": "x"}})
    for role, own, other in (("employee", "SAM", "JORDAN"),
                             ("employer_representative", "JORDAN", "SAM")):  # fmt: skip
        view = rules.party_view(
            role=role, case={"case_id": uuid4(), "reference": "HR-1"},
            process={"process": "case_management", "stage": "agreement"},
            assessments=[SAM, JORDAN], ground_rules=[], meetings=[_meeting()],
            agreement=agreement, obligations=[],
        )  # fmt: skip
        shown = repr(view)
        assert f"{own}-ACCOUNT" in shown and f"{other}-ACCOUNT" not in shown
        assert "PRIVATE" not in shown and "SHARED" in shown
        owed = [o["owner_role"] for o in view["obligations"]]
        assert owed == ([role] if role == "employer_representative" else [])
        assert view["agreement"]["you_accepted"] == (role == "employee")


def test_agreement_states_count_acceptances_of_the_current_version_only() -> None:
    assert rules.agreement_state(None) is None
    assert rules.agreement_state(_agreement({})) == "draft"
    stale = {"employee": {"version": 1, "accepted_at": "x"}}
    assert rules.agreement_state(_agreement(stale)) == "draft"
    one = {"employee": {"version": 2, "accepted_at": "x"}}
    assert rules.agreement_state(_agreement(one)) == "accepted_by_one"
    both = {**one, "employer_representative": {"version": 2, "accepted_at": "y"}}
    assert rules.agreement_state(_agreement(both)) == "accepted_by_both"
    assert rules.agreement_state(_agreement(both, in_force=2)) == "in_force"
    tracked = rules.obligations_view(_agreement(both), [])
    assert [o["state"] for o in tracked] == ["draft"]  # the untracked term is left out
