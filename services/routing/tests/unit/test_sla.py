"""SLA clocks: pause while waiting on the employee, resume on reply, timers to plan."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing.domain.lifecycle import StatusMoveRefused, next_status
from services.routing.domain.policy import CalendarSpec, load_policy
from services.routing.domain.sla import (
    Clock,
    ClockName,
    apply_status,
    plan_timers,
    record_fired,
    resume_on_reply,
    retarget,
    start_clock,
)

POLICY = load_policy()
LONDON = POLICY.team_calendar("hr_operations")
ALWAYS = CalendarSpec(
    time_zone="UTC",
    hours={d: ("00:00-24:00",) for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
).to_calendar()
MONDAY_9 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_waiting_on_the_employee_excludes_the_paused_time_from_the_deadline():
    clocks: dict[ClockName, Clock] = {"resolution": start_clock("resolution", 8, MONDAY_9)}
    assert clocks["resolution"].due(LONDON) == MONDAY_9 + timedelta(hours=8)
    paused = apply_status(
        clocks, LONDON, to_status="waiting_on_employee", at=MONDAY_9 + timedelta(hours=2)
    )
    assert paused["resolution"].state == "paused"
    assert paused["resolution"].due(LONDON) is None
    assert (
        plan_timers(paused["resolution"], LONDON, warn_at=0.75, escalation_after_hours=(0,)) == []
    )
    # The employee answers on Wednesday at 09:00: six working hours are left.
    wednesday = MONDAY_9 + timedelta(days=2)
    resumed = resume_on_reply(paused, at=wednesday)
    assert resumed["resolution"].due(LONDON) == wednesday + timedelta(hours=6)


def test_in_progress_meets_the_first_response_and_resolved_stops_everything():
    clocks: dict[ClockName, Clock] = {
        "first_response": start_clock("first_response", 2, MONDAY_9),
        "resolution": start_clock("resolution", 8, MONDAY_9),
    }
    working = apply_status(
        clocks, LONDON, to_status="in_progress", at=MONDAY_9 + timedelta(hours=1)
    )
    assert working["first_response"].state == "stopped"
    assert working["first_response"].consumed == timedelta(hours=1)
    assert working["resolution"].state == "running"
    done = apply_status(working, LONDON, to_status="resolved", at=MONDAY_9 + timedelta(hours=3))
    assert {c.state for c in done.values()} == {"stopped"}
    reopened = apply_status(done, LONDON, to_status="in_progress", at=MONDAY_9 + timedelta(days=1))
    assert reopened["resolution"].due(LONDON) == MONDAY_9 + timedelta(days=1, hours=5)
    assert reopened["first_response"].state == "stopped"


def test_timers_cover_warning_breach_and_every_escalation_level_once():
    clock = start_clock("first_response", 4, MONDAY_9)
    timers = plan_timers(clock, LONDON, warn_at=0.75, escalation_after_hours=(0, 2))
    assert [(t.kind, t.level, t.fire_at) for t in timers] == [
        ("warning", 0, MONDAY_9 + timedelta(hours=3)),
        ("breach", 0, MONDAY_9 + timedelta(hours=4)),
        ("escalation", 1, MONDAY_9 + timedelta(hours=4)),
        ("escalation", 2, MONDAY_9 + timedelta(hours=6)),
    ]
    fired = record_fired(record_fired(clock, "warning", 0), "breach", 0)
    fired = record_fired(fired, "escalation", 1)
    left = plan_timers(fired, LONDON, warn_at=0.75, escalation_after_hours=(0, 2))
    assert [(t.kind, t.level) for t in left] == [("escalation", 2)]


def test_retarget_keeps_used_time_and_clears_announcements_only_when_back_before_them():
    clock = start_clock("resolution", 4, MONDAY_9)
    breached = record_fired(record_fired(clock, "breach", 0), "escalation", 1)
    at = MONDAY_9 + timedelta(hours=5)
    longer = retarget(breached, LONDON, 40, at=at, warn_at=0.75)
    assert (longer.warned, longer.breached, longer.escalated_level) == (False, False, 0)
    assert longer.due(LONDON) == LONDON.add_working(at, timedelta(hours=35))
    shorter = retarget(breached, LONDON, 2, at=at, warn_at=0.75)
    assert shorter.breached and shorter.escalated_level == 1


@pytest.mark.parametrize(
    ("current", "requested", "expected"),
    [
        ("assigned", "waiting_on_employee", "waiting_on_employee"),
        ("waiting_on_employee", "in_progress", "in_progress"),
        ("in_progress", "resolved", "resolved"),
        ("resolved", "closed", "closed"),
        ("closed", "reopened", "in_progress"),
    ],
)
def test_allowed_status_moves(current, requested, expected):
    assert next_status(current, requested) == expected


@pytest.mark.parametrize(
    ("current", "requested"), [("closed", "in_progress"), ("assigned", "reopened")]
)
def test_refused_status_moves(current, requested):
    with pytest.raises(StatusMoveRefused):
        next_status(current, requested)


pauses = st.lists(
    st.tuples(st.integers(0, 3 * 3600), st.integers(0, 48 * 3600)), min_size=1, max_size=5
)


@settings(max_examples=150, deadline=None)
@given(pauses, st.floats(min_value=1, max_value=100))
def test_the_deadline_moves_by_exactly_the_working_time_spent_waiting(pauses, target_hours):
    """Run/pause segments in any calendar: the clock only counts the running segments."""
    for calendar in (LONDON, ALWAYS):
        now = MONDAY_9
        clocks: dict[ClockName, Clock] = {
            "resolution": start_clock("resolution", target_hours, now)
        }
        counted = timedelta(0)
        for run_seconds, wait_seconds in pauses:
            end_of_run = now + timedelta(seconds=run_seconds)
            counted += calendar.working_between(now, end_of_run)
            clocks = apply_status(clocks, calendar, to_status="waiting_on_employee", at=end_of_run)
            now = end_of_run + timedelta(seconds=wait_seconds)
            clocks = resume_on_reply(clocks, at=now)
        clock = clocks["resolution"]
        assert clock.consumed == counted
        remaining = max(timedelta(hours=target_hours) - counted, timedelta(0))
        assert clock.due(calendar) == calendar.add_working(now, remaining)
