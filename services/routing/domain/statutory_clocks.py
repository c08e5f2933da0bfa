"""Statutory clocks: which clocks an event starts or meets on a case, and when they fall due.

A case's clocks come from two packs: hrcase's own conference rules (`conference_rules`,
built from the policy: a required conference must be planned within
`conference_within_hours` working hours; a held conference's summary is due within the
conference rules' `summary_within_working_days`) and the pack of the case's jurisdiction
(`Policy.jurisdiction_for`: the claim's own, else the owning team's). A clock starts once
per case (or once per conference) on the first trigger that matches, and is met by one of
its `met_on` events (the same conference's, for a per-conference clock) or by staff.

Due instants (UTC), in the pack's calendar (the case team's when the pack names none):
- working_hours: that much working time after the start (WorkingCalendar.add_working);
- working_days: the close of the Nth working day after the start's local day (the day of
  the trigger does not count; 0: the close of the day's, or the next, working time);
- calendar_hours: elapsed time;
- calendar_days: local midnight ending the Nth day after the start's local day (DST-correct
  through zoneinfo).
The due-soon reminder comes at `due_soon_share` of the clock's time: working time for the
working units, elapsed time for the calendar ones. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from services.routing.domain.calendar import WorkingCalendar
from services.routing.domain.policy import (
    CONFERENCE_RULES_PACK,
    ClockTrigger,
    ClockWithin,
    JurisdictionPack,
    Policy,
    StatutoryClockSpec,
)

# Used when the policy has no conference rules section (`conferences:`) to read from.
DEFAULT_SUMMARY_WORKING_DAYS = 5
# Payload fields that say when the thing happened, where it differs from when the event
# was made (a conference is held before staff record it).
MOMENT_FIELDS: Mapping[str, str] = {
    "case.submitted": "submitted_at",
    "case.message_received": "received_at",
    "conference.held": "held_at",
    "statutory_clock.completion_requested": "completed_at",
}
_SEARCH_DAYS = 3 * 366
StatutoryTimerKind = Literal["due_soon", "breached"]


def summary_working_days(policy: Policy, jurisdiction: str | None) -> int:
    """The conference rules' summary deadline for the jurisdiction (`conferences:` section,
    its per-jurisdiction overrides applied), in working days."""
    return policy.conferences.rules_for(jurisdiction).summary_within_working_days


def conference_rules_pack(policy: Policy, jurisdiction: str | None) -> JurisdictionPack:
    """hrcase's own conference deadlines as a pack (the case team's calendar)."""
    return JurisdictionPack(
        label="hrcase conference rules",
        calendar=None,
        clocks=(
            StatutoryClockSpec(
                name="conference_planning",
                label="Plan the mandatory case conference",
                citation="hrcase policy",
                start_on=(ClockTrigger(event="conference.required"),),
                within=ClockWithin(working_hours=policy.conference_within_hours),
                met_on=("conference.planned",),
            ),
            StatutoryClockSpec(
                name="conference_summary",
                label="Send the written summary of the case conference",
                citation="hrcase policy",
                start_on=(ClockTrigger(event="conference.held"),),
                within=ClockWithin(working_days=summary_working_days(policy, jurisdiction)),
                met_on=("conference.summary_recorded",),
                per="conference",
            ),
        ),
    )


def packs_for(policy: Policy, jurisdiction: str | None) -> dict[str, JurisdictionPack]:
    """The packs whose clocks apply to a case in `jurisdiction` (an unknown one adds none)."""
    packs = {CONFERENCE_RULES_PACK: conference_rules_pack(policy, jurisdiction)}
    if jurisdiction and jurisdiction in policy.jurisdictions:
        packs[jurisdiction] = policy.jurisdictions[jurisdiction]
    return packs


def watched_event_types(policy: Policy) -> frozenset[str]:
    """Every event type that may start or meet a clock in any pack (the rest pass by
    without a look at the database)."""
    packs = [conference_rules_pack(policy, None), *policy.jurisdictions.values()]
    return frozenset(
        event
        for pack in packs
        for spec in pack.clocks
        for event in (*(t.event for t in spec.start_on), *spec.met_on)
    )


def spec_of(
    policy: Policy, packs: Mapping[str, JurisdictionPack], pack: str, clock: str
) -> StatutoryClockSpec | None:
    """A running clock's rule: from the case's packs, else the pack it started in (the
    case's jurisdiction may have changed since); None when the policy dropped it (then
    only staff can record it as done)."""
    found = packs.get(pack) or policy.jurisdictions.get(pack)
    return next((s for s in found.clocks if s.name == clock), None) if found else None


# --- triggers ------------------------------------------------------------------------------


def _field(payload: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(actual) == float(expected)
    return str(actual).casefold() == str(expected).casefold()


def condition_holds(payload: Mapping[str, Any], key: str, expected: Any) -> bool:
    """One `when` condition on a JSON payload (see ClockTrigger)."""
    options = expected if isinstance(expected, tuple | list) else (expected,)
    if key.endswith("_contains"):
        present, actual = _field(payload, key.removesuffix("_contains"))
        if not present or actual is None:
            return False
        texts = [str(a) for a in actual] if isinstance(actual, list) else [str(actual)]
        return any(str(o).casefold() in t.casefold() for o in options for t in texts)
    present, actual = _field(payload, key)
    if not present:
        return False
    if isinstance(actual, list):
        return any(_equal(a, o) for a in actual for o in options)
    return any(_equal(actual, o) for o in options)


def trigger_matches(trigger: ClockTrigger, event_type: str, payload: Mapping[str, Any]) -> bool:
    return trigger.event == event_type and all(
        condition_holds(payload, key, value) for key, value in trigger.when.items()
    )


def clock_key(spec: StatutoryClockSpec, payload: Mapping[str, Any]) -> str | None:
    """'' for a per-case clock; the conference id for a per-conference one (None when the
    payload has none: such a clock cannot start from this event)."""
    if spec.per == "case":
        return ""
    conference_id = payload.get("conference_id")
    return str(conference_id) if conference_id else None


@dataclass(frozen=True)
class ClockStart:
    pack: str
    pack_calendar: str | None
    spec: StatutoryClockSpec
    key: str  # '' or the conference id


def starts(
    packs: Mapping[str, JurisdictionPack], event_type: str, payload: Mapping[str, Any]
) -> list[ClockStart]:
    """The clocks this event starts (whether they already run is the caller's business)."""
    found = []
    for pack_key, pack in packs.items():
        for spec in pack.clocks:
            if not any(trigger_matches(t, event_type, payload) for t in spec.start_on):
                continue
            key = clock_key(spec, payload)
            if key is not None:
                found.append(ClockStart(pack_key, pack.calendar, spec, key))
    return found


def meets(
    spec: StatutoryClockSpec | None,
    clock_key_: str,
    event_type: str,
    payload: Mapping[str, Any],
) -> bool:
    """Whether this event meets a running clock (a per-conference clock: the same one's)."""
    if spec is None or event_type not in spec.met_on:
        return False
    if spec.per == "conference":
        return str(payload.get("conference_id") or "") == clock_key_
    return True


def event_moment(event_type: str, payload: Mapping[str, Any], fallback: datetime) -> datetime:
    """When the event's fact happened: its payload's own time where it has one."""
    field = MOMENT_FIELDS.get(event_type)
    value = payload.get(field) if field else None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).astimezone(UTC)
        except ValueError:
            return fallback
    return fallback


