"""The case status lifecycle routing owns: allowed moves, refusals, staleness. No I/O.

Routing is the lifecycle authority: an agent's `case.status_change_requested` is applied
here or refused with a reason (`case.request_refused`), and intake and notifications only
follow the resulting `case.status_changed` / `case.reopened` events.

Statuses: new -> routed -> assigned (triage), then the moves in `ALLOWED_MOVES` (the
requested status -> the statuses it may be requested from); `reopened` lands a resolved
or closed case back in_progress. resolved and closed are the ended statuses.

A request is refused when the move is not allowed from the current status, when it is
older than the case's last status change (replicas may apply requests out of order), or
when it asks to wait on an employee who replied after it was made.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

# Status workflow routing keeps: which requested moves are allowed from where.
OPEN_STATUSES = frozenset({"assigned", "in_progress", "waiting_on_employee"})
ALLOWED_MOVES: dict[str, frozenset[str]] = {
    "in_progress": frozenset({"assigned", "waiting_on_employee"}),
    "waiting_on_employee": frozenset({"assigned", "in_progress"}),
    "resolved": OPEN_STATUSES,
    "closed": OPEN_STATUSES | {"resolved"},
    "reopened": frozenset({"resolved", "closed"}),
}


class StatusMoveRefused(ValueError):
    pass


def next_status(current: str, requested: str) -> str:
    """The status after a requested move; a reopened case is back in progress."""
    allowed = ALLOWED_MOVES.get(requested)
    if allowed is None or current not in allowed:
        raise StatusMoveRefused(f"cannot move a case from {current} to {requested}")
    return "in_progress" if requested == "reopened" else requested


ReplyOutcome = Literal["reopen", "follow_up", "none"]
ENDED_STATUSES = frozenset({"resolved", "closed"})


def reply_to_ended_case(
    *,
    status: str,
    sender_role: str,
    closed_at: datetime | None,
    received_at: datetime,
    reopen_within_days: float,
) -> ReplyOutcome:
    """What a message to a case does to its lifecycle when the case is resolved or closed.

    "reopen": the reporter wrote within `reopen_within_days` (calendar time, inclusive) of
    the closure, or is anonymous (they can reach only the reference they hold);
    "follow_up": the reporter wrote later (a new case linked to this one);
    "none": the case is open (the usual rules apply), staff wrote (they reopen explicitly),
    or the message predates the closure (written while the case was open and applied after
    it, e.g. by a competing replica: the closure was decided after it).
    """
    if status not in ENDED_STATUSES or sender_role == "agent":
        return "none"
    if closed_at is not None and received_at < closed_at:
        return "none"
    if sender_role == "anonymous_reporter":
        return "reopen"
    if (
        closed_at is not None
        and reopen_within_days > 0
        and received_at - closed_at <= timedelta(days=reopen_within_days)
    ):
        return "reopen"
    return "follow_up"


def is_stale(requested_at: datetime, status_changed_at: datetime | None) -> bool:
    """An older request applied after a newer change (competing replicas): the newer stands."""
    return status_changed_at is not None and requested_at < status_changed_at


def waits_on_a_reply_already_given(
    to_status: str, requested_at: datetime, employee_replied_at: datetime | None
) -> bool:
    """A request to wait on the employee, made before the employee's latest reply."""
    return (
        to_status == "waiting_on_employee"
        and employee_replied_at is not None
        and requested_at < employee_replied_at
    )
