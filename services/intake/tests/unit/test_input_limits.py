"""Input limits as pure rules: NUL in any string field, instants outside the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from services.intake.domain import case as domain
from services.intake.domain.case import CLOCK_SKEW, EARLIEST_INSTANT, IntakeInput, within_window

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(st.datetimes(timezones=offsets))
def test_any_instant_is_accepted_in_utc_or_refused_with_a_value_error(value):
    try:
        accepted = within_window(value, now=NOW)
    except ValueError:
        return
    assert accepted.tzinfo is UTC and accepted == value
    assert EARLIEST_INSTANT <= accepted <= NOW + CLOCK_SKEW


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        (EARLIEST_INSTANT, True),
        (EARLIEST_INSTANT - timedelta(microseconds=1), False),
        (NOW + CLOCK_SKEW, True),
        (NOW + CLOCK_SKEW + timedelta(microseconds=1), False),
        (datetime(1, 1, 1, tzinfo=UTC), False),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), False),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), False),
        (datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))), False),
    ],
)
def test_the_window_edges(value, accepted):
    if accepted:
        assert within_window(value, now=NOW) == value
    else:
        with pytest.raises(ValueError):
            within_window(value, now=NOW)


def request_models() -> list[type[BaseModel]]:
    return [
        model
        for model in vars(domain).values()
        if isinstance(model, type) and issubclass(model, IntakeInput) and model is not IntakeInput
    ]


def string_fields(model: type[BaseModel]) -> list[str]:
    return [
        name
        for name, field in model.model_fields.items()
        if "str" in str(field.annotation) or "Literal" in str(field.annotation)
    ]


def test_every_request_model_derives_from_the_input_base():
    names = {model.__name__ for model in request_models()}
    assert {"SubmitCase", "NewMessage", "AnonymousReport", "PhoneCall", "PhoneCaller"} <= names
    assert {"AgentNote", "StatusChange", "Recategorisation", "AssignmentChange"} <= names
    assert "ReporterInput" in names


@given(st.text(max_size=20), st.text(max_size=20))
def test_a_nul_in_any_string_field_names_that_field(before, after):
    value = f"{before}\x00{after}"
    for model in request_models():
        for name in string_fields(model):
            with pytest.raises(ValidationError) as refused:
                model.model_validate({name: value})
            assert (name,) in [tuple(error["loc"]) for error in refused.value.errors()], (
                model.__name__,
                name,
            )
