"""Resolving named respondents against the directory: exact id, unique email, unique name."""

from __future__ import annotations

import pytest

from services.routing.domain.respondents import (
    Candidate,
    conflicted_respondent_ids,
    named_respondents,
    resolve,
)
from shared.events import RespondentNamed

PEOPLE = [
    Candidate("A-3001", "Helen Carter", "helen.carter@example.com"),
    Candidate("E-7002", "Alex Chen", "alex.chen@example.com"),
    Candidate("E-7003", "Alex Chen", "alex.chen2@example.com"),
    Candidate("E-7100", "Jordan Blake", "Jordan.Blake@Example.com"),
    Candidate("E-7200", "Zoë Brandt", None),
]


@pytest.mark.parametrize(
    ("named", "expected"),
    [
        ({"employee_id": "A-3001"}, ("A-3001", "employee_id", None)),
        # An unknown id does not stop a unique email from matching.
        ({"employee_id": "E-0000", "email": "JORDAN.blake@example.com"}, ("E-7100", "email", None)),
        ({"name": "  helen   CARTER "}, ("A-3001", "name", None)),
        ({"name": "Zoe\u0308 Brandt"}, ("E-7200", "name", None)),  # decomposed umlaut
        ({"name": "Alex Chen"}, (None, None, "ambiguous")),
        ({"name": "Alex Chen", "email": "alex.chen2@example.com"}, ("E-7003", "email", None)),
        ({"name": "Nobody"}, (None, None, "not_found")),
        ({"email": "someone@example.com"}, (None, None, "not_found")),
    ],
)
def test_resolution(named: dict[str, str], expected: tuple[str | None, ...]) -> None:
    resolution = resolve(RespondentNamed.model_validate(named), 4, PEOPLE)
    assert resolution.position == 4
    assert (resolution.employee_id, resolution.matched_by, resolution.problem) == expected


def test_older_id_field_is_merged_without_duplicates() -> None:
    named = named_respondents([RespondentNamed(employee_id="E-1", name="A")], ["E-1", "E-2", "E-2"])
    assert [n.employee_id for n in named] == ["E-1", "E-2"]


def test_unknown_ids_named_are_still_kept_off_the_case() -> None:
    named = [
        RespondentNamed(employee_id="A-3001"),
        RespondentNamed(employee_id="X-404"),
        RespondentNamed(name="Nobody"),
    ]
    resolutions = [resolve(n, i, PEOPLE) for i, n in enumerate(named)]
    assert conflicted_respondent_ids(named, resolutions) == ("A-3001", "X-404")


def test_a_respondent_must_be_named_somehow() -> None:
    with pytest.raises(ValueError, match="name a respondent"):
        RespondentNamed()
