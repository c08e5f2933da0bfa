"""Case conferences: the rules routing checks before it plans, changes, holds or closes one.
No I/O.

Every rule reads the case's `ConferenceRules` (the policy's `conferences:` section with
its jurisdiction's overrides) and the owning team's working calendar. A rule that is not
met raises `ConferenceRefused`; its message is the reason staff read on the case page, so
it names the rule and what would satisfy it, never anything about the case's people
beyond what the requester sent.

Working days: a local date of the team's calendar with working hours that is not a
holiday. "N working days before" the conference means the conference's date is at least
the Nth working day after the day the plan was made (planned on a Monday with 5: the
following Monday at the earliest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal
from urllib.parse import urlsplit
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.routing.domain.calendar import WorkingCalendar
from services.routing.domain.policy import ConferenceRules, StaffMember
from shared.events import (
    ConferenceAction,
    ConferenceActionRequest,
    ConferenceAttendance,
    ConferenceParticipant,
    ConferencePlan,
)

ConferenceStatus = Literal["planned", "cancelled", "held", "summarised", "completed"]
ActionStatus = Literal["open", "replanned", "done", "ended"]
# An action still to be done (a replanned one has a new due date and is tracked again).
OPEN_ACTION_STATUSES = frozenset({"open", "replanned"})
PRACTITIONER_CONSENT = "practitioner_involvement"
MEDICAL_CONSULTATION_CONSENT = "medical_consultation"
# Working days are searched this far ahead before the calendar counts as broken.
_DAY_SEARCH_LIMIT = 3 * 366


class ConferenceRefused(ValueError):
    """The request cannot be applied; the message is the reason the requester reads."""


# --- working days ------------------------------------------------------------------------


def _local(moment: datetime, time_zone: str) -> str:
    """`moment` as staff read it in the IANA zone `time_zone` (UTC if the zone is
    unknown), e.g. "2026-12-10 09:00 (Australia/Sydney)"."""
    try:
        zone: tzinfo = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone, time_zone = UTC, "UTC"
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} ({time_zone})"


def local_date(calendar: WorkingCalendar, moment: datetime) -> date:
    """The calendar's local date at `moment`."""
    return moment.astimezone(calendar.zone).date()


def is_working_day(calendar: WorkingCalendar, day: date) -> bool:
    return bool(calendar.day_intervals(day))


def working_day_after(calendar: WorkingCalendar, day: date, count: int) -> date:
    """The `count`th working day after `day` (`day` itself for 0, working or not).
    Raises ValueError for a calendar with no working day for years (a policy error)."""
    found, current, idle = 0, day, 0
    while found < count:
        current += timedelta(days=1)
        if is_working_day(calendar, current):
            found, idle = found + 1, 0
        else:
            idle += 1
            if idle > _DAY_SEARCH_LIMIT:
                raise ValueError(f"calendar {calendar.time_zone}: no working day after {day}")
    return current


def end_of_working_day(calendar: WorkingCalendar, day: date) -> datetime:
    """The UTC instant `day`'s work ends: its last working interval's close; on a day off,
    the midnight that ends the local day."""
    intervals = calendar.day_intervals(day)
    if intervals:
        return intervals[-1][1]
    next_midnight = datetime.combine(day + timedelta(days=1), time(0), calendar.zone)
    return next_midnight.astimezone(UTC)


def earliest_conference_date(
    calendar: WorkingCalendar, requested_at: datetime, notice_working_days: int
) -> date:
    """The first local date a conference planned at `requested_at` may take place on."""
    return working_day_after(calendar, local_date(calendar, requested_at), notice_working_days)


def summary_due_at(
    calendar: WorkingCalendar, held_at: datetime, within_working_days: int
) -> datetime:
    """End of the `within_working_days`th working day after the day the conference was held
    (0: the end of that day's work)."""
    day = working_day_after(calendar, local_date(calendar, held_at), within_working_days)
    return end_of_working_day(calendar, day)


def action_due_at(calendar: WorkingCalendar, due_on: date) -> datetime:
    """An agreed action is due by the end of the working day `due_on` in the team's calendar
    (the midnight ending it when `due_on` is a day off)."""
    return end_of_working_day(calendar, due_on)