# --- due instants -------------------------------------------------------------------------


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def close_of_working_day(calendar: WorkingCalendar, start: datetime, days: int) -> datetime:
    """The close of the `days`-th working day after `start`'s local day (0: the close of
    the first working time at or after `start`)."""
    day = start.astimezone(calendar.zone).date()
    if days == 0:
        for _ in range(_SEARCH_DAYS):
            intervals = calendar.day_intervals(day)
            if intervals and intervals[-1][1] > start:
                return intervals[-1][1]
            day += timedelta(days=1)
        raise ValueError(f"calendar {calendar.time_zone}: no working time ahead")
    counted = 0
    for _ in range(_SEARCH_DAYS):
        day += timedelta(days=1)
        intervals = calendar.day_intervals(day)
        if intervals:
            counted += 1
            if counted == days:
                return intervals[-1][1]
    raise ValueError(f"calendar {calendar.time_zone}: no working time ahead")


def due_at(within: ClockWithin, calendar: WorkingCalendar, start: datetime) -> datetime:
    """When a clock started at `start` falls due (UTC)."""
    start = start.astimezone(UTC)
    unit, amount = within.unit, within.amount
    if unit == "working_hours":
        return calendar.add_working(start, timedelta(hours=amount))
    if unit == "working_days":
        return close_of_working_day(calendar, start, int(amount))
    if unit == "calendar_hours":
        return start + timedelta(hours=amount)
    local_day = start.astimezone(calendar.zone).date()
    return _local_midnight(local_day + timedelta(days=int(amount) + 1), calendar.zone)


def due_soon_at(
    within: ClockWithin, calendar: WorkingCalendar, start: datetime, due: datetime, share: float
) -> datetime | None:
    """The reminder instant at `share` of the clock's time; None when there is none to
    share (a clock started after its working time ran out, e.g. 0 working days)."""
    start = start.astimezone(UTC)
    if within.basis == "working":
        total = calendar.working_between(start, due)
        if total <= timedelta(0):
            return None
        return calendar.add_working(start, total * share)
    if due <= start:
        return None
    return start + (due - start) * share


@dataclass(frozen=True)
class PlannedStatutoryTimer:
    kind: StatutoryTimerKind
    fire_at: datetime


def plan_timers(
    *, due: datetime, reminder: datetime | None, now: datetime
) -> list[PlannedStatutoryTimer]:
    """The timers a new clock needs: a reminder still ahead of now and before the due
    instant, and the breach (a clock started late may be breached at once)."""
    timers = [PlannedStatutoryTimer("breached", due)]
    if reminder is not None and now < reminder < due:
        timers.insert(0, PlannedStatutoryTimer("due_soon", reminder))
    return timers
