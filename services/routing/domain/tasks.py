"""Tasks on a case: when one falls due, when its reminder fires, who may hold it. No I/O.

A task's due instant is fixed when routing accepts it: `due_in_working_hours` counts in the
owning team's calendar from the moment the request was made (a request made on Friday
evening for 4 working hours falls due on Monday), or an explicit `due_at` is taken as it
is. The reminder (task.due_soon) and the overdue escalation (task.overdue) are durable
timers planned from those instants.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from services.routing.domain.calendar import WorkingCalendar
from services.routing.domain.policy import StaffMember, TaskPolicy

TaskStatus = Literal["open", "done", "cancelled"]
TaskTimerKind = Literal["due_soon", "overdue"]
ENDED_TASK_STATUSES = frozenset({"done", "cancelled"})


class TaskRefused(ValueError):
    """The request cannot be applied; the message is the reason the requester reads."""


@dataclass(frozen=True)
class PlannedTaskTimer:
    kind: TaskTimerKind
    fire_at: datetime


def task_due(
    calendar: WorkingCalendar,
    policy: TaskPolicy,
    *,
    requested_at: datetime,
    due_in_working_hours: float | None,
    due_at: datetime | None,
) -> datetime:
    """The due instant (UTC). Raises TaskRefused for a due form routing will not plan."""
    if (due_in_working_hours is None) == (due_at is None):
        raise TaskRefused("give exactly one of due_in_working_hours and due_at")
    if due_in_working_hours is not None:
        if due_in_working_hours > policy.max_due_in_working_hours:
            raise TaskRefused(
                f"due_in_working_hours may be at most {policy.max_due_in_working_hours:g}"
            )
        return calendar.add_working(requested_at, timedelta(hours=due_in_working_hours))
    assert due_at is not None
    if due_at <= requested_at:
        raise TaskRefused("due_at must be after the request was made")
    return due_at


def due_soon_at(
    calendar: WorkingCalendar, policy: TaskPolicy, *, start: datetime, due: datetime
) -> datetime | None:
    """When the reminder fires, in working time between `start` and `due`; None when the
    task is already inside its reminder window (the assignment mail gives the due time)."""
    total = calendar.working_between(start, due)
    if policy.due_soon_share is not None:
        offset = total * policy.due_soon_share
    else:
        assert policy.due_soon_hours_before is not None
        offset = total - timedelta(hours=policy.due_soon_hours_before)
    if offset <= timedelta(0):
        return None
    return calendar.add_working(start, offset)


def plan_task_timers(
    *, due: datetime, reminder: datetime | None, now: datetime
) -> list[PlannedTaskTimer]:
    """The timers an open task needs: a reminder still ahead, and the overdue one."""
    timers = [PlannedTaskTimer("overdue", due)]
    if reminder is not None and now < reminder < due:
        timers.insert(0, PlannedTaskTimer("due_soon", reminder))
    return timers


def assignee_problem(
    person: StaffMember | None,
    assignee_id: str,
    *,
    conflicted: frozenset[str],
    inactive: frozenset[str],
    restricted_readers: frozenset[str] | None = None,
) -> str | None:
    """Why `assignee_id` may not hold a task on the case (None: they may). Says what the
    rule is, never who the respondents are (the reason reaches the case page).

    `restricted_readers`: on a restricted case, the staff who may open it (its owner and
    the policy's HR managers); anyone else could not open the task's case page.
    """
    if person is None:
        return f"{assignee_id!r} is not HR staff in the routing policy"
    if restricted_readers is not None and person.id not in restricted_readers:
        return (
            f"{person.id} cannot open this restricted case: only its owner or an HR manager"
            " may hold a task on it"
        )
    if person.id in conflicted:
        return (
            f"conflict of interest: {person.id} is a respondent or in a respondent's"
            " management chain"
        )
    if person.id in inactive:
        return f"{person.id} is marked inactive in the directory"
    return None