def reminder_at(
    calendar: WorkingCalendar, share: float, *, start: datetime, due: datetime
) -> datetime | None:
    """When the action's reminder fires: `share` of the working time between `start` and
    `due`; None when there is no working time left between them."""
    total = calendar.working_between(start, due)
    if total <= timedelta(0):
        return None
    moment = calendar.add_working(start, total * share)
    return moment if start < moment < due else None


# --- consents ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentRecord:
    kind: str
    given_by: str
    granted: bool
    recorded_at: datetime


@dataclass(frozen=True)
class Consents:
    """Each (kind, given_by)'s latest record decides: a withdrawal after a grant stands."""

    latest: Mapping[tuple[str, str], bool]

    @classmethod
    def from_records(cls, records: Iterable[ConsentRecord]) -> Consents:
        latest: dict[tuple[str, str], tuple[datetime, bool]] = {}
        for record in records:  # in the order stored: a later record at the same instant wins
            key = (record.kind, record.given_by)
            if key not in latest or record.recorded_at >= latest[key][0]:
                latest[key] = (record.recorded_at, record.granted)
        return cls({key: granted for key, (_, granted) in latest.items()})

    def granted(self, kind: str, given_by: str) -> bool:
        return self.latest.get((kind, given_by), False)

    @property
    def practitioners_may_join(self) -> bool:
        return self.granted(PRACTITIONER_CONSENT, "worker")


def awaiting_consent(
    participants: Sequence[ConferenceParticipant], rules: ConferenceRules, consents: Consents
) -> list[UUID]:
    """Participants held back until the worker's practitioner_involvement consent."""
    if consents.practitioners_may_join:
        return []
    gated = set(rules.consent_gated_roles)
    return [p.participant_id for p in participants if p.role in gated]


# --- planning ----------------------------------------------------------------------------


def normalised(plan: ConferencePlan) -> ConferencePlan:
    """An in-person plan without a venue is at the worker's workplace."""
    if plan.mode == "in_person" and plan.venue is None:
        return plan.model_copy(update={"venue": "workplace"})
    return plan


def _role_label(role: str) -> str:
    return role.replace("_", " ")


def check_participants(
    participants: Sequence[ConferenceParticipant], rules: ConferenceRules
) -> None:
    """Who must be asked: exactly one worker, every `must_invite` role, at least
    `minimum_participants` people, each address and participant id once."""
    workers = sum(1 for p in participants if p.role == "worker")
    if workers != 1:
        raise ConferenceRefused(f"a conference needs exactly one worker (the plan names {workers})")
    roles = {p.role for p in participants}
    missing = [r for r in rules.must_invite if r not in roles]
    if missing:
        raise ConferenceRefused(
            "these roles must be invited: " + ", ".join(_role_label(r) for r in missing)
        )
    if len(participants) < rules.minimum_participants:
        raise ConferenceRefused(
            f"a conference needs at least {rules.minimum_participants} participants"
            f" (the plan names {len(participants)})"
        )
    emails = [str(p.email).lower() for p in participants]
    repeated = sorted({e for e in emails if emails.count(e) > 1})
    if repeated:
        raise ConferenceRefused(
            "each participant needs their own email address: " + ", ".join(repeated)
        )
    ids = [p.participant_id for p in participants]
    if len(set(ids)) != len(ids):
        raise ConferenceRefused("a participant id appears twice")


def _https_link(link: str) -> bool:
    parts = urlsplit(link.strip())
    return parts.scheme == "https" and bool(parts.hostname)


