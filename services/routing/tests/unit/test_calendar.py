"""Working-time arithmetic across weekends, holidays, DST and time zones."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing.domain.calendar import WorkingCalendar
from services.routing.domain.policy import CalendarSpec

OFFICE = {d: ("09:00-17:30",) for d in ("mon", "tue", "wed", "thu")} | {"fri": ("09:00-17:00",)}


def calendar(zone: str, hours=None, holidays=()) -> WorkingCalendar:
    return CalendarSpec(time_zone=zone, hours=hours or OFFICE, holidays=holidays).to_calendar()


LONDON = calendar("Europe/London", holidays=(date(2026, 12, 25), date(2026, 12, 28)))
ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]
CALENDARS = {
    "office": lambda z: calendar(z, holidays=(date(2026, 12, 25), date(2027, 3, 29))),
    "split": lambda z: calendar(
        z, hours={"mon": ("08:00-12:00", "13:00-17:00"), "sat": ("10:00-14:00",)}
    ),
    "around_the_clock": lambda z: calendar(
        z, hours={d: ("00:00-24:00",) for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    ),
    "night_shift": lambda z: calendar(z, hours={"tue": ("01:00-03:30",), "sun": ("22:00-24:00",)}),
}


def at(zone: str, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone))


def test_friday_afternoon_plus_four_hours_is_monday_morning():
    due = LONDON.add_working(at("Europe/London", 2026, 11, 27, 15, 0), timedelta(hours=4))
    assert due == at("Europe/London", 2026, 11, 30, 11, 0)


def test_saturday_start_counts_from_monday_opening():
    due = LONDON.add_working(at("Europe/London", 2026, 11, 28, 10, 0), timedelta(hours=1))
    assert due == at("Europe/London", 2026, 11, 30, 10, 0)


def test_holidays_are_skipped():
    # Thu 24 Dec 17:00 + 1h: Fri 25 and Mon 28 are holidays, Tuesday 29th 10:00.
    due = LONDON.add_working(at("Europe/London", 2026, 12, 24, 16, 30), timedelta(hours=2))
    assert due == at("Europe/London", 2026, 12, 29, 10, 0)


def test_time_zone_decides_the_working_day():
    sydney = calendar("Australia/Sydney")
    # 23:00 UTC on Sunday is 10:00 Monday in Sydney (AEDT, +11): already working.
    start = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
    assert sydney.is_working(start)
    assert not LONDON.is_working(start)
    assert sydney.add_working(start, timedelta(hours=1)) == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


def test_spring_forward_day_has_one_hour_less_around_the_clock():
    always = CALENDARS["around_the_clock"]("Europe/London")
    day_start = at("Europe/London", 2027, 3, 28, 0, 0)
    next_day = at("Europe/London", 2027, 3, 29, 0, 0)
    assert always.working_between(day_start, next_day) == timedelta(hours=23)


def test_office_hours_are_local_wall_clock_across_dst():
    # London office 09:00 is 09:00 UTC in winter and 08:00 UTC in summer.
    winter = LONDON.day_intervals(date(2027, 3, 26))[0][0]
    summer = LONDON.day_intervals(date(2027, 3, 30))[0][0]
    assert (winter.time(), summer.time()) == (time(9, 0), time(8, 0))


def test_no_working_time_at_all_is_an_error_not_a_hang():
    closed = WorkingCalendar("UTC", {0: ((time(9), time(10)),)}, frozenset())
    closed = WorkingCalendar(
        "UTC",
        closed.weekly_hours,
        frozenset(date(2026, 1, 1) + timedelta(days=i) for i in range(1200)),
    )
    with pytest.raises(ValueError, match="no working time"):
        closed.add_working(datetime(2026, 1, 1, tzinfo=UTC), timedelta(hours=1))


moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
amounts = st.integers(min_value=0, max_value=400 * 3600).map(lambda s: timedelta(seconds=s))
calendars = st.builds(
    lambda kind, zone: CALENDARS[kind](zone),
    st.sampled_from(sorted(CALENDARS)),
    st.sampled_from(ZONES),
)


@settings(max_examples=300, deadline=None)
@given(calendars, moments, amounts)
def test_adding_working_time_then_measuring_it_gives_it_back(cal, start, amount):
    due = cal.add_working(start, amount)
    assert due >= start
    assert cal.working_between(start, due) == amount


@settings(max_examples=200, deadline=None)
@given(calendars, moments, amounts, amounts)
def test_adding_in_two_steps_equals_adding_once(cal, start, first, second):
    assert cal.add_working(cal.add_working(start, first), second) == cal.add_working(
        start, first + second
    )


@settings(max_examples=200, deadline=None)
@given(calendars, moments, amounts)
def test_a_deadline_lands_in_working_time(cal, start, amount):
    due = cal.add_working(start, amount + timedelta(seconds=1))
    # Just before the deadline the clock was running.
    assert cal.is_working(due - timedelta(microseconds=1))


@settings(max_examples=200, deadline=None)
@given(calendars, moments, moments)
def test_working_time_never_exceeds_elapsed_time_and_is_additive(cal, a, b):
    start, end = min(a, b), max(a, b)
    middle = start + (end - start) / 2
    whole = cal.working_between(start, end)
    assert timedelta(0) <= whole <= end - start
    assert whole == cal.working_between(start, middle) + cal.working_between(middle, end)
