"""SLA clocks in working time, their pauses, and the timers they need. No I/O.

A clock measures working time used against a target. While it runs, `running_since`
marks the start of the current segment and `consumed` holds what earlier segments used;
pausing folds the segment into `consumed`, so time spent waiting on the employee never
counts. Every deadline is an offset of working time on the clock (warning, breach,
each escalation level) and fires at `running_since + (offset - consumed)` working time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from services.routing.domain.calendar import WorkingCalendar

ClockName = Literal["first_response", "resolution"]
TimerKind = Literal["warning", "breach", "escalation"]
CLOCKS: tuple[ClockName, ...] = ("first_response", "resolution")


@dataclass(frozen=True)
class Clock:
    name: ClockName
    target: timedelta
    consumed: timedelta = timedelta(0)
    running_since: datetime | None = None
    stopped_at: datetime | None = None
    warned: bool = False
    breached: bool = False
    escalated_level: int = 0

    @property
    def state(self) -> Literal["running", "paused", "stopped"]:
        if self.stopped_at is not None:
            return "stopped"
        return "running" if self.running_since is not None else "paused"

    def used(self, calendar: WorkingCalendar, at: datetime) -> timedelta:
        """Working time used up to `at`."""
        if self.running_since is None:
            return self.consumed
        return self.consumed + calendar.working_between(self.running_since, at)

    def due(self, calendar: WorkingCalendar) -> datetime | None:
        """When the target is reached if the clock keeps running (None unless running)."""
        return self.moment_of(calendar, self.target)

    def moment_of(self, calendar: WorkingCalendar, offset: timedelta) -> datetime | None:
        """When the clock reaches `offset` of working time (now-ish if it already has)."""
        if self.running_since is None or self.stopped_at is not None:
            return None
        return calendar.add_working(self.running_since, max(offset - self.consumed, timedelta(0)))

    def pause(self, calendar: WorkingCalendar, at: datetime) -> Clock:
        if self.state != "running":
            return self
        return replace(self, consumed=self.used(calendar, at), running_since=None)

    def resume(self, at: datetime) -> Clock:
        if self.state != "paused":
            return self
        return replace(self, running_since=at)

    def stop(self, calendar: WorkingCalendar, at: datetime) -> Clock:
        if self.state == "stopped":
            return self
        return replace(self, consumed=self.used(calendar, at), running_since=None, stopped_at=at)

    def restart(self, at: datetime) -> Clock:
        """A reopened case: the clock continues from what it had used."""
        if self.state != "stopped":
            return self
        return replace(self, stopped_at=None, running_since=at)


def rebase(clock: Clock, calendar: WorkingCalendar, at: datetime) -> Clock:
    """The clock as of `at`, its working time so far measured in `calendar` (the one it ran in).

    Call it before a clock moves to another calendar (a team change): the working time
    used up to `at` is fixed in `consumed` and a running clock continues from `at`, so
    whatever calendar measures it next counts only the time after the move. Nothing is
    lost or gained: `rebase(c, cal, at).used(other, at) == c.used(cal, at)` for any other.
    """
    if clock.state != "running":
        return clock
    return replace(clock, consumed=clock.used(calendar, at), running_since=at)


def retarget(
    clock: Clock, calendar: WorkingCalendar, target_hours: float, *, at: datetime, warn_at: float
) -> Clock:
    """A new target (re-categorisation): working time already used still counts.

    `calendar` is the one the clock ran in until `at` (the old team's): the time used is
    measured there; after `at` the clock runs in whatever calendar its team has now.
    A met first response is history and is left as it is (target and deadline included).
    Warnings and breaches already announced are not repeated; they are cleared only
    when the new target puts the clock back before them.
    """
    if clock.name == "first_response" and clock.state == "stopped":
        return clock
    used = clock.used(calendar, at)
    target = timedelta(hours=target_hours)
    running_since = at if clock.state == "running" else None
    moved = replace(clock, target=target, consumed=used, running_since=running_since)
    if used < target * warn_at:
        return replace(moved, warned=False, breached=False, escalated_level=0)
    if used < target:
        return replace(moved, breached=False, escalated_level=0)
    return moved


def start_clock(
    name: ClockName, target_hours: float, at: datetime, *, consumed: timedelta = timedelta(0)
) -> Clock:
    return Clock(
        name=name, target=timedelta(hours=target_hours), consumed=consumed, running_since=at
    )


@dataclass(frozen=True)
class PlannedTimer:
    clock: ClockName
    kind: TimerKind
    level: int  # escalation level (1-based); 0 for warning and breach
    fire_at: datetime


def plan_timers(
    clock: Clock,
    calendar: WorkingCalendar,
    *,
    warn_at: float,
    escalation_after_hours: tuple[float, ...],
) -> list[PlannedTimer]:
    """The timers a clock still needs: none while paused or stopped."""
    if clock.state != "running":
        return []
    offsets: list[tuple[TimerKind, int, timedelta]] = []
    # No "due soon" for a deadline already reached (e.g. a new, shorter target).
    if not clock.warned and not clock.breached and clock.consumed < clock.target:
        offsets.append(("warning", 0, clock.target * warn_at))
    if not clock.breached:
        offsets.append(("breach", 0, clock.target))
    for level, after in enumerate(escalation_after_hours, start=1):
        if level > clock.escalated_level:
            offsets.append(("escalation", level, clock.target + timedelta(hours=after)))
    timers = []
    for kind, level, offset in offsets:
        fire_at = clock.moment_of(calendar, offset)
        assert fire_at is not None  # running
        timers.append(PlannedTimer(clock.name, kind, level, fire_at))
    return timers


def record_fired(clock: Clock, kind: TimerKind, level: int) -> Clock:
    """The clock after one of its timers fired (so re-planning never repeats it)."""
    if kind == "warning":
        return replace(clock, warned=True)
    if kind == "breach":
        return replace(clock, warned=True, breached=True)
    return replace(
        clock, warned=True, breached=True, escalated_level=max(level, clock.escalated_level)
    )


def apply_status(
    clocks: dict[ClockName, Clock],
    calendar: WorkingCalendar,
    *,
    to_status: str,
    at: datetime,
) -> dict[ClockName, Clock]:
    """Clocks after the case moved to `to_status` at `at`.

    in_progress: the first response was given (that clock stops), resolution runs;
    waiting_on_employee: every running clock pauses; resolved/closed: all stop.
    """
    result = dict(clocks)
    for name, clock in clocks.items():
        if to_status == "waiting_on_employee":
            result[name] = clock.pause(calendar, at)
        elif to_status in ("resolved", "closed"):
            result[name] = clock.stop(calendar, at)
        elif to_status == "in_progress":
            if name == "first_response":
                result[name] = clock.stop(calendar, at) if clock.state != "stopped" else clock
            else:
                resumed = clock.resume(at)
                result[name] = resumed.restart(at) if resumed.state == "stopped" else resumed
    return result


def resume_on_reply(clocks: dict[ClockName, Clock], *, at: datetime) -> dict[ClockName, Clock]:
    """The employee replied: paused clocks run again from `at`."""
    return {name: clock.resume(at) for name, clock in clocks.items()}


def first_response_given(
    clocks: dict[ClockName, Clock], calendar: WorkingCalendar, *, at: datetime
) -> dict[ClockName, Clock]:
    """An agent wrote to the reporter: the first-response clock is met."""
    result = dict(clocks)
    if "first_response" in clocks:
        result["first_response"] = clocks["first_response"].stop(calendar, at)
    return result