def check_place(plan: ConferencePlan, rules: ConferenceRules, consents: Consents) -> None:
    """Where it happens: an address (in person), a dial-in (telephone) or an https link
    (video); another venue needs its reason, the worker's medical consultation its consents."""
    if plan.mode != "in_person" and plan.venue is not None:
        raise ConferenceRefused(f"a venue applies to in-person conferences, not {plan.mode}")
    if plan.mode == "in_person":
        if not (plan.location or "").strip():
            raise ConferenceRefused("an in-person conference needs a location (its address)")
        if plan.venue == "other_venue" and not (plan.venue_reason or "").strip():
            raise ConferenceRefused(
                "a venue other than the workplace needs a venue_reason (e.g. conflict"
                " between worker and employer)"
            )
        if plan.venue == "medical_consultation":
            lacking = [
                g
                for g in rules.medical_consultation_consents
                if not consents.granted(MEDICAL_CONSULTATION_CONSENT, g)
            ]
            if lacking:
                raise ConferenceRefused(
                    "a conference in the worker's medical consultation needs the"
                    " medical_consultation consent of: "
                    + ", ".join(_role_label(g) for g in lacking)
                )
    elif plan.mode == "telephone":
        if not (plan.location or "").strip():
            raise ConferenceRefused("a telephone conference needs a location (the dial-in)")
    elif not plan.video_link or not _https_link(plan.video_link):
        raise ConferenceRefused("a video conference needs a video_link starting with https://")


def check_notice(
    plan: ConferencePlan, rules: ConferenceRules, calendar: WorkingCalendar, requested_at: datetime
) -> None:
    """The agenda must reach everyone `notice_working_days` before the conference."""
    if plan.scheduled_for <= requested_at:
        raise ConferenceRefused("scheduled_for must be in the future")
    earliest = earliest_conference_date(calendar, requested_at, rules.notice_working_days)
    if local_date(calendar, plan.scheduled_for) < earliest:
        raise ConferenceRefused(
            f"too little notice: the agenda must go out at least {rules.notice_working_days}"
            f" working days before the conference; the earliest allowed date is"
            f" {earliest.isoformat()} ({calendar.time_zone})"
        )


def check_plan(
    plan: ConferencePlan,
    participants: Sequence[ConferenceParticipant],
    rules: ConferenceRules,
    *,
    calendar: WorkingCalendar,
    requested_at: datetime,
    consents: Consents,
    notice: bool = True,
) -> ConferencePlan:
    """The plan as routing will keep it (venue defaulted), or ConferenceRefused. `notice`
    False skips the notice rule (a change that keeps the date)."""
    plan = normalised(plan)
    check_participants(participants, rules)
    check_place(plan, rules, consents)
    if notice:
        check_notice(plan, rules, calendar, requested_at)
    return plan


def changed_fields(
    old_plan: ConferencePlan,
    old_participants: Sequence[ConferenceParticipant],
    new_plan: ConferencePlan,
    new_participants: Sequence[ConferenceParticipant],
) -> list[str]:
    """The ConferencePlan fields that differ (in field order), then "participants" when
    anyone was added, removed or their details changed."""
    old, new = old_plan.model_dump(mode="json"), new_plan.model_dump(mode="json")
    changed = [name for name in ConferencePlan.model_fields if old[name] != new[name]]
    by_id = {p.participant_id: p for p in old_participants}
    if len(old_participants) != len(new_participants) or any(
        by_id.get(p.participant_id) != p for p in new_participants
    ):
        changed.append("participants")
    return changed


def removed_participants(
    old: Sequence[ConferenceParticipant], new: Sequence[ConferenceParticipant]
) -> list[ConferenceParticipant]:
    kept = {p.participant_id for p in new}
    return [p for p in old if p.participant_id not in kept]


def check_change_allowed(status: str) -> None:
    if status != "planned":
        raise ConferenceRefused(f"only a planned conference can be changed (it is {status})")


def check_cancel_allowed(status: str) -> None:
    if status != "planned":
        raise ConferenceRefused(f"only a planned conference can be cancelled (it is {status})")


# --- holding and summarising -------------------------------------------------------------


