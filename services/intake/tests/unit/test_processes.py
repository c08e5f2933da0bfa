"""The process doors' pure rules: input, intake's early 409s, the stage trail, and what
the case history says about the process."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from services.intake.domain.history import Actor, CaseBefore, Cause, consumed_entry, describe
from services.intake.domain.processes import (
    ConflictDeclaration,
    ProcessChange,
    ProcessRoleAssignment,
    StageChange,
    process_conflict,
    role_conflict,
    stage_conflict,
    stage_trail,
)
from shared.envelope import Actor as EnvelopeActor
from shared.events import (
    CaseProcessAssigned,
    CaseProcessRoleAssigned,
    CaseStageEntered,
    CaseStageOverdue,
    EventPayload,
    Person,
    ProcessStage,
    make_event,
)


def investigation(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "process": "investigation",
        "label": "Investigation",
        "stages": [
            {"name": "planning", "label": "Planning", "target_working_days": 5},
            {"name": "interviews", "label": "Interviews", "target_working_days": 15},
            {"name": "findings", "label": "Findings", "target_working_days": 10},
            {"name": "closed", "label": "Closed", "target_working_days": None},
        ],
        "endings": ["outcome_final", "withdrawn", "referred_on"],
        "stage": "interviews",
        "stage_label": "Interviews",
        "stage_state": "on_track",
        "ending": None,
    }
    return {**row, **overrides}


def fields_of(error: ValidationError) -> set[str]:
    return {str(e["loc"][0]) for e in error.errors()}


def test_requests_are_validated_naming_the_field() -> None:
    assert StageChange(stage="findings", ending=" ", reason="").ending is None
    assert StageChange(stage="findings", reason=" ok ").reason == "ok"
    assert ConflictDeclaration(reason="I manage the respondent").staff_id is None
    bad: list[tuple[type[Any], dict[str, Any], str]] = [
        (ProcessChange, {"process": "case_management"}, "reason"),
        (ProcessChange, {"process": "Case Management", "reason": "mediation first"}, "process"),
        (ProcessChange, {"process": "query", "reason": "x\x00y"}, "reason"),
        (StageChange, {"stage": ""}, "stage"),
        (StageChange, {"stage": "closed", "ending": "Not An Ending"}, "ending"),
        (StageChange, {"stage": "planning", "reason": "r" * 2001}, "reason"),
        (StageChange, {"stage": "planning", "extra": 1}, "extra"),
        (ProcessRoleAssignment, {"role": "judge", "staff_id": "A-3001"}, "role"),
        (ProcessRoleAssignment, {"role": "investigator", "staff_id": "a b"}, "staff_id"),
        (ConflictDeclaration, {"reason": "no"}, "reason"),
        (ConflictDeclaration, {"staff_id": "/x", "reason": "I manage them"}, "staff_id"),
    ]
    for model, body, field in bad:
        with pytest.raises(ValidationError) as error:
            model.model_validate(body)
        assert field in fields_of(error.value), (model.__name__, body)


def test_intake_refuses_early_what_its_projection_shows_cannot_apply() -> None:
    row = investigation()
    assert stage_conflict(row, StageChange(stage="findings")) is None
    assert stage_conflict(row, StageChange(stage="planning", reason="back")) is None
    unknown = stage_conflict(row, StageChange(stage="ground_rules"))
    assert unknown is not None and "no stage 'ground_rules'" in unknown
    bad_ending = stage_conflict(row, StageChange(stage="closed", ending="resolved_by_agreement"))
    assert bad_ending is not None and "no ending" in bad_ending
    assert "only with the final stage (Closed)" in (
        stage_conflict(row, StageChange(stage="findings", ending="withdrawn")) or ""
    )
    assert "needs an ending" in (stage_conflict(row, StageChange(stage="closed")) or "")
    assert "needs a reason" in (
        stage_conflict(row, StageChange(stage="closed", ending="withdrawn")) or ""
    )
    assert (
        stage_conflict(row, StageChange(stage="closed", ending="withdrawn", reason="withdrew"))
        is None
    )
    assert "already in the Interviews stage" in (
        stage_conflict(row, StageChange(stage="interviews")) or ""
    )
    assert stage_conflict(None, StageChange(stage="planning")) == "the case is not in a process yet"
    ended = investigation(stage="closed", stage_state="ended", ending="withdrawn")
    assert "has ended (withdrawn)" in (stage_conflict(ended, StageChange(stage="planning")) or "")
    assert "has ended" in (
        process_conflict(ended, ProcessChange(process="query", reason="light")) or ""
    )
    assert "has ended" in (role_conflict(ended) or "")
    assert role_conflict(row) is None
    assert "already in the Investigation process" in (
        process_conflict(row, ProcessChange(process="investigation", reason="again")) or ""
    )
    assert process_conflict(row, ProcessChange(process="query", reason="light")) is None
    assert process_conflict(None, ProcessChange(process="query", reason="light")) is None


def test_the_stage_trail_marks_done_current_and_next() -> None:
    positions = [(s["name"], s["position"]) for s in stage_trail(investigation())]
    assert positions == [
        ("planning", "done"),
        ("interviews", "current"),
        ("findings", "next"),
        ("closed", "next"),
    ]
    fresh = [s["position"] for s in stage_trail(investigation(stage=None))]
    assert fresh == ["next"] * 4


NOBODY = CaseBefore(category="harassment", owner_id="A-1001", owner_name="Priya Shah")
WHEN = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)


def _line(payload: EventPayload, cause: Cause | None = None) -> tuple[str, str, str | None]:
    envelope = make_event(
        payload,
        producer="routing",
        actor=EnvelopeActor(type="service", id="routing"),
        case_id=uuid4(),
    )
    entry = consumed_entry(envelope, NOBODY, cause)
    return entry.kind, describe(entry.kind, entry.summary, {}), entry.actor.name


def test_the_history_tells_the_process_in_words() -> None:
    stages = [ProcessStage(name="planning", label="Planning", target_working_days=5)]
    assigned = CaseProcessAssigned(
        reference="HR-1", process="investigation", label="Investigation", stages=stages,
        assigned_by="policy",
    )  # fmt: skip
    assert _line(assigned)[:2] == (
        "process_assigned",
        "Process: Investigation (by the policy for the category)",
    )
    switched = CaseProcessAssigned(
        reference="HR-1", process="case_management", label="Independent case management",
        stages=stages, previous_process="investigation", assigned_by="staff",
        reason="both want mediation",
    )  # fmt: skip
    asker = Cause("process_change_requested", Actor("agent", "M-9002", "Victor Almeida"))
    _, text, actor = _line(switched, asker)
    assert text == (
        "Process changed from investigation to Independent case management: both want mediation"
    )
    assert actor == "Victor Almeida"  # the decision is shown as the asker's doing
    entered = CaseStageEntered(
        reference="HR-1", process="investigation", stage="interviews", label="Interviews",
        previous_stage="planning", direction="forward", target_at=WHEN,
    )  # fmt: skip
    assert _line(entered)[1] == "Stage moved on to Interviews, target 2026-12-04 17:00 UTC"
    ended = CaseStageEntered(
        reference="HR-1", process="investigation", stage="closed", label="Closed",
        direction="final", ending="withdrawn", reason="the complainant withdrew",
    )  # fmt: skip
    assert _line(ended)[1] == "Process ended: Closed (withdrawn): the complainant withdrew"
    overdue = CaseStageOverdue(
        reference="HR-1", process="investigation", stage="planning", label="Planning",
        target_at=WHEN,
        escalated_to=Person(id="M-9002", name="Victor Almeida", email="victor@example.com"),
    )  # fmt: skip
    assert _line(overdue)[1] == (
        "Stage overdue: Planning, target was 2026-12-04 17:00 UTC, escalated to Victor Almeida"
    )
    role = CaseProcessRoleAssigned(
        reference="HR-1", process="investigation", role="investigator",
        person=Person(id="A-3001", name="Helen Carter", email="helen@example.com"),
    )  # fmt: skip
    assert _line(role)[1] == "Helen Carter is the investigator"
    assert describe(
        "stage_change_requested",
        {"stage": "closed", "stage_label": "Closed", "ending": "withdrawn", "reason": "withdrew"},
        {},
    ) == ("Requested a move to the Closed stage (ending: withdrawn): withdrew")
    assert (
        describe(
            "conflict_declared", {"staff_id": "A-3001", "reason": "friend"}, {"A-3001": "Helen"}
        )
        == "Conflict of interest declared for Helen: friend"
    )
    assert (
        describe(
            "request_refused", {"request_type": "case.stage_change_requested", "reason": "x"}, {}
        )
        == "Requested stage change was refused: x"
    )


def test_the_history_names_what_the_investigator_and_the_case_manager_recorded() -> None:
    from services.intake.domain.history import describe

    assert describe("allegation_recorded", {}, {}) == "Allegation recorded"
    assert describe("agreement_obligation_met", {}, {}) == "Obligation recorded as met"
    assert describe("mediation_meeting_held", {}, {}) == "Meeting held"
