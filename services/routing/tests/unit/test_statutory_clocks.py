"""Statutory clocks: triggers, conditions and due instants.

The due instants of one pack's clocks are compared with an independent brute force that
walks the clock minute by minute in UTC, reading the local wall time through zoneinfo
(weekends, the pack's holidays, the Sydney and London DST changes)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing.domain.policy import (
    DEFAULT_POLICY_FILE,
    CalendarSpec,
    ClockTrigger,
    ClockWithin,
    JurisdictionPack,
    PolicyError,
    StatutoryClockSpec,
    load_policy,
    parse_policy,
)
from services.routing.domain.statutory_clocks import (
    condition_holds,
    conference_rules_pack,
    due_at,
    due_soon_at,
    meets,
    packs_for,
    plan_timers,
    starts,
)

# A pack calendar whose hours span the small-hours DST changes on some days (Sunday
# 00:30-05:00 covers both zones' transitions), besides office hours and holidays.
HOURS = {
    "mon": ("09:00-17:30",),
    "tue": ("09:00-17:30",),
    "wed": ("09:00-12:30", "13:30-17:30"),
    "thu": ("09:00-17:30",),
    "fri": ("09:00-17:00",),
    "sun": ("00:30-05:00",),
}
SYDNEY_HOLIDAYS = (date(2026, 10, 5), date(2026, 12, 25), date(2026, 12, 28), date(2027, 4, 5))
LONDON_HOLIDAYS = (date(2026, 10, 26), date(2026, 12, 25), date(2027, 3, 29))
CALENDARS = {
    "Australia/Sydney": CalendarSpec(
        time_zone="Australia/Sydney", hours=HOURS, holidays=SYDNEY_HOLIDAYS
    ),
    "Europe/London": CalendarSpec(time_zone="Europe/London", hours=HOURS, holidays=LONDON_HOLIDAYS),
}
# DST changes: Sydney 4 Oct 2026 (forward), 4 Apr 2027 (back); London 25 Oct 2026 (back),
# 28 Mar 2027 (forward). Starts are drawn from the fortnight around each.
TRANSITIONS = {
    "Australia/Sydney": (datetime(2026, 10, 3, tzinfo=UTC), datetime(2027, 4, 3, tzinfo=UTC)),
    "Europe/London": (datetime(2026, 10, 24, tzinfo=UTC), datetime(2027, 3, 27, tzinfo=UTC)),
}


def _intervals(spec: CalendarSpec, local_day: date) -> list[tuple[time, time]]:
    if local_day in spec.holidays:
        return []
    name = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local_day.weekday()]
    result = []
    for text in spec.hours.get(name, ()):  # type: ignore[call-overload]
        opens, closes = text.split("-")
        result.append((time.fromisoformat(opens), time.fromisoformat(closes)))
    return result


def _working_minute(spec: CalendarSpec, minute: datetime) -> tuple[bool, date]:
    """Whether the minute starting at `minute` (UTC) is working time, and its local day."""
    local = minute.astimezone(ZoneInfo(spec.time_zone))
    wall = local.time().replace(tzinfo=None)
    return any(o <= wall < c for o, c in _intervals(spec, local.date())), local.date()


def brute_working_hours(spec: CalendarSpec, start: datetime, hours: int) -> datetime:
    needed, minute = hours * 60, start
    while True:
        working, _ = _working_minute(spec, minute)
        minute += timedelta(minutes=1)
        if working:
            needed -= 1
            if needed == 0:
                return minute


def brute_working_days(spec: CalendarSpec, start: datetime, days: int) -> datetime:
    """Walk minutes: count each new local day with working minutes after the start's
    day; the end of the last working minute of the Nth such day."""
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


def brute_working_between(spec: CalendarSpec, start: datetime, end: datetime) -> int:
    minutes, minute = 0, start
    while minute < end:
        minutes += _working_minute(spec, minute)[0]
        minute += timedelta(minutes=1)
    return minutes


def starts_near(zone: str) -> st.SearchStrategy[datetime]:
    first, second = TRANSITIONS[zone]
    return st.sampled_from([first, second]).flatmap(
        lambda base: st.integers(min_value=-8 * 24 * 60, max_value=8 * 24 * 60).map(
            lambda m: base + timedelta(minutes=m)
        )
    )


@pytest.mark.parametrize("zone", sorted(CALENDARS))
@settings(max_examples=40, deadline=None)
@given(data=st.data(), hours=st.integers(min_value=1, max_value=40))
def test_working_hour_clocks_fall_due_where_a_minute_walk_says(zone, data, hours):
    spec = CALENDARS[zone]
    start = data.draw(starts_near(zone))
    within = ClockWithin(working_hours=hours)
    due = due_at(within, spec.to_calendar(), start)
    assert due == brute_working_hours(spec, start, hours)
    # The reminder: three quarters of the working time, within a minute of the walk's.
    reminder = due_soon_at(within, spec.to_calendar(), start, due, 0.75)
    assert reminder is not None and start < reminder < due
    used = brute_working_between(spec, start, reminder)
    assert abs(used - hours * 60 * 0.75) <= 1


@pytest.mark.parametrize("zone", sorted(CALENDARS))
@settings(max_examples=40, deadline=None)
@given(data=st.data(), days=st.integers(min_value=1, max_value=6))
def test_working_day_clocks_close_with_the_nth_working_day(zone, data, days):
    spec = CALENDARS[zone]
    start = data.draw(starts_near(zone))
    due = due_at(ClockWithin(working_days=days), spec.to_calendar(), start)
    assert due == brute_working_days(spec, start, days)


@pytest.mark.parametrize("zone", sorted(CALENDARS))
@settings(max_examples=60, deadline=None)
@given(data=st.data(), days=st.integers(min_value=1, max_value=10))
def test_calendar_day_clocks_end_at_local_midnight_across_dst(zone, data, days):
    spec = CALENDARS[zone]
    start = data.draw(starts_near(zone))
    due = due_at(ClockWithin(calendar_days=days), spec.to_calendar(), start)
    local = due.astimezone(ZoneInfo(zone))
    assert (local.hour, local.minute) == (0, 0)
    start_day = start.astimezone(ZoneInfo(zone)).date()
    assert local.date() == start_day + timedelta(days=days + 1)
    # One minute before it is still the Nth day, whatever the offset did meanwhile.
    before = (due - timedelta(minutes=1)).astimezone(ZoneInfo(zone))
    assert before.date() == start_day + timedelta(days=days)


@given(start=starts_near("Australia/Sydney"), hours=st.integers(min_value=1, max_value=200))
def test_calendar_hour_clocks_count_elapsed_time(start, hours):
    due = due_at(
        ClockWithin(calendar_hours=hours), CALENDARS["Australia/Sydney"].to_calendar(), start
    )
    assert due - start == timedelta(hours=hours)


def test_the_nsw_pack_over_the_october_long_weekend():
    """Friday 2 Oct 2026, 16:00 in Sydney; Monday 5 Oct is Labour Day (a holiday in the
    test calendar) and Sunday 4 Oct the clocks go forward."""
    policy = load_policy()
    sydney = CalendarSpec(
        time_zone="Australia/Sydney",
        hours={d: ("09:00-17:30",) for d in ("mon", "tue", "wed", "thu")}
        | {"fri": ("09:00-17:00",)},
        holidays=(date(2026, 10, 5),),
    ).to_calendar()
    start = datetime(2026, 10, 2, 16, 0, tzinfo=ZoneInfo("Australia/Sydney"))
    clocks = {c.name: c for c in policy.jurisdictions["nsw"].clocks}
    sydney_time = ZoneInfo("Australia/Sydney")
    # 48 calendar hours: Sunday 4 Oct 17:00 AEDT (one wall-clock hour "lost" to DST).
    assert due_at(clocks["insurer_notification"].within, sydney, start).astimezone(
        sydney_time
    ) == datetime(2026, 10, 4, 17, 0, tzinfo=sydney_time)
    # 3 working days: Tue 6, Wed 7, Thu 8 -> Thursday's close.
    assert due_at(clocks["insurer_contact"].within, sydney, start).astimezone(
        sydney_time
    ) == datetime(2026, 10, 8, 17, 30, tzinfo=sydney_time)
    # 7 calendar days: the end of Friday 9 Oct.
    assert due_at(clocks["provisional_payments"].within, sydney, start).astimezone(
        sydney_time
    ) == datetime(2026, 10, 10, 0, 0, tzinfo=sydney_time)


# --- triggers and conditions -----------------------------------------------------------


def test_conditions_on_the_payload():
    payload = {
        "category": "workplace_injury",
        "injury": {"serious": True},
        "reason": "The Companion is on leave",
        "reasons": ["serious_injury"],
    }
    assert condition_holds(payload, "category", "workplace_injury")
    assert not condition_holds(payload, "category", "grievance")
    assert condition_holds(payload, "category", ("grievance", "workplace_injury"))
    assert condition_holds(payload, "injury.serious", True)
    assert not condition_holds(payload, "injury.serious", False)
    assert not condition_holds(payload, "injury.missing", True)
    assert not condition_holds({"injury": None}, "injury.serious", True)
    assert condition_holds(payload, "reason_contains", "companion")
    assert not condition_holds(payload, "reason_contains", "doctor")
    assert condition_holds(payload, "reasons", "serious_injury")
    assert condition_holds(payload, "reasons_contains", "serious")
    # A boolean never equals the number 1.
    assert not condition_holds({"flag": True}, "flag", 1)


def test_which_clocks_an_event_starts_for_an_nsw_case():
    policy = load_policy()
    packs = packs_for(policy, policy.jurisdiction_for("injury_management"))
    assert set(packs) == {"conference_rules", "nsw"}
    routed = starts(packs, "case.routed", {"category": "workplace_injury"})
    assert {(s.pack, s.spec.name) for s in routed} == {
        ("nsw", "insurer_notification"),
        ("nsw", "provisional_payments"),
    }
    assert starts(packs, "case.routed", {"category": "grievance"}) == []
    submitted = starts(packs, "case.submitted", {"injury": {"serious": True}})
    assert [(s.pack, s.spec.name) for s in submitted] == [("nsw", "insurer_contact")]
    assert starts(packs, "case.submitted", {"injury": {"serious": False}}) == []
    required = starts(packs, "conference.required", {"reasons": ["serious_injury"]})
    assert {(s.pack, s.spec.name) for s in required} == {
        ("conference_rules", "conference_planning"),
        ("nsw", "insurer_contact"),
    }


def test_a_claim_names_its_own_jurisdiction():
    policy = load_policy()
    assert policy.jurisdiction_for("injury_management", "vic") == "vic"
    assert policy.jurisdiction_for("hr_operations") is None
    assert set(packs_for(policy, "vic")) == {"conference_rules", "vic"}
    assert set(packs_for(policy, "nowhere")) == {"conference_rules"}


def test_the_uk_postponement_clock_runs_per_conference():
    policy = load_policy()
    packs = packs_for(policy, "uk")
    conference = "7d1d3c8e-54c4-4d4a-9c8c-0b5e7cf7a111"
    postponed = starts(
        packs,
        "conference.rescheduled",
        {"conference_id": conference, "reason": "The worker's companion is unavailable"},
    )
    assert [(s.pack, s.spec.name, s.key) for s in postponed] == [
        ("uk", "postponed_hearing", conference)
    ]
    other = starts(packs, "conference.rescheduled", {"conference_id": conference, "reason": "room"})
    assert other == []
    spec = postponed[0].spec
    assert meets(spec, conference, "conference.held", {"conference_id": conference})
    assert not meets(spec, conference, "conference.held", {"conference_id": "another"})
    assert not meets(spec, conference, "conference.planned", {"conference_id": conference})


def test_the_conference_rules_pack_comes_from_the_policy():
    policy = load_policy()
    pack = conference_rules_pack(policy, "nsw")
    planning, summary = pack.clocks
    assert planning.within.working_hours == policy.conference_within_hours
    assert planning.met_on == ("conference.planned",)
    assert meets(planning, "", "conference.planned", {"conference_id": "x"})
    assert summary.per == "conference" and summary.within.working_days == 5
    assert summary.met_on == ("conference.summary_recorded",)


def test_timers_skip_a_reminder_already_past():
    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    due = now + timedelta(hours=5)
    assert [t.kind for t in plan_timers(due=due, reminder=now + timedelta(hours=1), now=now)] == [
        "due_soon",
        "breached",
    ]
    assert [t.kind for t in plan_timers(due=due, reminder=now - timedelta(hours=1), now=now)] == [
        "breached"
    ]


def test_a_clock_needs_exactly_one_unit():
    with pytest.raises(ValueError, match="exactly one"):
        ClockWithin(working_hours=1, calendar_days=2)
    with pytest.raises(ValueError, match="exactly one"):
        ClockWithin()


def _policy_text(extra: str) -> str:
    return DEFAULT_POLICY_FILE.read_text(encoding="utf-8") + extra


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "  qld:\n    label: Q\n    calendar: brisbane\n    clocks: []\n",
            "jurisdictions.qld.calendar: unknown calendar 'brisbane'",
        ),
        (
            "  qld:\n    label: Q\n    clocks:\n      - {name: a, label: A, citation: c,"
            " start_on: {event: case.nothing}, within: {working_days: 2}}\n",
            "unknown event type 'case.nothing'",
        ),
        (
            "  qld:\n    label: Q\n    clocks:\n      - {name: a, label: A, citation: c,"
            " start_on: {event: case.routed, when: {colour: red}}, within: {working_days: 2}}\n",
            "case.routed has no field 'colour'",
        ),
        (
            "  qld:\n    label: Q\n    clocks:\n      - {name: a, label: A, citation: c,"
            " start_on: {event: case.routed}, within: {working_days: 2},"
            " met_on: [conference.nothing]}\n",
            "unknown event type 'conference.nothing'",
        ),
        (
            "  conference_rules:\n    label: mine\n    clocks: []\n",
            "built-in pack",
        ),
        (
            "  qld:\n    label: Q\n    clocks:\n      - {name: a, label: A, citation: c,"
            " start_on: {event: case.routed}, within: {working_days: 2}, per: conference}\n",
            "a per-conference clock needs an event with a conference_id; case.routed has none",
        ),
    ],
    ids=["calendar", "trigger", "condition-field", "met-on", "reserved-key", "per-conference"],
)
def test_cross_references_are_checked(change, message):
    with pytest.raises(PolicyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_policy(_policy_text(change))


def test_a_team_jurisdiction_must_be_a_pack():
    text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8").replace(
        "    jurisdiction: nsw\n", "    jurisdiction: qld\n"
    )
    with pytest.raises(PolicyError, match=r"teams\.injury_management\.jurisdiction"):
        parse_policy(text)


def test_a_pack_needs_a_label_and_clocks_a_trigger():
    with pytest.raises(ValueError):
        JurisdictionPack.model_validate({"clocks": []})
    with pytest.raises(ValueError):
        StatutoryClockSpec(
            name="a", label="A", citation="c", start_on=(), within=ClockWithin(working_days=1)
        )
    assert StatutoryClockSpec.model_validate(
        {
            "name": "a",
            "label": "A",
            "citation": "c",
            "start_on": {"event": "case.routed"},
            "within": {"working_days": 1},
        }
    ).start_on == (ClockTrigger(event="case.routed"),)


def _pack(zone: str, hours: int, days: int) -> dict[str, JurisdictionPack]:
    """A pack of two working-time clocks on the zone's calendar, both started by case.routed
    for a workplace injury, with reminders at two thirds."""
    return {
        "test": JurisdictionPack(
            label="Test pack",
            calendar=None,  # the case team's; the test hands over the zone's calendar
            clocks=tuple(
                StatutoryClockSpec(
                    name=name,
                    label=name,
                    citation="test",
                    start_on=(
                        ClockTrigger(event="case.routed", when={"category": "workplace_injury"}),
                    ),
                    within=within,
                    due_soon_share=2 / 3,
                )
                for name, within in (
                    ("hours", ClockWithin(working_hours=hours)),
                    ("days", ClockWithin(working_days=days)),
                )
            ),
        )
    }


@pytest.mark.parametrize("zone", sorted(CALENDARS))
@settings(max_examples=20, deadline=None)
@given(
    data=st.data(),
    hours=st.integers(min_value=1, max_value=30),
    days=st.integers(min_value=1, max_value=5),
)
def test_a_packs_timers_fire_at_the_minute_walks_instants(zone, data, hours, days):
    """The timers one pack's clocks plan (reminder and breach) from the event that starts
    them: the breach where the minute walk says the clock runs out, the reminder within a
    minute of two thirds of its working time."""
    spec = CALENDARS[zone]
    calendar = spec.to_calendar()
    start = data.draw(starts_near(zone))
    started = starts(_pack(zone, hours, days), "case.routed", {"category": "workplace_injury"})
    assert [s.spec.name for s in started] == ["hours", "days"]
    expected_due = {
        "hours": brute_working_hours(spec, start, hours),
        "days": brute_working_days(spec, start, days),
    }
    for clock in started:
        due = due_at(clock.spec.within, calendar, start)
        reminder = due_soon_at(clock.spec.within, calendar, start, due, clock.spec.due_soon_share)
        timers = {t.kind: t.fire_at for t in plan_timers(due=due, reminder=reminder, now=start)}
        assert timers["breached"] == expected_due[clock.spec.name]
        total = brute_working_between(spec, start, timers["breached"])
        if "due_soon" in timers:
            used = brute_working_between(spec, start, timers["due_soon"])
            assert abs(used - total * 2 / 3) <= 1
        else:  # no working time to share before the breach (it started after the close)
            assert total == 0
