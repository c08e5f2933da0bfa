"""Written agreements in independent case management: when an agreement comes into force
and when its obligations and follow-up check-ins fall due. Pure rules, no I/O.

An agreement is drafted in versions; a new version replaces the last and its acceptances
start afresh. The latest version comes into force once BOTH party roles (the employee and
the employer's representative) accepted that version; an acceptance of a superseded
version counts for nothing.

Due instants, in the case team's working calendar (shared.working_time):
- an obligation (a term with `owner_role` and `due_on`) is due at the close of the last
  working interval of `due_on`; when `due_on` is not a working day (weekend, holiday), at
  the close of the working day BEFORE it: "by Sunday" means by the end of Friday's work,
  so the owner is never told later than the date the parties wrote;
- its reminder comes at `share` of the working time between the agreement coming into
  force and the due instant (None when no working time is left between them, or the
  share lands on either end);
- follow-up check-in N comes at the close of the `offsets[N-1]`th working day after the
  local day the agreement came into force (the day itself does not count, as in the
  conference summary's due date).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from uuid import UUID

from services.routing.domain.calendar import WorkingCalendar
from shared.events import AgreementObligation, AgreementTerm, PartyRole

PARTY_ROLES: frozenset[PartyRole] = frozenset({"employee", "employer_representative"})
# A calendar without a working day for this many days is a policy error, not a loop.
_DAY_SEARCH_LIMIT = 3 * 366

AgreementTimerKind = Literal["due_soon", "overdue", "follow_up"]
AcceptanceOutcome = Literal["superseded", "waiting", "in_force", "already_in_force"]


def _working_day(calendar: WorkingCalendar, day: date) -> bool:
    return bool(calendar.day_intervals(day))


def working_day_on_or_before(calendar: WorkingCalendar, day: date) -> date:
    """`day` when it is a working day, else the nearest working day before it. Raises
    ValueError for a calendar with no working day for years (a policy error)."""
    current = day
    for _ in range(_DAY_SEARCH_LIMIT):
        if _working_day(calendar, current):
            return current
        current -= timedelta(days=1)
    raise ValueError(f"calendar {calendar.time_zone}: no working day on or before {day}")


def working_day_after(calendar: WorkingCalendar, day: date, count: int) -> date:
    """The `count`th working day after `day` (`day` itself for 0). Raises ValueError for a
    calendar with no working day for years."""
    found, current, idle = 0, day, 0
    while found < count:
        current += timedelta(days=1)
        if _working_day(calendar, current):
            found, idle = found + 1, 0
        else:
            idle += 1
            if idle > _DAY_SEARCH_LIMIT:
                raise ValueError(f"calendar {calendar.time_zone}: no working day after {day}")
    return current


def close_of_working_day(calendar: WorkingCalendar, day: date) -> datetime:
    """The UTC instant the working day `day` ends (its last interval's close)."""
    intervals = calendar.day_intervals(day)
    if not intervals:
        raise ValueError(f"{day} is not a working day in {calendar.time_zone}")
    return intervals[-1][1]


def obligation_due_at(calendar: WorkingCalendar, due_on: date) -> datetime:
    """When an obligation due on `due_on` falls due: the close of that working day, or of
    the working day before when `due_on` is a day off (UTC)."""
    return close_of_working_day(calendar, working_day_on_or_before(calendar, due_on))


def obligation_due_soon_at(
    calendar: WorkingCalendar, share: float, *, in_force_at: datetime, due_at: datetime
) -> datetime | None:
    """The reminder instant: `share` (0..1) of the working time from `in_force_at` to
    `due_at`; None when there is no working time between them."""
    total = calendar.working_between(in_force_at, due_at)
    if total <= timedelta(0):
        return None
    moment = calendar.add_working(in_force_at, total * share)
    return moment if in_force_at < moment < due_at else None


def follow_ups_at(
    calendar: WorkingCalendar, in_force_at: datetime, offsets: Sequence[int]
) -> list[datetime]:
    """The check-in instants (UTC), one per working-day offset, in the offsets' order."""
    day = in_force_at.astimezone(calendar.zone).date()
    return [close_of_working_day(calendar, working_day_after(calendar, day, n)) for n in offsets]


def tracked(terms: Iterable[AgreementTerm]) -> list[AgreementTerm]:
    """The terms that are obligations: those with an owner and a due date."""
    return [t for t in terms if t.owner_role is not None and t.due_on is not None]


def acceptance_outcome(
    *,
    latest_version: int,
    in_force_version: int | None,
    version: int,
    accepted_roles: Iterable[str],
) -> AcceptanceOutcome:
    """What an acceptance of `version` does, given the roles that accepted it so far
    (including this one): superseded (an older version: ignored), waiting (the other
    party has not accepted yet), in_force (both have: the version comes into force now),
    already_in_force (it came into force before)."""
    if version < latest_version:
        return "superseded"
    if in_force_version is not None and in_force_version >= version:
        return "already_in_force"
    return "in_force" if set(accepted_roles) >= PARTY_ROLES else "waiting"


@dataclass(frozen=True)
class PlannedAgreementTimer:
    """One timer to store: an obligation's reminder or overdue instant (with `term_id`),
    or a follow-up check-in (with `check_in`, 1-based)."""

    kind: AgreementTimerKind
    fire_at: datetime
    due_at: datetime
    term_id: UUID | None = None
    check_in: int | None = None


@dataclass(frozen=True)
class InForcePlan:
    obligations: list[AgreementObligation]
    follow_ups_at: list[datetime]
    timers: list[PlannedAgreementTimer]


def plan_in_force(
    calendar: WorkingCalendar,
    terms: Sequence[AgreementTerm],
    *,
    in_force_at: datetime,
    due_soon_share: float,
    follow_up_offsets: Sequence[int],
    met_term_ids: frozenset[UUID] = frozenset(),
) -> InForcePlan:
    """Every obligation's due and reminder instants, the follow-up check-ins, and the
    timers to run: none for an obligation already met, no reminder when it would not
    come before the due instant."""
    obligations: list[AgreementObligation] = []
    timers: list[PlannedAgreementTimer] = []
    for term in tracked(terms):
        assert term.owner_role is not None and term.due_on is not None
        due = obligation_due_at(calendar, term.due_on)
        reminder = obligation_due_soon_at(
            calendar, due_soon_share, in_force_at=in_force_at, due_at=due
        )
        obligations.append(
            AgreementObligation(
                term_id=term.term_id, owner_role=term.owner_role, due_at=due, due_soon_at=reminder
            )
        )
        if term.term_id in met_term_ids:
            continue
        if reminder is not None:
            timers.append(PlannedAgreementTimer("due_soon", reminder, due, term_id=term.term_id))
        timers.append(PlannedAgreementTimer("overdue", due, due, term_id=term.term_id))
    check_ins = follow_ups_at(calendar, in_force_at, follow_up_offsets)
    for number, moment in enumerate(check_ins, start=1):
        timers.append(PlannedAgreementTimer("follow_up", moment, moment, check_in=number))
    return InForcePlan(obligations=obligations, follow_ups_at=check_ins, timers=timers)
