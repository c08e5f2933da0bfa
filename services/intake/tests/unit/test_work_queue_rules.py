"""The work queue's query rules and the SLA clocks as intake shows them (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError

from services.intake.domain.clocks import (
    ClockMark,
    after_status,
    clock_view,
    moved_to_calendar,
    with_deadline,
    working_time_text,
)
from services.intake.domain.work_queue import BadCursor, Cursor, WorkQueueQuery, viewer_of
from shared.auth import Principal
from shared.working_time import calendar_from_spec, parse_hours

# Mon-Fri 09:00-17:00 in London; Monday 7 Dec 2026 is a working day (GMT = UTC in winter).
OFFICE = calendar_from_spec(
    "Europe/London", {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}, []
)
SYDNEY = calendar_from_spec(
    "Australia/Sydney", {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}, []
)
MON_10 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def test_parse_hours() -> None:
    assert parse_hours("09:00-17:30") == (time(9), time(17, 30))
    assert parse_hours("00:00-24:00") == (time(0), time.max)
    for bad in ("9-17", "17:00-09:00", "09:00-25:00", "x"):
        with pytest.raises(ValueError):
            parse_hours(bad)


def test_a_running_clock_shows_working_time_left_in_its_calendar() -> None:
    due = datetime(2026, 12, 8, 11, 0, tzinfo=UTC)  # Tuesday 11:00
    view = clock_view("resolution", ClockMark("running", due, None), OFFICE, MON_10)
    assert view.left == timedelta(hours=9)  # 7 h on Monday, 2 h on Tuesday
    assert not view.breached and not view.due_soon  # 25 wall-clock hours away
    soon = clock_view(
        "resolution", ClockMark("running", MON_10 + timedelta(hours=6), None), OFFICE, MON_10
    )
    assert soon.due_soon and soon.left == timedelta(hours=6)
    assert view.left_text == "9 h 0 min"
    late = clock_view(
        "resolution", ClockMark("running", due, None), OFFICE, due + timedelta(hours=1)
    )
    assert late.breached and late.left == -timedelta(hours=1)


def test_waiting_on_the_employee_pauses_and_in_progress_resumes() -> None:
    due = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
    paused = after_status(
        "resolution", ClockMark("running", due, None), "waiting_on_employee", OFFICE, MON_10
    )
    assert paused == ClockMark("paused", due, timedelta(hours=6))
    # Two days later (Wednesday 10:00) the case runs again: 6 working hours from then.
    later = datetime(2026, 12, 9, 10, 0, tzinfo=UTC)
    resumed = after_status("resolution", paused, "in_progress", OFFICE, later)
    assert resumed == ClockMark("running", datetime(2026, 12, 9, 16, 0, tzinfo=UTC), None)
    # The first response is answered by the move to in progress; resolving stops both.
    first = after_status(
        "first_response", ClockMark("running", due, None), "in_progress", OFFICE, later
    )
    assert first.state == "stopped"
    assert after_status("resolution", resumed, "resolved", OFFICE, later).state == "stopped"


def test_deadlines_from_routing_and_a_move_to_another_calendar() -> None:
    due = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    assert with_deadline(ClockMark(None, None, None), due, OFFICE, MON_10).state == "running"
    stopped = ClockMark("stopped", due, None)
    assert with_deadline(stopped, due + timedelta(hours=5), OFFICE, MON_10) == stopped
    paused = with_deadline(ClockMark("paused", None, timedelta(1)), due, OFFICE, MON_10)
    assert paused.left == timedelta(hours=5)
    # Five working hours left in London at Monday 10:00 UTC run in Sydney from then:
    # Sydney is closed (21:00 local), so they run Tuesday 09:00-14:00 local (22:00-03:00 UTC).
    moved = moved_to_calendar(ClockMark("running", due, None), OFFICE, SYDNEY, MON_10)
    assert moved.due == datetime(2026, 12, 8, 3, 0, tzinfo=UTC)
    assert SYDNEY.working_between(MON_10, moved.due) == timedelta(hours=5)


def test_working_time_text() -> None:
    assert working_time_text(None) == "—"
    assert working_time_text(timedelta(minutes=5)) == "5 min"
    assert working_time_text(-timedelta(hours=1, minutes=5)) == "-1 h 5 min"


def test_query_defaults_and_refusals_name_the_parameter() -> None:
    query = WorkQueueQuery()
    assert query.scope == "mine" and query.statuses is None and query.limit == 25
    for bad, field in (
        ({"scope": "everything"}, "scope"),
        ({"status": ["open"]}, "status"),
        ({"priority": ["P9"]}, "priority"),
        ({"category": ["nonsense"]}, "category"),
        ({"channel": ["fax"]}, "channel"),
        ({"sla": "late"}, "sla"),
        ({"limit": 0}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"submitted_from": "2026-12-07", "submitted_to": "2026-12-01"}, "submitted_to"),
        ({"q": "a\x00b"}, "q"),
        ({"sort": "x"}, "sort"),
    ):
        with pytest.raises(ValidationError) as caught:
            WorkQueueQuery.model_validate(bad)
        assert caught.value.errors()[0]["loc"][0] == field, bad
    assert WorkQueueQuery(q="hr-2026-00").reference_prefix == "HR-2026-00"
    assert WorkQueueQuery(q="overtime").reference_prefix is None
    assert WorkQueueQuery.model_validate({"submitted_from": "2026-12-01"}).submitted_from == date(
        2026, 12, 1
    )


def test_cursor_round_trip() -> None:
    cursor = Cursor(MON_10, uuid4())
    assert Cursor.decode(cursor.encode()) == cursor
    with pytest.raises(BadCursor):
        Cursor.decode("bm9wZQ")


def test_a_viewer_is_known_by_subject_and_employee_id() -> None:
    agent = Principal(subject="u-1", roles=frozenset({"hr_agent"}), employee_id="A-1")
    assert viewer_of(agent).ids == ("A-1", "u-1")
    assert not viewer_of(agent).reads_restricted
    manager = Principal(subject="M-1", roles=frozenset({"hr_manager"}), employee_id="M-1")
    assert viewer_of(manager).ids == ("M-1",) and viewer_of(manager).reads_restricted
