"""Routing lifecycle rules. Clocks that move between calendars (a re-categorisation or
reassignment to a team on another calendar) keep the working time already used; a met first
response stays met; no warning for a deadline already reached; a reply to an ended case is
never silent."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing.domain.calendar import WorkingCalendar
from services.routing.domain.lifecycle import reply_to_ended_case
from services.routing.domain.policy import CalendarSpec, load_policy
from services.routing.domain.sla import (
    Clock,
    ClockName,
    apply_status,
    plan_timers,
    rebase,
    retarget,
    start_clock,
)

POLICY = load_policy()
CALENDARS: dict[str, WorkingCalendar] = {
    **POLICY.working_calendars,
    "new_york": CalendarSpec(
        time_zone="America/New_York",
        hours={d: ("08:30-12:00", "13:00-17:00") for d in ("mon", "tue", "wed", "thu", "fri")},
    ).to_calendar(),
    "always": CalendarSpec(
        time_zone="UTC",
        hours={d: ("00:00-24:00",) for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    ).to_calendar(),
}
LONDON = POLICY.team_calendar("hr_operations")
SYDNEY = POLICY.team_calendar("injury_management")

calendar_names = st.sampled_from(sorted(CALENDARS))
# Minutes, so sums compare exactly; across DST changes of every zone in the policy.
moments = st.integers(min_value=0, max_value=400 * 24 * 60).map(
    lambda m: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=m)
)
spans = st.integers(min_value=0, max_value=30 * 24 * 60).map(lambda m: timedelta(minutes=m))
targets = st.sampled_from([0.5, 2, 8, 16, 24, 80, 240])


def test_the_field_case_london_to_sydney_keeps_the_six_hours_used():
    """recat-cross-calendar: submitted Fri 09:00 London, moved at 15:00 to Sydney, P4 -> P2."""
    submitted = datetime(2026, 11, 27, 9, tzinfo=UTC)
    moved_at = datetime(2026, 11, 27, 15, tzinfo=UTC)
    first = retarget(
        start_clock("first_response", 24, submitted), LONDON, 8, at=moved_at, warn_at=0.75
    )
    resolution = retarget(
        start_clock("resolution", 240, submitted), LONDON, 80, at=moved_at, warn_at=0.75
    )
    assert first.consumed == resolution.consumed == timedelta(hours=6)
    # 2 h left from Mon 09:00 Sydney (Sun 22:00Z); 74 h left of the resolution.
    assert first.due(SYDNEY) == datetime(2026, 11, 30, 0, tzinfo=UTC)
    assert resolution.due(SYDNEY) == datetime(2026, 12, 10, 4, 30, tzinfo=UTC)


@settings(max_examples=150, deadline=None)
@given(
    old=calendar_names,
    new=calendar_names,
    started=moments,
    before=spans,
    after=spans,
    target=targets,
)
def test_moving_between_calendars_never_loses_or_gains_working_time(
    old: str, new: str, started: datetime, before: timedelta, after: timedelta, target: float
) -> None:
    clock = start_clock("resolution", target, started)
    moved_at = started + before
    used_before = clock.used(CALENDARS[old], moved_at)
    moved = rebase(clock, CALENDARS[old], moved_at)
    # At the moment of the move the new calendar sees exactly what the old one measured.
    assert moved.used(CALENDARS[new], moved_at) == used_before
    # Later, only the new calendar's working time since the move is added.
    later = moved_at + after
    assert moved.used(CALENDARS[new], later) == used_before + CALENDARS[new].working_between(
        moved_at, later
    )
    # Moving back at once changes nothing.
    assert rebase(moved, CALENDARS[new], moved_at).consumed == used_before


@settings(max_examples=150, deadline=None)
@given(
    old=calendar_names,
    new=calendar_names,
    started=moments,
    before=spans,
    old_target=targets,
    new_target=targets,
)
def test_used_plus_remaining_is_the_target_after_a_retarget_across_calendars(
    old: str,
    new: str,
    started: datetime,
    before: timedelta,
    old_target: float,
    new_target: float,
) -> None:
    moved_at = started + before
    clock = start_clock("resolution", old_target, started)
    used = clock.used(CALENDARS[old], moved_at)
    moved = retarget(clock, CALENDARS[old], new_target, at=moved_at, warn_at=0.75)
    assert moved.consumed == used
    due = moved.due(CALENDARS[new])
    assert due is not None and due >= moved_at
    remaining = CALENDARS[new].working_between(moved_at, due)
    if used <= moved.target:
        assert used + remaining == moved.target
    else:  # already past the new target: due at once, nothing remains
        assert (due, remaining) == (moved_at, timedelta(0))


@settings(max_examples=100, deadline=None)
@given(
    old=calendar_names,
    new=calendar_names,
    started=moments,
    answer_after=spans,
    moved_after=spans,
    new_target=targets,
)
def test_a_met_first_response_stays_met_whatever_the_move(
    old: str,
    new: str,
    started: datetime,
    answer_after: timedelta,
    moved_after: timedelta,
    new_target: float,
) -> None:
    clocks: dict[ClockName, Clock] = {"first_response": start_clock("first_response", 8, started)}
    answered = apply_status(
        clocks, CALENDARS[old], to_status="in_progress", at=started + answer_after
    )["first_response"]
    moved_at = started + answer_after + moved_after
    for clock in (
        retarget(answered, CALENDARS[old], new_target, at=moved_at, warn_at=0.75),
        rebase(answered, CALENDARS[old], moved_at),
    ):
        assert clock == answered
        assert clock.state == "stopped" and clock.due(CALENDARS[new]) is None


def test_a_paused_clock_keeps_what_it_used_when_it_moves():
    paused = Clock(name="resolution", target=timedelta(hours=8), consumed=timedelta(hours=3))
    moved = retarget(paused, LONDON, 16, at=datetime(2026, 12, 1, tzinfo=UTC), warn_at=0.75)
    assert (moved.state, moved.consumed, moved.target) == (
        "paused",
        timedelta(hours=3),
        timedelta(hours=16),
    )


@settings(max_examples=100, deadline=None)
@given(
    calendar=calendar_names,
    started=moments,
    used=spans,
    target=targets,
    warned=st.booleans(),
)
def test_no_warning_is_planned_for_a_deadline_already_reached(
    calendar: str, started: datetime, used: timedelta, target: float, warned: bool
) -> None:
    clock = start_clock("resolution", target, started, consumed=used)
    clock = replace(clock, warned=warned)
    kinds = [
        t.kind
        for t in plan_timers(
            clock, CALENDARS[calendar], warn_at=0.75, escalation_after_hours=(0, 4)
        )
    ]
    if used >= clock.target:
        assert "warning" not in kinds and kinds[0] == "breach"
    else:
        assert ("warning" in kinds) == (not warned)


CLOSED_AT = datetime(2026, 11, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "role", "after", "window", "expected"),
    [
        ("closed", "reporter", timedelta(0), 14, "reopen"),
        ("closed", "reporter", timedelta(days=14), 14, "reopen"),  # inclusive
        ("closed", "reporter", timedelta(days=14, seconds=1), 14, "follow_up"),
        ("closed", "reporter", timedelta(days=400), 14, "follow_up"),
        ("closed", "reporter", timedelta(minutes=1), 0, "follow_up"),  # 0: never reopen
        ("resolved", "reporter", timedelta(days=3), 14, "reopen"),
        ("resolved", "reporter", timedelta(days=30), 14, "follow_up"),
        ("closed", "anonymous_reporter", timedelta(days=400), 14, "reopen"),
        ("closed", "agent", timedelta(days=1), 14, "none"),
        ("resolved", "reporter", timedelta(seconds=-1), 14, "none"),  # written before
        ("closed", "anonymous_reporter", timedelta(seconds=-1), 14, "none"),
        ("in_progress", "reporter", timedelta(days=400), 14, "none"),
        ("waiting_on_employee", "reporter", timedelta(days=1), 14, "none"),
    ],
)
def test_what_a_reply_to_an_ended_case_does(
    status: str, role: str, after: timedelta, window: float, expected: str
) -> None:
    outcome = reply_to_ended_case(
        status=status,
        sender_role=role,
        closed_at=CLOSED_AT,
        received_at=CLOSED_AT + after,
        reopen_within_days=window,
    )
    assert outcome == expected


@settings(max_examples=200, deadline=None)
@given(
    after=st.integers(min_value=-(10**6), max_value=10**8).map(lambda s: timedelta(seconds=s)),
    window=st.floats(min_value=0, max_value=400, allow_nan=False),
    role=st.sampled_from(["reporter", "anonymous_reporter", "agent"]),
    status=st.sampled_from(["resolved", "closed"]),
)
def test_a_reply_after_the_closure_is_never_silent(
    after: timedelta, window: float, role: str, status: str
) -> None:
    outcome = reply_to_ended_case(
        status=status,
        sender_role=role,
        closed_at=CLOSED_AT,
        received_at=CLOSED_AT + after,
        reopen_within_days=window,
    )
    if role == "agent" or after < timedelta(0):
        assert outcome == "none"
    else:
        assert outcome in ("reopen", "follow_up")
        if role == "reporter":
            assert (outcome == "reopen") == (window > 0 and after <= timedelta(days=window))
