"""Tasks on a case as staff ask for them: who may, and what a valid request is. No I/O.

Routing owns every clock: it decides on a request (assignee, closed case, the due instant
in working time) and answers with task.created or case.request_refused; intake records
the request and projects routing's outcomes into `intake.case_tasks`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field, ValidationInfo, field_validator

from services.intake.domain.case import FreeText, IntakeInput
from shared.auth import Role

TASK_ROLES: tuple[Role, ...] = ("hr_agent", "hr_manager", "investigator")
# As intake shows a task: requested (waiting for routing), open, overdue, done, cancelled,
# refused (routing said no; the reason is kept).
TaskState = Literal["requested", "open", "overdue", "done", "cancelled", "refused"]
ENDED_TASK_STATES = frozenset({"done", "cancelled", "refused"})
# The furthest a due date may lie ahead (a typo such as year 2206 is refused here).
MAX_DUE_AHEAD = timedelta(days=3 * 366)
MAX_DUE_IN_WORKING_HOURS = 2000
_STAFF_ID = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


def _single_line(value: str) -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError("must be a single line")
    return value


class NewTask(IntakeInput):
    """`POST /cases/{id}/tasks`: exactly one of `due_in_working_hours` (working time of the
    owning team's calendar, counted by routing) and `due_at` (an instant ahead of now)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    title: str = Field(min_length=3, max_length=200)
    assignee_id: str = Field(pattern=_STAFF_ID)
    description: FreeText | None = Field(default=None, max_length=5000)
    due_in_working_hours: float | None = Field(
        default=None, gt=0, le=MAX_DUE_IN_WORKING_HOURS, allow_inf_nan=False
    )
    # Validated even when absent: the "exactly one" rule is reported on this field.
    due_at: AwareDatetime | None = Field(default=None, validate_default=True)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        return _single_line(value)

    @field_validator("description")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("due_at")
    @classmethod
    def _one_due_form(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        hours = info.data.get("due_in_working_hours")
        if "due_in_working_hours" not in info.data and value is None:
            return None  # due_in_working_hours itself was invalid: reported there
        if value is None and hours is None:
            raise ValueError("give due_in_working_hours or due_at")
        if value is not None and hours is not None:
            raise ValueError("give either due_in_working_hours or due_at, not both")
        if value is not None:
            now = datetime.now(UTC)
            try:
                value = value.astimezone(UTC)
            except (OverflowError, ValueError) as exc:
                raise ValueError("is out of range") from exc
            if value <= now:
                raise ValueError("must be in the future")
            if value > now + MAX_DUE_AHEAD:
                raise ValueError("must be within three years")
        return value


class TaskReassignment(IntakeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    assignee_id: str = Field(pattern=_STAFF_ID)
    reason: FreeText | None = Field(default=None, max_length=2000)

    @field_validator("reason")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


class TaskCancellation(IntakeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: FreeText = Field(min_length=3, max_length=2000)


class TaskCompletion(IntakeInput):
    """Completing takes no fields (an empty JSON object, or no body)."""

    model_config = ConfigDict(extra="forbid")


def task_conflict(state: str) -> str | None:
    """Why a task in `state` cannot be completed, reassigned or cancelled (409)."""
    if state in ENDED_TASK_STATES:
        return f"the task is already {state}"
    if state == "requested":
        return "the task is still waiting for routing to accept it; try again in a moment"
    return None
