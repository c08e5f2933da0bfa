"""A task request as intake checks it: one due form, errors naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from services.intake.domain.tasks import NewTask, task_conflict

BASE: dict[str, object] = {"title": "Collect statements", "assignee_id": "A-1002"}


def _errors(body: Mapping[str, object]) -> dict[str, str]:
    try:
        NewTask.model_validate(body)
    except ValidationError as exc:
        return {str(e["loc"][-1]): e["msg"] for e in exc.errors()}
    return {}


def _in(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def test_a_task_takes_exactly_one_due_form_and_the_error_names_the_field() -> None:
    assert _errors({**BASE, "due_in_working_hours": 4}) == {}
    assert _errors({**BASE, "due_at": _in(hours=2)}) == {}
    assert "due_in_working_hours or due_at" in _errors(BASE)["due_at"]
    both = _errors({**BASE, "due_in_working_hours": 4, "due_at": _in(hours=2)})
    assert "not both" in both["due_at"]
    assert set(_errors({**BASE, "due_in_working_hours": 0})) == {"due_in_working_hours"}
    assert set(_errors({**BASE, "due_in_working_hours": "nan"})) == {"due_in_working_hours"}


def test_a_due_instant_lies_ahead_within_three_years_with_a_zone() -> None:
    assert "future" in _errors({**BASE, "due_at": _in(minutes=-1)})["due_at"]
    assert "three years" in _errors({**BASE, "due_at": _in(days=4 * 366)})["due_at"]
    assert set(_errors({**BASE, "due_at": "2030-01-01T10:00:00"})) == {"due_at"}


def test_titles_are_single_lines_without_nul() -> None:
    assert set(_errors({**BASE, "title": "a\nb", "due_in_working_hours": 1})) == {"title"}
    assert set(_errors({**BASE, "title": "x\x00yz", "due_in_working_hours": 1})) == {"title"}


def test_ended_or_unaccepted_tasks_take_no_further_requests() -> None:
    assert task_conflict("open") is None and task_conflict("overdue") is None
    assert "already done" in (task_conflict("done") or "")
    assert "waiting for routing" in (task_conflict("requested") or "")
