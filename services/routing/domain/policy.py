"""The routing policy: a YAML file validated into typed rules on start.

Errors name the file, the key path and the line (from the YAML node marks), so whoever
edits the policy can find the mistake without reading a traceback.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from services.routing.domain.calendar import WorkingCalendar
from services.routing.domain.process_policy import DEFAULT_PROCESS, ProcessSpec, process_problems
from services.routing.domain.retention import RetentionPolicy
from shared.addresses import MailAddress
from shared.events import Channel, ConferenceRole, Priority, Sensitivity

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent.parent / "policy" / "default.yaml"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_INTERVAL = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
Strategy = Literal["round_robin", "least_loaded", "skill_match"]
Path_ = tuple[str | int, ...]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SlaTarget(_Strict):
    """Working hours (in the owning team's calendar) to first response and to resolution."""

    first_response_hours: float = Field(gt=0)
    resolution_hours: float = Field(gt=0)


class SlaPolicy(_Strict):
    # Fraction of a clock's working time after which `case.sla_warning` is emitted.
    warn_at: float = Field(default=0.75, gt=0, lt=1)
    targets: dict[Priority, SlaTarget]


class CalendarSpec(_Strict):
    time_zone: str
    # mon..sun -> ["09:00-12:30", "13:30-17:30"]; a missing day is a day off.
    hours: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], tuple[str, ...]]
    holidays: tuple[date, ...] = ()

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("hours")
    @classmethod
    def _valid_intervals(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for day, intervals in value.items():
            previous_close = -1
            for text in intervals:
                opens, closes = _parse_interval(text)
                if opens < previous_close:
                    raise ValueError(f"{day}: interval {text!r} overlaps the one before it")
                previous_close = closes
        if not any(value.values()):
            raise ValueError("a calendar needs working hours on at least one day")
        return value

    def to_calendar(self) -> WorkingCalendar:
        weekly: dict[int, tuple[tuple[time, time], ...]] = {}
        for day, intervals in self.hours.items():
            weekly[WEEKDAYS.index(day)] = tuple(
                (_minutes_to_time(o), _minutes_to_time(c))
                for o, c in (_parse_interval(t) for t in intervals)
            )
        return WorkingCalendar(self.time_zone, weekly, frozenset(self.holidays))


class EscalationLevel(_Strict):
    # Working hours after the breach (0 = at the breach) in the team's calendar.
    after_breach_hours: float = Field(ge=0)
    # "team_lead" or the id of a person in `staff`.
    to: str


class Category(_Strict):
    label: str
    keywords: tuple[str, ...] = ()
    sensitivity: Sensitivity
    priority: Priority
    team: str
    required_skills: tuple[str, ...] = ()
    # The process its cases are worked through (a key of `processes`); None: `query`.
    process: str | None = None


class StaffMember(_Strict):
    """An HR staff member; the id may also be an employee id in the directory."""

    id: str
    name: str
    email: MailAddress
    skills: tuple[str, ...] = ()


class Team(_Strict):
    label: str
    strategy: Strategy = "round_robin"
    calendar: str
    escalation: str
    lead: str
    members: tuple[StaffMember, ...] = Field(min_length=1)
    # The jurisdiction whose statutory clocks and conference rules apply to this team's
    # cases (a key of `jurisdictions`), unless the claim names its own.
    jurisdiction: str | None = None


# --- statutory clock packs (`jurisdictions:`) -------------------------------------------
# Named deadlines a jurisdiction's rules set, started and met by events on a case
# (domain/statutory_clocks.py). Configurable defaults, never legal advice.
WITHIN_UNITS = ("working_hours", "working_days", "calendar_hours", "calendar_days")
CONFERENCE_RULES_PACK = "conference_rules"
_CLOCK_NAME = r"^[a-z][a-z0-9_]{0,63}$"
ConditionValue = str | bool | int | float


class ClockTrigger(_Strict):
    """An event on the case and conditions on its payload, all of which must hold.

    `when` keys are payload field paths (`category`, `injury.serious`); a key ending in
    `_contains` matches when the field's text (or any item of a list) contains the value,
    ignoring case (`reason_contains: companion`). A list value matches any of its items.
    """

    event: str
    when: dict[str, ConditionValue | tuple[ConditionValue, ...]] = Field(default_factory=dict)


class ClockWithin(_Strict):
    """How long the clock runs: exactly one of the four units.

    working_hours: working time of the pack's calendar; working_days: until the close of
    the Nth working day after the day it started; calendar_hours: elapsed time;
    calendar_days: until the end (local midnight) of the Nth day after the day it started.
    """

    working_hours: float | None = Field(default=None, gt=0)
    working_days: int | None = Field(default=None, ge=0, le=366)
    calendar_hours: float | None = Field(default=None, gt=0)
    calendar_days: int | None = Field(default=None, ge=0, le=3660)

    @model_validator(mode="after")
    def _exactly_one(self) -> ClockWithin:
        given = [unit for unit in WITHIN_UNITS if getattr(self, unit) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(WITHIN_UNITS)}")
        return self

    @property
    def unit(self) -> str:
        return next(unit for unit in WITHIN_UNITS if getattr(self, unit) is not None)

    @property
    def amount(self) -> float:
        value = getattr(self, self.unit)
        return float(value)

    @property
    def basis(self) -> Literal["working", "calendar"]:
        return "working" if self.unit.startswith("working") else "calendar"


class StatutoryClockSpec(_Strict):
    """One named deadline of a pack. `start_on` is one trigger or a list (the first that
    matches starts it, once per case, or once per conference with `per: conference`);
    `met_on` lists event types that meet it (staff can always record it as done)."""

    name: str = Field(pattern=_CLOCK_NAME)
    label: str = Field(min_length=1, max_length=200)
    citation: str = Field(max_length=500)
    start_on: tuple[ClockTrigger, ...] = Field(min_length=1)
    within: ClockWithin
    met_on: tuple[str, ...] = ()
    due_soon_share: float = Field(default=0.75, gt=0, lt=1)
    escalate: bool = True
    # "conference": one clock per conference (keyed by the payload's conference_id).
    per: Literal["case", "conference"] = "case"

    @field_validator("start_on", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, dict) else value


class JurisdictionPack(_Strict):
    """A jurisdiction's statutory clocks; `calendar` (a key of `calendars`) measures
    working time and gives the zone of calendar days (None: the case team's calendar)."""

    label: str = Field(min_length=1, max_length=200)
    calendar: str | None = None
    clocks: tuple[StatutoryClockSpec, ...] = ()


class PriorityRules(_Strict):
    # Terms anywhere in subject or description raising a case to that priority.
    urgent_terms: dict[Priority, tuple[str, ...]] = Field(default_factory=dict)
    # A channel's floor, e.g. a phone call logged by an agent is at least P3.
    channels: dict[Channel, Priority] = Field(default_factory=dict)
    reporter_urgent: Priority = "P2"
    serious_injury: Priority = "P1"


class TaskPolicy(_Strict):
    """Reminders and escalation of tasks on a case (task.due_soon, task.overdue).

    The reminder comes at `due_soon_share` of the working time between the request and
    the due instant, or `due_soon_hours_before` working hours before it: exactly one.
    An overdue task escalates to level `escalation_level` of the case team's ladder.
    """

    due_soon_share: float | None = Field(default=None, gt=0, lt=1)
    due_soon_hours_before: float | None = Field(default=None, gt=0)
    escalation_level: int = Field(default=1, ge=1)
    # The longest `due_in_working_hours` a task may ask for.
    max_due_in_working_hours: float = Field(default=2000, gt=0)

    @model_validator(mode="after")
    def _one_reminder_rule(self) -> TaskPolicy:
        if (self.due_soon_share is None) == (self.due_soon_hours_before is None):
            raise ValueError("give exactly one of due_soon_share and due_soon_hours_before")
        return self


ConsentGiver = Literal["worker", "treating_doctor", "psychologist"]


class ConferenceRuleOverrides(_Strict):
    """A jurisdiction's own conference rules: each key given replaces the general one."""

    notice_working_days: int | None = Field(default=None, ge=0, le=60)
    summary_within_working_days: int | None = Field(default=None, ge=0, le=60)
    minimum_participants: int | None = Field(default=None, ge=1, le=20)
    must_invite: tuple[ConferenceRole, ...] | None = None
    consent_gated_roles: tuple[ConferenceRole, ...] | None = None
    medical_consultation_consents: tuple[ConsentGiver, ...] | None = None


class ConferenceRules(_Strict):
    """The conference rules that apply to one case (general rules, a jurisdiction's
    overrides applied). Working days count in the owning team's calendar."""

    # The agenda goes out at least this many working days before the conference: the
    # earliest date is the Nth working day after the day the plan (or a new date) is made.
    notice_working_days: int = Field(default=5, ge=0, le=60)
    # The written summary is due by the end of the Nth working day after the conference.
    summary_within_working_days: int = Field(default=5, ge=0, le=60)
    minimum_participants: int = Field(default=3, ge=1, le=20)
    # Roles every conference must invite (exactly one worker is always required).
    must_invite: tuple[ConferenceRole, ...] = ("worker", "employer_representative", "case_manager")
    # Roles held back (awaiting consent) until the worker's practitioner_involvement
    # consent is recorded.
    consent_gated_roles: tuple[ConferenceRole, ...] = ("treating_doctor", "psychologist")
    # Who must each have granted the medical_consultation consent before a conference is
    # placed in the worker's medical consultation.
    medical_consultation_consents: tuple[ConsentGiver, ...] = ("worker", "treating_doctor")

    @field_validator("consent_gated_roles")
    @classmethod
    def _worker_not_gated(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "worker" in value:
            raise ValueError("the worker cannot wait for their own consent")
        return value


class ConferencePolicy(ConferenceRules):
    """Case conference rules (`conferences:`): configurable defaults, not legal advice.

    Agreed actions: a reminder (conference.action_due_soon) at `action_due_soon_share` of
    the working time between the summary and the action's due instant; an overdue action
    escalates to level `action_escalation_level` of the case team's ladder.

    Holding: `held_at` may be at most `hold_early_minutes` minutes before the scheduled
    start (a conference brought forward further is rescheduled first).
    """

    action_due_soon_share: float = Field(default=0.75, gt=0, lt=1)
    action_escalation_level: int = Field(default=1, ge=1)
    # A conference may be recorded as held at most this many minutes before its scheduled
    # start (meetings begin a little early); earlier, it must be rescheduled first.
    hold_early_minutes: int = Field(default=60, ge=0, le=720)
    # Jurisdiction key (e.g. "vic") -> the rules that differ there.
    by_jurisdiction: dict[str, ConferenceRuleOverrides] = Field(default_factory=dict)

    def rules_for(self, jurisdiction: str | None) -> ConferenceRules:
        """The rules for a case in `jurisdiction` (Policy.jurisdiction_for); the general
        ones when it is None or has no overrides."""
        general = ConferenceRules(
            **{name: getattr(self, name) for name in ConferenceRules.model_fields}
        )
        overrides = self.by_jurisdiction.get(jurisdiction or "")
        if overrides is None:
            return general
        changes = overrides.model_dump(exclude_none=True)
        return ConferenceRules(**{**general.model_dump(), **changes})


class AgreementPolicy(_Strict):
    """Written agreements in independent case management (`agreements:`).

    Each obligation (a term with an owner and a due date) is due by the close of its due
    day in the case team's working calendar; its reminder (agreement.obligation_due_soon)
    comes at `obligation_due_soon_share` of the working time between the agreement coming
    into force and that instant; an unmet obligation escalates to level
    `obligation_escalation_level` of the case team's ladder. Follow-up check-ins
    (case.follow_up_due) fall at the close of each `follow_up_after_working_days`th
    working day after the day the agreement came into force.
    """

    obligation_due_soon_share: float = Field(default=0.75, gt=0, lt=1)
    obligation_escalation_level: int = Field(default=1, ge=1)
    follow_up_after_working_days: tuple[int, ...] = Field(default=(10, 30), max_length=12)

    @field_validator("follow_up_after_working_days")
    @classmethod
    def _ascending_days(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if any(day < 1 for day in days):
            raise ValueError("each check-in comes at least 1 working day after")
        if list(days) != sorted(set(days)):
            raise ValueError("check-ins must be listed in ascending order, each once")
        return days


class Policy(_Strict):
    version: int
    default_category: str
    sla: SlaPolicy
    priority_rules: PriorityRules
    calendars: dict[str, CalendarSpec]
    escalation_ladders: dict[str, tuple[EscalationLevel, ...]]
    staff: tuple[StaffMember, ...] = ()
    # Where a case goes when every member of its team is conflicted out.
    conflict_fallback_team: str
    # A mandatory case conference must be held within this many working hours.
    conference_within_hours: float = Field(default=40, gt=0)
    # A reporter's message to a resolved or closed case within this many days (calendar
    # time since it was resolved or closed) reopens it; a later one opens a new case
    # linked to it. 0: every such message opens a new linked case.
    reopen_within_days: float = Field(default=14, ge=0)
    # Statutory clock packs by jurisdiction key (a team's or a claim's `jurisdiction`).
    jurisdictions: dict[str, JurisdictionPack] = Field(default_factory=dict)
    categories: dict[str, Category]
    teams: dict[str, Team]
    tasks: TaskPolicy = TaskPolicy(due_soon_share=0.75)
    # Case conference rules (services/routing/domain/conferences.py).
    conferences: ConferencePolicy = ConferencePolicy()
    # Processes cases are worked through (domain/process_policy.py, domain/processes.py).
    processes: dict[str, ProcessSpec] = Field(default_factory=dict)
    # Written agreements' obligations and follow-up check-ins (domain/agreements.py).
    agreements: AgreementPolicy = AgreementPolicy()
    # Retention of closed cases' personal data per category (domain/retention.py).
    retention: RetentionPolicy = RetentionPolicy()
    # Hash of the source text: recorded on every routing decision.
    source_hash: str = ""

    @cached_property
    def working_calendars(self) -> dict[str, WorkingCalendar]:
        return {name: spec.to_calendar() for name, spec in self.calendars.items()}

    def team_calendar(self, team: str) -> WorkingCalendar:
        return self.working_calendars[self.teams[team].calendar]

    def person(self, person_id: str) -> StaffMember | None:
        """A team member or staff entry by id."""
        for team in self.teams.values():
            for member in team.members:
                if member.id == person_id:
                    return member
        return next((s for s in self.staff if s.id == person_id), None)

    def jurisdiction_for(self, team: str, claim_jurisdiction: str | None = None) -> str | None:
        """The jurisdiction a case's rules come from: the claim's own (InjuryDetails
        .jurisdiction) when it names one, else its owning team's; None when neither does."""
        if claim_jurisdiction:
            return claim_jurisdiction
        owning = self.teams.get(team)
        return owning.jurisdiction if owning else None

    def process_for(self, category: str) -> str | None:
        """The process a new case of `category` starts in (the category's `process:`, else
        `query`); None when the policy declares no processes."""
        if not self.processes:
            return None
        chosen = self.categories[category].process if category in self.categories else None
        return chosen or DEFAULT_PROCESS

    def sla_hours(self, priority: Priority, clock: str) -> float:
        target = self.sla.targets[priority]
        return target.first_response_hours if clock == "first_response" else target.resolution_hours


def reference_problems(policy: Policy) -> list[tuple[Path_, str]]:
    """Cross-references a schema cannot check: each problem with the key path it concerns."""
    problems: list[tuple[Path_, str]] = []
    if policy.default_category not in policy.categories:
        problems.append((("default_category",), f"{policy.default_category!r} is not a category"))
    missing = {"P1", "P2", "P3", "P4"} - set(policy.sla.targets)
    if missing:
        problems.append((("sla", "targets"), f"SLA targets missing for {sorted(missing)}"))
    if policy.conflict_fallback_team not in policy.teams:
        problems.append(
            (("conflict_fallback_team",), f"unknown team {policy.conflict_fallback_team!r}")
        )
    staff_ids = {s.id for s in policy.staff}
    for name, category in policy.categories.items():
        if category.team not in policy.teams:
            problems.append(
                (
                    ("categories", name, "team"),
                    f"category {name!r} names unknown team {category.team!r}",
                )
            )
            continue
        skills = {s for m in policy.teams[category.team].members for s in m.skills}
        lacking = set(category.required_skills) - skills
        if lacking:
            problems.append(
                (
                    ("categories", name, "required_skills"),
                    f"no member of team {category.team!r} has skills {sorted(lacking)}",
                )
            )
    for name, team in policy.teams.items():
        if team.calendar not in policy.calendars:
            problems.append((("teams", name, "calendar"), f"unknown calendar {team.calendar!r}"))
        if team.escalation not in policy.escalation_ladders:
            problems.append(
                (("teams", name, "escalation"), f"unknown escalation ladder {team.escalation!r}")
            )
        if team.lead not in {m.id for m in team.members} | staff_ids:
            problems.append(
                (("teams", name, "lead"), f"lead {team.lead!r} is not a member or staff")
            )
    for name, ladder in policy.escalation_ladders.items():
        if not ladder:
            problems.append((("escalation_ladders", name), "a ladder needs at least one level"))
        previous = -1.0
        for index, level in enumerate(ladder):
            if level.to != "team_lead" and level.to not in staff_ids:
                problems.append(
                    (
                        ("escalation_ladders", name, index, "to"),
                        f"{level.to!r} is neither team_lead nor a staff id",
                    )
                )
            if level.after_breach_hours < previous:
                problems.append(
                    (
                        ("escalation_ladders", name, index, "after_breach_hours"),
                        "levels must not come earlier than the level before",
                    )
                )
            previous = level.after_breach_hours
        if ladder and policy.tasks.escalation_level > len(ladder):
            problems.append(
                (
                    ("tasks", "escalation_level"),
                    f"ladder {name!r} has only {len(ladder)} levels",
                )
            )
        if ladder and policy.agreements.obligation_escalation_level > len(ladder):
            problems.append(
                (
                    ("agreements", "obligation_escalation_level"),
                    f"ladder {name!r} has only {len(ladder)} levels",
                )
            )
        if ladder and policy.conferences.action_escalation_level > len(ladder):
            problems.append(
                (
                    ("conferences", "action_escalation_level"),
                    f"ladder {name!r} has only {len(ladder)} levels",
                )
            )
    for jurisdiction in policy.conferences.by_jurisdiction:
        if jurisdiction not in policy.jurisdictions:
            problems.append(
                (
                    ("conferences", "by_jurisdiction", jurisdiction),
                    f"unknown jurisdiction {jurisdiction!r} (not a key of `jurisdictions`)",
                )
            )
        # An override may break a rule of the whole (e.g. make the worker consent-gated).
        try:
            policy.conferences.rules_for(jurisdiction)
        except ValidationError as exc:
            problems.append(
                (
                    ("conferences", "by_jurisdiction", jurisdiction),
                    "; ".join(str(e["msg"]) for e in exc.errors()),
                )
            )
    problems.extend(jurisdiction_problems(policy))
    problems.extend(process_problems(policy))
    problems.extend(
        (("retention", "categories", name), f"unknown category {name!r}")
        for name in policy.retention.categories
        if name not in policy.categories
    )
    return problems


def jurisdiction_problems(policy: Policy) -> list[tuple[Path_, str]]:
    """Statutory clock packs: a team's jurisdiction is a pack, a pack's calendar exists,
    triggers and `met_on` name known event types and `when` keys fields of their payload."""
    from shared.events import EVENT_TYPES  # the contract, read only for names

    problems: list[tuple[Path_, str]] = []
    for name, team in policy.teams.items():
        if team.jurisdiction is not None and team.jurisdiction not in policy.jurisdictions:
            problems.append(
                (
                    ("teams", name, "jurisdiction"),
                    f"unknown jurisdiction {team.jurisdiction!r} (not a key of jurisdictions)",
                )
            )
    for key, pack in policy.jurisdictions.items():
        at: Path_ = ("jurisdictions", key)
        if key == CONFERENCE_RULES_PACK:
            problems.append((at, f"{key!r} is the built-in pack of the conference rules"))
        if pack.calendar is not None and pack.calendar not in policy.calendars:
            problems.append(((*at, "calendar"), f"unknown calendar {pack.calendar!r}"))
        seen: set[str] = set()
        for index, clock in enumerate(pack.clocks):
            where: Path_ = (*at, "clocks", index)
            if clock.name in seen:
                problems.append(((*where, "name"), f"clock {clock.name!r} named twice"))
            seen.add(clock.name)
            if clock.within.unit.endswith("days") and clock.within.amount < 1:
                problems.append(((*where, "within"), "a pack's clock runs at least one day"))
            for t_index, trigger in enumerate(clock.start_on):
                payload = EVENT_TYPES.get(trigger.event)
                if payload is None:
                    problems.append(
                        (
                            (*where, "start_on", t_index, "event"),
                            f"unknown event type {trigger.event!r}",
                        )
                    )
                    continue
                if clock.per == "conference" and "conference_id" not in payload.model_fields:
                    problems.append(
                        (
                            (*where, "start_on", t_index, "event"),
                            f"a per-conference clock needs an event with a conference_id;"
                            f" {trigger.event} has none",
                        )
                    )
                for field in trigger.when:
                    top = field.removesuffix("_contains").split(".")[0]
                    if top not in payload.model_fields:
                        problems.append(
                            (
                                (*where, "start_on", t_index, "when", field),
                                f"{trigger.event} has no field {top!r}",
                            )
                        )
            for m_index, event_type in enumerate(clock.met_on):
                if event_type not in EVENT_TYPES:
                    problems.append(
                        ((*where, "met_on", m_index), f"unknown event type {event_type!r}")
                    )
    return problems


class PolicyError(ValueError):
    pass


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate policy text; errors name the file, the key path and its line."""
    try:
        raw = yaml.safe_load(text)
        lines = key_lines(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: top level must be a mapping")
    raw["source_hash"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(source, lines, tuple(err["loc"]), err["msg"]) for err in exc.errors()]
        raise PolicyError("\n".join(problems)) from exc
    references = reference_problems(policy)
    if references:
        raise PolicyError("\n".join(_describe(source, lines, p, m) for p, m in references))
    return policy


def load_policy(path: str | Path | None = None) -> Policy:
    file = Path(path) if path else DEFAULT_POLICY_FILE
    return parse_policy(file.read_text(encoding="utf-8"), str(file))


def key_lines(node: yaml.Node | None, path: Path_ = ()) -> dict[Path_, int]:
    """1-based line of every key path in a composed YAML document."""
    found: dict[Path_, int] = {}
    if node is None:
        return found
    found[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            found.update(key_lines(value, child))
            found[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.update(key_lines(item, (*path, index)))
    return found


def _describe(source: str, lines: dict[Path_, int], loc: Path_, message: str) -> str:
    # pydantic adds the tag of a union or literal member to loc; the nearest known prefix
    # is the line that needs the fix.
    probe = tuple(loc)
    while probe and probe not in lines:
        probe = probe[:-1]
    line = lines.get(probe, 1)
    key = ".".join(str(p) for p in loc) or "<root>"
    return f"{source}:{line}: {key}: {message}"


def _parse_interval(text: str) -> tuple[int, int]:
    match = _INTERVAL.match(text)
    if not match:
        raise ValueError(f"interval {text!r} is not HH:MM-HH:MM")
    oh, om, ch, cm = (int(g) for g in match.groups())
    opens, closes = oh * 60 + om, ch * 60 + cm
    if not (0 <= opens < 24 * 60 and 0 < closes <= 24 * 60 and om < 60 and cm < 60):
        raise ValueError(f"interval {text!r} is not within one day")
    if closes <= opens:
        raise ValueError(f"interval {text!r} closes before it opens")
    return opens, closes


def _minutes_to_time(minutes: int) -> time:
    if minutes == 24 * 60:
        return time.max
    return time(minutes // 60, minutes % 60)


def hours(value: float) -> timedelta:
    return timedelta(hours=value)