def check_hold(
    status: str,
    participants: Sequence[ConferenceParticipant],
    attendance: Sequence[ConferenceAttendance],
    *,
    held_at: datetime,
    requested_at: datetime,
    planned_at: datetime,
    scheduled_for: datetime,
    time_zone: str,
    early_minutes: int,
    mode: str = "in_person",
) -> None:
    """A planned conference, held in the past (not before it was planned, nor more than
    `early_minutes` minutes before its scheduled start `scheduled_for`), its attendance
    naming each known participant at most once; on the telephone or by video, whether each
    party who attended had their turn to state their view is recorded (true or false).

    `time_zone` (IANA, the plan's) is the zone the refusal names the scheduled time in."""
    if status != "planned":
        raise ConferenceRefused(
            f"only a planned conference can be recorded as held (it is {status})"
        )
    if held_at > requested_at:
        raise ConferenceRefused("held_at is in the future")
    if held_at < planned_at:
        raise ConferenceRefused("held_at is before the conference was planned")
    if held_at < scheduled_for - timedelta(minutes=early_minutes):
        # A record of a meeting on a day other than the one the participants were given
        # notice of would not stand: the notice rule applies to the date it was held on.
        raise ConferenceRefused(
            f"held_at is before the conference's scheduled time {_local(scheduled_for, time_zone)}"
            f" (at most {early_minutes} minutes early); if it was brought forward, reschedule"
            " it to when it was held first"
        )
    known = {p.participant_id for p in participants}
    named = [a.participant_id for a in attendance]
    unknown = [str(i) for i in named if i not in known]
    if unknown:
        raise ConferenceRefused(
            "attendance names someone who is not a participant: " + ", ".join(unknown)
        )
    if len(set(named)) != len(named):
        raise ConferenceRefused("attendance names a participant twice")
    if mode != "in_person":
        # Nobody sees who spoke on a call: the record must say whether each party had theirs.
        silent = [str(a.participant_id) for a in attendance if a.attended and a.view_stated is None]
        if silent:
            raise ConferenceRefused(
                f"a {mode} conference records whether each party who attended stated their"
                " view (view_stated) — missing for: " + ", ".join(silent)
            )


def plan_actions(
    requests: Sequence[ConferenceActionRequest],
    participants: Sequence[ConferenceParticipant],
    staff: Callable[[str], StaffMember | None],
    *,
    calendar: WorkingCalendar,
    due_soon_share: float,
    now: datetime,
) -> list[ConferenceAction]:
    """The agreed actions as routing tracks them: each owner a participant or a member of
    staff the policy knows (their name and address), due by the end of the working day
    `due_on`, with its reminder instant. Raises ConferenceRefused naming the action."""
    by_id = {p.participant_id: p for p in participants}
    actions: list[ConferenceAction] = []
    seen: set[UUID] = set()
    for number, request in enumerate(requests, start=1):
        label = f"action {number}"
        if request.action_id in seen:
            raise ConferenceRefused(f"{label}: its action_id appears twice")
        seen.add(request.action_id)
        if (request.owner_participant_id is None) == (request.owner_staff_id is None):
            raise ConferenceRefused(
                f"{label}: give exactly one owner (owner_participant_id or owner_staff_id)"
            )
        if request.owner_participant_id is not None:
            participant = by_id.get(request.owner_participant_id)
            if participant is None:
                raise ConferenceRefused(
                    f"{label}: its owner is not a participant of the conference"
                )
            name, email = participant.name, str(participant.email)
        else:
            assert request.owner_staff_id is not None
            member = staff(request.owner_staff_id)
            if member is None:
                raise ConferenceRefused(
                    f"{label}: {request.owner_staff_id!r} is not HR staff in the routing policy"
                )
            name, email = member.name, str(member.email)
        due = action_due_at(calendar, request.due_on)
        if due <= now:
            raise ConferenceRefused(
                f"{label}: due_on {request.due_on.isoformat()} has already ended"
            )
        actions.append(
            ConferenceAction(
                action_id=request.action_id,
                description=request.description,
                owner_participant_id=request.owner_participant_id,
                owner_staff_id=request.owner_staff_id,
                owner_name=name,
                owner_email=email,
                due_on=request.due_on,
                due_at=due,
                due_soon_at=reminder_at(calendar, due_soon_share, start=now, due=due),
            )
        )
    return actions


def conference_complete(action_statuses: Iterable[str]) -> bool:
    """Every action done or carried out of the conference (none: complete at once)."""
    return all(s in ("done", "ended") for s in action_statuses)
