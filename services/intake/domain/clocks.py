"""The two SLA clocks as intake shows them: state, deadline and working time left. No I/O.

Routing owns the clocks (shared targets, pauses, timers); intake follows its events to show
them: case.routed / case.assigned / case.reopened carry deadlines, case.status_changed
pauses (waiting_on_employee), resumes (in_progress) and stops (resolved, closed) them, the
way routing's own clocks move. A paused clock keeps the working time it had left, signed
(negative once past its deadline); a running one has a deadline in the owning team's
working calendar, so "working time left" is that calendar's working time from now to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal

from shared.working_time import WorkingCalendar

ClockState = Literal["running", "paused", "stopped"]
CLOCK_NAMES = ("first_response", "resolution")
CLOCK_LABELS = {"first_response": "First response", "resolution": "Resolution"}
# A running clock whose deadline is this close (wall-clock) is "due soon": the work queue's
# SLA filter and its badges use the same horizon, so a filter and a row never disagree.
DUE_SOON_WITHIN = timedelta(hours=24)
ENDED = frozenset({"resolved", "closed"})

# Until routing's roster names the team's calendar, time is counted round the clock.
ROUND_THE_CLOCK = WorkingCalendar("UTC", {day: ((time(0), time.max),) for day in range(7)})


@dataclass(frozen=True)
class ClockMark:
    """One clock as stored on the case row."""

    state: ClockState | None  # None until the case is routed
    due: datetime | None
    left: timedelta | None  # working time left, while paused


def signed_working(calendar: WorkingCalendar, start: datetime, end: datetime) -> timedelta:
    """Working time from `start` to `end`; negative when `end` is earlier."""
    if end >= start:
        return calendar.working_between(start, end)
    return -calendar.working_between(end, start)


def due_after(calendar: WorkingCalendar, at: datetime, left: timedelta) -> datetime:
    """The deadline of a clock resumed at `at` with `left` working time (at `at` if spent)."""
    return calendar.add_working(at, max(left, timedelta(0)))


def with_deadline(
    mark: ClockMark, due: datetime, calendar: WorkingCalendar, at: datetime
) -> ClockMark:
    """Routing announced a deadline (routed, assigned, reopened): a running or new clock
    takes it; a paused one keeps what it means as working time left; a stopped one (a met
    first response) is history and stays as it is."""
    if mark.state == "stopped":
        return mark
    if mark.state == "paused":
        return ClockMark("paused", due, signed_working(calendar, at, due))
    return ClockMark("running", due, None)


def moved_to_calendar(
    mark: ClockMark, old: WorkingCalendar, new: WorkingCalendar, at: datetime
) -> ClockMark:
    """The team (and so the calendar) changed at `at`: the working time left, as measured
    in the old calendar, now runs in the new one (routing's rebase)."""
    if mark.state != "running" or mark.due is None or mark.due <= at:
        return mark
    return ClockMark("running", due_after(new, at, old.working_between(at, mark.due)), None)


def after_status(
    name: str, mark: ClockMark, to_status: str, calendar: WorkingCalendar, at: datetime
) -> ClockMark:
    """A clock after the case moved to `to_status` at `at` (routing's apply_status):
    waiting_on_employee pauses, resolved/closed stop, in_progress stops the first-response
    clock (answered) and runs the resolution clock again."""
    if mark.state is None or mark.due is None:
        return mark
    if to_status == "waiting_on_employee" and mark.state == "running":
        return ClockMark("paused", mark.due, signed_working(calendar, at, mark.due))
    if to_status in ENDED:
        return ClockMark("stopped", mark.due, None)
    if to_status == "in_progress":
        if name == "first_response":
            return ClockMark("stopped", mark.due, None) if mark.state != "stopped" else mark
        if mark.state == "paused" and mark.left is not None:
            return ClockMark("running", due_after(calendar, at, mark.left), None)
        if mark.state == "stopped":  # reopened: case.reopened brings the new deadline
            return ClockMark("running", mark.due, None)
    return mark


@dataclass(frozen=True)
class ClockView:
    """A clock for people: its deadline and the working time left (negative: overdue)."""

    name: str
    label: str
    state: ClockState | None
    due: datetime | None
    left: timedelta | None
    breached: bool
    due_soon: bool

    @property
    def left_text(self) -> str:
        return working_time_text(self.left)


# Working time is counted day by day; beyond this the count would be slow and meaningless.
MAX_COUNTED_SPAN = timedelta(days=400)


def clock_view(name: str, mark: ClockMark, calendar: WorkingCalendar, now: datetime) -> ClockView:
    left: timedelta | None = None
    breached = due_soon = False
    if mark.state == "running" and mark.due is not None and mark.due.tzinfo is None:
        pass  # asyncpg's +/-infinity (naive datetime.max/min): no deadline to count against
    elif mark.state == "running" and mark.due is not None:
        # A deadline years away (a stored odd value) is not counted day by day: unknown.
        if abs(mark.due - now) <= MAX_COUNTED_SPAN:
            left = signed_working(calendar, now, mark.due)
        breached = mark.due <= now
        due_soon = not breached and mark.due - now <= DUE_SOON_WITHIN
    elif mark.state == "paused":
        left = mark.left
        breached = left is not None and left <= timedelta(0)
    return ClockView(name, CLOCK_LABELS[name], mark.state, mark.due, left, breached, due_soon)


def working_time_text(left: timedelta | None) -> str:
    """`3 h 20 min`, `-1 h 5 min` (overdue), `—` (unknown)."""
    if left is None:
        return "—"
    sign = "-" if left < timedelta(0) else ""
    minutes = int(abs(left).total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{sign}{hours} h {minutes} min"
    return f"{sign}{minutes} min"
