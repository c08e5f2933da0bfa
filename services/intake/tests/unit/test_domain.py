from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.intake.domain.case import SubmitCase, advance_status, format_reference

VALID = {
    "subject": "Payslip missing overtime",
    "description": "My October overtime is not on my payslip.",
    "reporter": {"employee_id": "E-1", "name": "Jo", "email": "jo@example.com"},
}


def test_reference_is_human_friendly_and_sortable():
    when = datetime(2026, 3, 1, tzinfo=UTC)
    assert format_reference(when, 123) == "HR-2026-000123"
    assert format_reference(when, 1_234_567) == "HR-2026-1234567"


def test_fingerprint_ignores_whitespace_padding_but_not_content():
    a = SubmitCase.model_validate(VALID)
    b = SubmitCase.model_validate({**VALID, "subject": "  Payslip missing overtime "})
    c = SubmitCase.model_validate({**VALID, "subject": "Payslip missing bonus"})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subject": "x"}, "subject"),
        ({"subject": "two\nlines"}, "subject"),
        ({"description": "short"}, "description"),
        ({"reporter": {"employee_id": "E-1", "name": "Jo", "email": "not-an-email"}}, "email"),
        ({"category": "Not A Slug"}, "category"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_invalid_submissions_name_the_field(change, field):
    with pytest.raises(ValidationError) as info:
        SubmitCase.model_validate({**VALID, **change})
    assert field in str(info.value)


def test_status_only_moves_forward():
    assert advance_status("new", "routed") == "routed"
    assert advance_status("assigned", "routed") == "assigned"
    assert advance_status("routed", "assigned") == "assigned"
