"""Data-subject rights' pure rules: who decides, what a decision erases, what an export
shows (services/intake/domain/privacy_rights.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from services.intake.domain.privacy_rights import (
    WITHHELD,
    ErasureDecisionInput,
    ErasureRequestInput,
    build_export,
    decision_refusal,
    erased_scopes,
    export_counts,
    subject_id_of,
)
from shared.auth import Principal

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def officer(subject: str) -> Principal:
    return Principal(subject=subject, roles=frozenset({"privacy_officer"}))


def test_a_request_needs_an_employee_id_or_an_address() -> None:
    with pytest.raises(ValidationError, match="employee_id or email is required") as raised:
        ErasureRequestInput.model_validate({"reason": "asked", "employee_id": "  "})
    # A field is named (a 422 says where), not the body as a whole.
    assert [e["loc"] for e in raised.value.errors()] == [("email",)]
    with pytest.raises(ValidationError, match="employee_id or email is required"):
        ErasureRequestInput.model_validate({"reason": "asked"})
    by_mail = ErasureRequestInput.model_validate({"reason": "asked", "email": "a@example.com"})
    assert subject_id_of(employee_id=None, email=str(by_mail.email)).startswith("email:")
    assert subject_id_of(employee_id="E-1", email="a@example.com") == "employee:E-1"


def test_keep_goes_with_an_approval_only() -> None:
    with pytest.raises(ValidationError, match="keep applies only to an approval"):
        ErasureDecisionInput.model_validate(
            {"decision": "refuse", "reason": "no", "keep": [str(uuid4())]}
        )


def test_the_requester_may_not_decide_and_a_decision_is_final() -> None:
    pending = {"requested_by": "PO-1", "decided_at": None, "decision": None}
    own = decision_refusal(pending, officer("PO-1"))
    assert own is not None and own.kind == "forbidden" and "second" in own.detail
    assert decision_refusal(pending, officer("PO-2")) is None
    decided = {**pending, "decided_at": NOW, "decision": "refuse"}
    again = decision_refusal(decided, officer("PO-2"))
    assert again is not None and again.kind == "conflict" and "final" in again.detail


def test_scopes_are_everything_unless_cases_are_kept() -> None:
    a, b = uuid4(), uuid4()
    assert erased_scopes([a, b], []) is None
    assert erased_scopes([a, b], [b]) == [str(a), "-"]


def _case(**fields: Any) -> dict[str, Any]:
    return {
        "case_id": uuid4(),
        "reference": "HR-1",
        "status": "assigned",
        "category": "payroll_query",
        "channel": "api",
        "submitted_at": NOW,
        "updated_at": NOW,
        **fields,
    }


def test_an_export_gives_own_text_and_withholds_everyone_elses() -> None:
    reported = _case(
        subject="Pay",
        description="Zed Other moved my cut-off",
        reporter_name="Kofi",
        reporter_email="kofi@example.com",
        respondents_named=1,
    )
    mine = {"case_id": reported["case_id"], "channel": "api", "received_at": NOW, "body": "mine"}
    theirs = {**mine, "body": "HR's reply naming Bea"}
    named = _case(name="Kofi", email=None, reference="HR-2")
    export = build_export(
        request_id=uuid4(),
        subject={"employee_id": "E-1", "email": None},
        generated_at=NOW,
        reported=[reported],
        messages=[mine, theirs],
        respondent_in=[named],
        interviews=[],
        statements=[],
        conferences=[],
        notifications=[],
        is_own_message=lambda m: m["body"] == "mine",
    )
    [case] = export["cases_reported"]
    assert case["description"] == "Zed Other moved my cut-off"  # their own words
    assert [m["body"] for m in case["messages"]] == ["mine", WITHHELD]
    [respondent] = export["cases_as_respondent"]
    assert set(respondent) == {
        "case_id", "reference", "status", "category", "channel", "submitted_at",
        "updated_at", "named_as",
    }  # fmt: skip
    assert export_counts(export) == (2, 1, 0)
