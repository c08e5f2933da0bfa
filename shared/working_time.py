"""Working-time arithmetic in a team's calendar (time zone, weekly hours, holidays). No I/O.

Rule-free calendar math shared by routing (SLA clocks, timers) and intake (the working time
left shown on its clocks); which calendar applies and what a clock means stay theirs.

Working time is real elapsed time inside working intervals: an interval is a local opening
and closing time on a working day, converted to UTC, so a shift spanning a DST change
counts the hours that actually passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# A calendar with no working time at all within this many days is a policy error, not a loop.
SEARCH_LIMIT_DAYS = 3 * 366


@dataclass(frozen=True)
class WorkingCalendar:
    time_zone: str
    # weekday (0 = Monday) -> local (open, close) intervals; close may be 24:00 (time.max).
    weekly_hours: dict[int, tuple[tuple[time, time], ...]]
    holidays: frozenset[date] = frozenset()
    # Day -> intervals, memoised: deadlines walk the same days over and over.
    _days: dict[date, list[tuple[datetime, datetime]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def day_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working intervals of one local day, as UTC datetimes."""
        cached = self._days.get(day)
        if cached is None:
            if len(self._days) > 20_000:
                self._days.clear()
            cached = self._days[day] = self._compute_day(day)
        return cached

    def _compute_day(self, day: date) -> list[tuple[datetime, datetime]]:
        if day in self.holidays:
            return []
        zone = self.zone
        intervals = []
        for opens, closes in self.weekly_hours.get(day.weekday(), ()):
            start = _local_to_utc(day, opens, zone)
            end = (
                _local_to_utc(day + timedelta(days=1), time(0), zone)
                if closes == time.max
                else _local_to_utc(day, closes, zone)
            )
            if end > start:
                intervals.append((start, end))
        return intervals

    def intervals_from(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (UTC) that end after `moment`, clipped to start no earlier."""
        moment = moment.astimezone(UTC)
        # Start a day early: an interval of the previous local day may still be open.
        day = moment.astimezone(self.zone).date() - timedelta(days=1)
        idle_days = 0
        while idle_days <= SEARCH_LIMIT_DAYS:
            found = False
            for start, end in self.day_intervals(day):
                found = True
                if end > moment:
                    yield max(start, moment), end
            idle_days = 0 if found else idle_days + 1
            day += timedelta(days=1)
        raise ValueError(f"calendar {self.time_zone}: no working time for {SEARCH_LIMIT_DAYS} days")

    def add_working(self, start: datetime, amount: timedelta) -> datetime:
        """The moment `amount` of working time after `start` (`start` itself for zero)."""
        if amount < timedelta(0):
            raise ValueError("working time to add must not be negative")
        remaining = amount
        if remaining == timedelta(0):
            return start.astimezone(UTC)
        for begin, end in self.intervals_from(start):
            span = end - begin
            if remaining <= span:
                return begin + remaining
            remaining -= span
        raise AssertionError("unreachable: intervals_from never ends normally")

    def working_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time in [start, end); zero when end is not after start."""
        end = end.astimezone(UTC)
        total = timedelta(0)
        if end <= start:
            return total
        for begin, close in self.intervals_from(start):
            if begin >= end:
                break
            total += min(close, end) - begin
        return total

    def is_working(self, moment: datetime) -> bool:
        moment = moment.astimezone(UTC)
        return any(start <= moment < end for start, end in self._intervals_near(moment))

    def _intervals_near(self, moment: datetime) -> list[tuple[datetime, datetime]]:
        local_day = moment.astimezone(self.zone).date()
        return [
            interval
            for offset in (-1, 0)
            for interval in self.day_intervals(local_day + timedelta(days=offset))
        ]


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_hours(text: str) -> tuple[time, time]:
    """ "09:00-17:30" -> (09:00, 17:30); "24:00" closes at midnight (time.max).

    Raises ValueError for anything else (bad shape, out of range, closing before opening)."""
    try:
        opens_text, closes_text = text.split("-")
        minutes = []
        for part in (opens_text, closes_text):
            hours_text, minutes_text = part.strip().split(":")
            minutes.append(int(hours_text) * 60 + int(minutes_text))
    except ValueError as exc:
        raise ValueError(f"working hours {text!r} are not HH:MM-HH:MM") from exc
    opens, closes = minutes
    if not 0 <= opens < closes <= 24 * 60:
        raise ValueError(f"working hours {text!r} must open before they close, within a day")
    return _as_time(opens), _as_time(closes)


def _as_time(minutes: int) -> time:
    return time.max if minutes == 24 * 60 else time(minutes // 60, minutes % 60)


def calendar_from_spec(
    time_zone: str, hours: dict[str, list[str]], holidays: list[date] | tuple[date, ...]
) -> WorkingCalendar:
    """A calendar from its published shape: IANA zone, {"mon": ["09:00-17:30"], ...}
    (a missing day is a day off) and holiday dates. Raises ValueError on a bad day name
    or interval."""
    weekly: dict[int, tuple[tuple[time, time], ...]] = {}
    for day, intervals in hours.items():
        if day not in WEEKDAYS:
            raise ValueError(f"unknown weekday {day!r}")
        weekly[WEEKDAYS.index(day)] = tuple(parse_hours(text) for text in intervals)
    return WorkingCalendar(time_zone, weekly, frozenset(holidays))


def _local_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """A local wall-clock time as UTC; a time skipped by DST moves forward with the clock."""
    naive = datetime.combine(day, at)
    aware = naive.replace(tzinfo=zone)
    # Round-trip through UTC: a nonexistent local time (spring-forward gap) normalises
    # to the real instant the wall clock shows next.
    return aware.astimezone(UTC)
