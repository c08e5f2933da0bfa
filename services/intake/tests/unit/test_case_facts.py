"""Respondent and injury input at intake's doors: limits, merging a later decision, form fields."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from starlette.datastructures import FormData

from services.intake.domain.case import InjuryFactsChange, SubmitCase
from services.intake.entrypoints.portal.case_facts import form_errors, injury_from, respondents_from

BASE = {
    "subject": "Comments at work",
    "description": "Comments about me in front of the team.",
    "reporter": {"employee_id": "E-1", "name": "Sam", "email": "sam@example.com"},
}


def test_fingerprint_without_facts_is_unchanged_by_the_new_fields() -> None:
    plain = SubmitCase.model_validate(BASE)
    with_empty = SubmitCase.model_validate({**BASE, "respondents": [], "injury": None})
    named = SubmitCase.model_validate({**BASE, "respondents": [{"name": "Jordan Blake"}]})
    assert plain.fingerprint() == with_empty.fingerprint() != named.fingerprint()


def test_a_later_decision_changes_only_what_it_gives() -> None:
    current = {
        "date_of_injury": "2026-11-02",
        "serious": False,
        "suitable_employment_available": None,
        "jurisdiction": None,
    }
    change = InjuryFactsChange.model_validate({"suitable_employment_available": False})
    merged = change.applied_to(current)
    assert merged.model_dump(mode="json") == {**current, "suitable_employment_available": False}
    # null is a value: "not yet known" again.
    back = InjuryFactsChange.model_validate({"suitable_employment_available": None})
    assert back.applied_to(merged.model_dump(mode="json")).suitable_employment_available is None


@pytest.mark.parametrize("body", [{}, {"serious": None}, {"serious": "maybe"}, {"x": 1}])
def test_an_empty_or_bad_decision_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        InjuryFactsChange.model_validate(body)


def test_form_rows_and_errors_name_the_form_fields() -> None:
    form = FormData(
        [
            ("respondent_1_name", " Jordan Blake "),
            ("respondent_2_email", "not-an-address"),
            ("respondent_3_name", ""),
            ("injury_serious", "yes"),
            ("injury_suitable_employment_available", "unknown"),
        ]
    )
    respondents = respondents_from(form)
    assert respondents == [{"name": "Jordan Blake"}, {"email": "not-an-address"}]
    assert injury_from(form) == {"serious": True, "suitable_employment_available": None}
    assert injury_from(FormData([])) is None
    with pytest.raises(ValidationError) as caught:
        SubmitCase.model_validate(
            {**BASE, "respondents": respondents, "injury": {"serious": "perhaps"}}
        )
    errors = form_errors(caught.value, "reporter")
    assert set(errors) == {"respondent_2_email", "injury_serious"}
