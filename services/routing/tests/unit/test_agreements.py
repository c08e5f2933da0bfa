"""Written agreements: when an agreement comes into force, and the due instants of its
obligations, reminders and follow-up check-ins.

The instants are compared with an independent brute force that walks minutes in UTC and
reads the local wall time through zoneinfo (weekends, holidays, the Sydney and London DST
changes), like test_statutory_clocks.py."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing.domain.agreements import (
    acceptance_outcome,
    follow_ups_at,
    obligation_due_at,
    obligation_due_soon_at,
    plan_in_force,
)
from services.routing.domain.policy import (
    DEFAULT_POLICY_FILE,
    CalendarSpec,
    PolicyError,
    load_policy,
    parse_policy,
)
from shared.events import AgreementTerm

# Office hours with a split Wednesday, a short Friday and a small-hours Sunday shift that
# spans both zones' DST changes (Sunday 00:30-05:00), besides holidays.
HOURS = {
    "mon": ("09:00-17:30",),
    "tue": ("09:00-17:30",),
    "wed": ("09:00-12:30", "13:30-17:30"),
    "thu": ("09:00-17:30",),
    "fri": ("09:00-17:00",),
    "sun": ("00:30-05:00",),
}
SPECS = {
    "Australia/Sydney": CalendarSpec(
        time_zone="Australia/Sydney",
        hours=HOURS,
        holidays=(date(2026, 10, 5), date(2026, 12, 25), date(2026, 12, 28), date(2027, 4, 5)),
    ),
    "Europe/London": CalendarSpec(
        time_zone="Europe/London",
        hours=HOURS,
        holidays=(date(2026, 10, 26), date(2026, 12, 25), date(2027, 3, 29)),
    ),
}
# DST changes: Sydney 4 Oct 2026 (forward), 4 Apr 2027 (back); London 25 Oct 2026
# (back), 28 Mar 2027 (forward). Dates are drawn from the fortnight around each.
AROUND = {
    "Australia/Sydney": (date(2026, 9, 27), date(2027, 3, 28), date(2026, 12, 20)),
    "Europe/London": (date(2026, 10, 18), date(2027, 3, 21), date(2026, 12, 20)),
}
UK_OFFICE = {d: ("09:00-17:30",) for d in ("mon", "tue", "wed", "thu", "fri")}
LONDON = ZoneInfo("Europe/London")


def _working_minute(spec: CalendarSpec, minute: datetime) -> tuple[bool, date]:
    """Whether the minute starting at `minute` (UTC) is working time, and its local day."""
    local = minute.astimezone(ZoneInfo(spec.time_zone))
    day = local.date()
    if day in spec.holidays:
        return False, day
    name = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[day.weekday()]
    wall = local.time().replace(tzinfo=None)
    for text in spec.hours.get(name, ()):  # type: ignore[call-overload]
        opens, closes = (time.fromisoformat(t) for t in text.split("-"))
        if opens <= wall < closes:
            return True, day
    return False, day


def brute_due(spec: CalendarSpec, due_on: date) -> datetime:
    """Walk back minute by minute from the local midnight ending `due_on`: the end of the
    first working minute met (the close of due_on's work, or of an earlier day's)."""
    zone = ZoneInfo(spec.time_zone)
    minute = datetime.combine(due_on + timedelta(days=1), time(0), zone).astimezone(UTC)
    while True:
        minute -= timedelta(minutes=1)
        working, day = _working_minute(spec, minute)
        if working and day <= due_on:
            return minute + timedelta(minutes=1)


def brute_working_minutes(spec: CalendarSpec, start: datetime, end: datetime) -> int:
    minutes, minute = 0, start
    while minute < end:
        minutes += _working_minute(spec, minute)[0]
        minute += timedelta(minutes=1)
    return minutes


def brute_follow_up(spec: CalendarSpec, start: datetime, days: int) -> datetime:
    """Walk minutes from `start`: count each local day after start's day that has working
    minutes; the end of the last working minute of the `days`th such day."""
    start_day = start.astimezone(ZoneInfo(spec.time_zone)).date()
    counted: list[date] = []
    last_end: datetime | None = None
    minute = start.replace(second=0, microsecond=0)
    while True:
        working, day = _working_minute(spec, minute)
        if len(counted) == days and day != counted[-1] and working:
            assert last_end is not None
            return last_end
        if working and day > start_day:
            if not counted or counted[-1] != day:
                counted.append(day)
            if len(counted) == days:
                last_end = minute + timedelta(minutes=1)
        minute += timedelta(minutes=1)


# --- due instants, by example --------------------------------------------------------------


def uk() -> CalendarSpec:
    return CalendarSpec(time_zone="Europe/London", hours=UK_OFFICE, holidays=(date(2026, 12, 25),))


def at_london(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), LONDON).astimezone(UTC)


def test_an_obligation_is_due_at_the_close_of_its_working_day():
    calendar = uk().to_calendar()
    assert obligation_due_at(calendar, date(2026, 12, 2)) == at_london(date(2026, 12, 2), 17, 30)


def test_an_obligation_due_on_a_weekend_or_holiday_is_due_at_the_working_day_before():
    calendar = uk().to_calendar()
    friday = date(2026, 12, 4)
    assert obligation_due_at(calendar, date(2026, 12, 5)) == at_london(friday, 17, 30)
    assert obligation_due_at(calendar, date(2026, 12, 6)) == at_london(friday, 17, 30)
    # Christmas (a holiday, Friday) -> Thursday 24th; Saturday 26th too.
    assert obligation_due_at(calendar, date(2026, 12, 26)) == at_london(date(2026, 12, 24), 17, 30)


def test_the_close_of_work_follows_the_dst_change():
    calendar = uk().to_calendar()
    # London: BST until 25 Oct 2026, 17:30 local is 16:30 UTC before and 17:30 UTC after.
    assert obligation_due_at(calendar, date(2026, 10, 23)) == datetime(
        2026, 10, 23, 16, 30, tzinfo=UTC
    )
    assert obligation_due_at(calendar, date(2026, 10, 26)) == datetime(
        2026, 10, 26, 17, 30, tzinfo=UTC
    )


def test_the_reminder_comes_at_its_share_of_the_working_time_left():
    calendar = uk().to_calendar()
    in_force = at_london(date(2026, 12, 1), 9)  # Tuesday 09:00
    due = obligation_due_at(calendar, date(2026, 12, 4))  # Friday 17:30: 34 working hours
    reminder = obligation_due_soon_at(calendar, 0.75, in_force_at=in_force, due_at=due)
    # 25.5 working hours in: the close of Thursday (Tue, Wed, Thu are 8.5 h each).
    assert reminder == at_london(date(2026, 12, 3), 17, 30)
    # No working time left (in force after the close): no reminder.
    late = at_london(date(2026, 12, 4), 18)
    assert obligation_due_soon_at(calendar, 0.75, in_force_at=late, due_at=due) is None


def test_follow_ups_fall_at_the_close_of_the_nth_working_day_after_coming_into_force():
    calendar = uk().to_calendar()
    in_force = at_london(date(2026, 12, 22), 15)  # Tuesday; 25th is a holiday
    first, second = follow_ups_at(calendar, in_force, [2, 5])
    assert first == at_london(date(2026, 12, 24), 17, 30)  # Wed 23, Thu 24
    assert second == at_london(date(2026, 12, 30), 17, 30)  # then Mon 28, Tue 29, Wed 30


# --- due instants against the brute force ---------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(sorted(SPECS)),
    around=st.integers(0, 2),
    offset=st.integers(0, 14),
)
def test_due_instants_match_a_minute_walk(zone: str, around: int, offset: int):
    spec = SPECS[zone]
    due_on = AROUND[zone][around] + timedelta(days=offset)
    assert obligation_due_at(spec.to_calendar(), due_on) == brute_due(spec, due_on)


@settings(max_examples=25, deadline=None)
@given(
    zone=st.sampled_from(sorted(SPECS)),
    around=st.integers(0, 2),
    start_minutes=st.integers(0, 6 * 24 * 60),
    due_days=st.integers(1, 8),
    share=st.sampled_from([0.25, 0.5, 0.75, 0.9]),
)
def test_reminders_match_a_minute_walk(
    zone: str, around: int, start_minutes: int, due_days: int, share: float
):
    spec = SPECS[zone]
    calendar = spec.to_calendar()
    first = datetime.combine(AROUND[zone][around], time(0), ZoneInfo(zone)).astimezone(UTC)
    in_force = first + timedelta(minutes=start_minutes)
    due = obligation_due_at(calendar, in_force.date() + timedelta(days=due_days))
    reminder = obligation_due_soon_at(calendar, share, in_force_at=in_force, due_at=due)
    total = brute_working_minutes(spec, in_force, due)
    if reminder is None:
        assert total == 0 or share * total < 1
        return
    assert in_force < reminder < due
    assert brute_working_minutes(spec, in_force, reminder) == pytest.approx(share * total, abs=1)


@settings(max_examples=25, deadline=None)
@given(
    zone=st.sampled_from(sorted(SPECS)),
    around=st.integers(0, 2),
    start_minutes=st.integers(0, 6 * 24 * 60),
    days=st.integers(1, 6),
)
def test_follow_ups_match_a_minute_walk(zone: str, around: int, start_minutes: int, days: int):
    spec = SPECS[zone]
    first = datetime.combine(AROUND[zone][around], time(0), ZoneInfo(zone)).astimezone(UTC)
    in_force = first + timedelta(minutes=start_minutes)
    (moment,) = follow_ups_at(spec.to_calendar(), in_force, [days])
    assert moment == brute_follow_up(spec, in_force, days)


# --- coming into force -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("latest", "in_force", "version", "roles", "expected"),
    [
        (1, None, 1, {"employee"}, "waiting"),
        (1, None, 1, {"employee", "employer_representative"}, "in_force"),
        (2, None, 1, {"employee", "employer_representative"}, "superseded"),
        (2, 1, 2, {"employer_representative"}, "waiting"),
        (2, 1, 2, {"employee", "employer_representative"}, "in_force"),
        (2, 2, 2, {"employee", "employer_representative"}, "already_in_force"),
    ],
)
def test_an_agreement_comes_into_force_when_both_parties_accept_the_latest_version(
    latest, in_force, version, roles, expected
):
    outcome = acceptance_outcome(
        latest_version=latest, in_force_version=in_force, version=version, accepted_roles=roles
    )
    assert outcome == expected


def test_the_plan_tracks_obligations_only_and_skips_met_ones():
    calendar = uk().to_calendar()
    in_force = at_london(date(2026, 12, 1), 9)
    pay, apology, untracked = (
        AgreementTerm(
            term_id=uuid.uuid4(),
            text="Pay",
            owner_role="employer_representative",
            due_on=date(2026, 12, 4),
        ),
        AgreementTerm(
            term_id=uuid.uuid4(), text="Apology", owner_role="employee", due_on=date(2026, 12, 3)
        ),
        AgreementTerm(term_id=uuid.uuid4(), text="Both keep it confidential"),
    )
    plan = plan_in_force(
        calendar,
        [pay, apology, untracked],
        in_force_at=in_force,
        due_soon_share=0.75,
        follow_up_offsets=[10, 30],
        met_term_ids=frozenset({apology.term_id}),
    )
    assert [o.term_id for o in plan.obligations] == [pay.term_id, apology.term_id]
    timers = {(t.kind, t.term_id, t.check_in) for t in plan.timers}
    assert timers == {
        ("due_soon", pay.term_id, None),
        ("overdue", pay.term_id, None),
        ("follow_up", None, 1),
        ("follow_up", None, 2),
    }
    assert plan.follow_ups_at == follow_ups_at(calendar, in_force, [10, 30])


# --- the policy's `agreements:` ---------------------------------------------------------------

TEXT = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")


def test_the_shipped_policy_has_the_agreement_rules():
    rules = load_policy().agreements
    assert rules.obligation_due_soon_share == 0.75
    assert rules.obligation_escalation_level == 1
    assert rules.follow_up_after_working_days == (10, 30)


def test_a_policy_without_the_section_gets_the_defaults():
    start = TEXT.index("\nagreements:")
    end = TEXT.index("follow_up_after_working_days: [10, 30]\n") + len(
        "follow_up_after_working_days: [10, 30]\n"
    )
    policy = parse_policy(TEXT[:start] + "\n" + TEXT[end:], "p.yaml")
    assert policy.agreements.follow_up_after_working_days == (10, 30)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        (
            "follow_up_after_working_days: [10, 30]",
            "follow_up_after_working_days: [30, 10]",
            "agreements.follow_up_after_working_days",
        ),
        (
            "follow_up_after_working_days: [10, 30]",
            "follow_up_after_working_days: [0, 10]",
            "agreements.follow_up_after_working_days",
        ),
        (
            "obligation_due_soon_share: 0.75",
            "obligation_due_soon_share: 1.5",
            "agreements.obligation_due_soon_share",
        ),
        (
            "obligation_escalation_level: 1",
            "obligation_escalation_level: 9",
            "agreements.obligation_escalation_level",
        ),
        ("obligation_escalation_level: 1", "obligation_escalaton_level: 1", "agreements."),
    ],
)
def test_bad_agreement_rules_name_the_key(old: str, new: str, key: str):
    text = TEXT.replace(old, new)
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    assert key in str(caught.value)
