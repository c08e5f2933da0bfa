"""One case's analytics facts from its read-model row and its history. No I/O.

The first response and the resolution are measured the way routing runs the clocks
(services/routing/domain/sla.py apply_status, first_response_given): the first-response
clock stops at the first move to in_progress, resolved or closed, or at the first message
an agent writes after routing; both clocks pause while the case waits on the employee
(waiting_on_employee), and a reopened case's resolution clock runs again from the
reopening. Working time is the owning team's calendar's working time from submission to
the stop, less the working time paused (or resolved, before a reopening) before it.
"Met" compares the stop with the deadline intake follows (domain/clocks.py), which moves
with each pause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.working_time import WorkingCalendar

ENDED = frozenset({"resolved", "closed"})
ANSWERED = frozenset({"in_progress", "resolved", "closed"})
# The clocks do not run while the case waits on the employee, nor between its resolution
# and a reopening (routing restarts the resolution clock at the reopening).
IDLE = frozenset({"waiting_on_employee"}) | ENDED


@dataclass(frozen=True)
class HistoryFact:
    """What the facts need of one history entry (domain/history.py kinds)."""

    occurred_at: datetime
    kind: str
    summary: Mapping[str, Any]


@dataclass(frozen=True)
class ClockFacts:
    first_response_at: datetime | None
    first_response_working_s: int | None
    resolved_at: datetime | None
    resolution_working_s: int | None
    reopen_count: int
    first_response_breached: bool
    resolution_breached: bool
    escalations: int


def _paused_before(
    pauses: Sequence[tuple[datetime, datetime | None]],
    until: datetime,
    calendar: WorkingCalendar,
) -> timedelta:
    total = timedelta(0)
    for start, end in pauses:
        stop = min(end or until, until)
        if stop > start:
            total += calendar.working_between(start, stop)
    return total


def clock_facts(
    *,
    submitted_at: datetime,
    routed_at: datetime | None,
    status: str,
    history: Sequence[HistoryFact],
    calendar: WorkingCalendar,
) -> ClockFacts:
    """The case's clocks as the dashboard counts them (module docstring); history in order."""
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    pauses: list[tuple[datetime, datetime | None]] = []
    reopens = escalations = 0
    breached: set[str] = set()
    for entry in history:
        at = entry.occurred_at
        if entry.kind == "status_changed":
            to_status = entry.summary.get("to_status")
            if pauses and pauses[-1][1] is None and to_status not in IDLE:
                pauses[-1] = (pauses[-1][0], at)
            if to_status in IDLE and (not pauses or pauses[-1][1] is not None):
                pauses.append((at, None))
            if to_status in ANSWERED and first_response_at is None:
                first_response_at = at
            if to_status in ENDED:
                resolved_at = resolved_at if resolved_at is not None else at
            elif to_status is not None:
                resolved_at = None  # reopened: resolved again later, or still open
        elif entry.kind == "message":
            agent = entry.summary.get("sender_role") == "agent"
            if agent and first_response_at is None and routed_at is not None and at >= routed_at:
                first_response_at = at
        elif entry.kind == "reopened":
            reopens += 1
        elif entry.kind == "sla_breached":
            breached.add(str(entry.summary.get("clock")))
        elif entry.kind == "escalated":
            escalations += 1
    if status not in ENDED:
        resolved_at = None

    def working(stop: datetime | None) -> int | None:
        if stop is None or stop < submitted_at:
            return None
        spent = calendar.working_between(submitted_at, stop)
        spent -= _paused_before(pauses, stop, calendar)
        return int(max(spent, timedelta(0)).total_seconds())

    return ClockFacts(
        first_response_at=first_response_at,
        first_response_working_s=working(first_response_at),
        resolved_at=resolved_at,
        resolution_working_s=working(resolved_at),
        reopen_count=reopens,
        first_response_breached="first_response" in breached,
        resolution_breached="resolution" in breached,
        escalations=escalations,
    )


def met(stopped_at: datetime | None, due: datetime | None) -> bool | None:
    """Stopped by the deadline? None while running or without a deadline."""
    if stopped_at is None or due is None or due.tzinfo is None:  # naive: +/-infinity
        return None
    return stopped_at <= due
