"""A person resolving a flagged respondent: the request's input and its history line."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.intake.domain.case import RespondentResolutionChange
from services.intake.domain.history import describe
from shared.events import CaseRespondentResolutionRequested, RespondentResolution


def test_the_request_takes_an_employee_id_and_an_optional_reason() -> None:
    change = RespondentResolutionChange.model_validate({"employee_id": " E-7100 ", "reason": ""})
    assert change.employee_id == "E-7100" and change.reason is None
    for body, field in [
        ({}, "employee_id"),
        ({"employee_id": "has spaces"}, "employee_id"),
        ({"employee_id": "E-7100", "reason": "x" * 2001}, "reason"),
        ({"employee_id": "E-7100", "colour": "red"}, "colour"),
    ]:
        with pytest.raises(ValidationError) as refused:
            RespondentResolutionChange.model_validate(body)
        assert refused.value.errors()[0]["loc"][-1] == field


def test_the_event_and_the_history_line_name_the_position_and_the_employee() -> None:
    event = CaseRespondentResolutionRequested(
        reference="HR-2026-000001", position=0, employee_id="E-7100", reason=None
    )
    assert event.event_type == "case.respondent_resolution_requested"
    assert RespondentResolution(position=0, employee_id="E-7100", matched_by="person")
    summary = {"position": 0, "employee_id": "E-7100", "reason": "the shift lead"}
    assert describe("respondent_resolution_requested", summary, {}) == (
        "Requested respondent 1 be resolved to E-7100: the shift lead"
    )
    refused = {"request_type": "case.respondent_resolution_requested", "reason": "no employee"}
    assert describe("request_refused", refused, {}) == (
        "Requested respondent resolution was refused: no employee"
    )
