"""Processes: the rules routing applies to a case's stage, its process roles and the
approval of an investigation's outcome. No I/O.

- Moves (`plan_move`): forward one stage at a time, skipping only `optional` stages, into
  a stage whose requirements hold; back to any earlier stage with a reason; the final
  stage (the last) from anywhere, with one of the process's endings whose requirements
  hold, and a reason. Nothing moves once the process has ended.
- `enter_on` (`automatic_entry`): a stage naming an event is entered when the event
  arrives, if that is a forward move the rules allow.
- Requirements are judged over a snapshot of the facts recorded on the case
  (`ProcessFacts`, folded from routing.process_facts by `facts_from`).
- Stage clocks (`stage_clock`): the target is the close of the Nth working day (N rounded
  up) after the day the stage was entered, in the owning team's calendar; the reminder
  comes at the process's `stage_due_soon_share` of the working time to it.
- Role eligibility (`role_problem`) and outcome approval (`approval_problem`).

Every refusal is a sentence staff read (`ProcessRefused`), naming the rule; none names
who the respondents or the parties are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from services.routing.domain.calendar import WorkingCalendar
from services.routing.domain.conferences import reminder_at
from services.routing.domain.process_policy import TEAM_LEAD, ProcessSpec, StageSpec
from services.routing.domain.statutory_clocks import close_of_working_day

Direction = Literal["start", "forward", "back", "final"]
OUTCOME_STAGE = "outcome"  # where a decided outcome is approved
PARTY_ROLES = ("employee", "employer_representative")

# Kinds of routing.process_facts rows (key: what makes one fact replace another).
ALLEGATION = "allegation"  # key allegation_id; respondent_employee_id
STATEMENT = "statement"  # key statement_id; given_by_role, given_by_employee_id
FINDING = "finding"  # key allegation_id; finding
APPEAL = "appeal"  # key appeal_id; outcome_id
APPEAL_DECISION = "appeal_decision"  # key appeal_id; decision
ASSESSMENT = "assessment"  # key party role; employee_id
GROUND_RULES = "ground_rules"  # key ground_rules_id; party employee ids
GROUND_RULES_ACCEPTED = "ground_rules_accepted"  # key "<ground_rules_id>:<role>"
MEETING = "meeting"  # key meeting_id
AGREEMENT_IN_FORCE = "agreement_in_force"  # key agreement_id
REPORTER = "reporter"  # key "reporter"; employee_id (the complainant)

REQUIREMENT_TEXT: dict[str, str] = {
    "investigator_assigned": "an investigator assigned",
    "case_manager_assigned": "a case manager assigned",
    "appeal_hearer_assigned": "an appeal hearer assigned",
    "allegation_recorded": "at least one allegation recorded",
    "complainant_heard": "a statement from the complainant",
    "every_respondent_heard": "a statement from every respondent the allegations name",
    "every_allegation_found": "a finding on every allegation",
    "outcome_approved": "the outcome approved",
    "appeal_lodged": "an appeal lodged",
    "appeal_settled": "the appeal window closed unappealed, or every appeal decided",
    "every_party_assessed": "an initial assessment of each party",
    "ground_rules_accepted_by_every_party": "the latest ground rules accepted by each party",
    "meeting_held": "at least one facilitated discussion held",
    "agreement_in_force": "a written agreement in force",
}


class ProcessRefused(ValueError):
    """The request cannot be applied; the message is the reason the requester reads."""


# --- the facts snapshot ------------------------------------------------------------------


@dataclass(frozen=True)
class FactRecord:
    """One row of routing.process_facts: a later fact of the same kind and key replaces
    the earlier one."""

    kind: str
    key: str
    data: Mapping[str, Any]
    recorded_at: datetime


@dataclass(frozen=True)
class OutcomeRecord:
    """A decided outcome as routing keeps it (routing.process_outcomes)."""

    outcome_id: str
    decided_by: str
    decided_at: datetime
    approved_by: str | None = None
    approved_at: datetime | None = None
    appeal_window_ends_at: datetime | None = None
    window_closed_at: datetime | None = None


@dataclass(frozen=True)
class ProcessFacts:
    """What routing knows of a case's process, to judge requirements and roles.

    `roles`: current holder of each process role; `allegations`: allegation id ->
    respondent employee id; `statements`: (given_by_role, given_by_employee_id);
    `findings`: allegation ids with a finding; `appeals`: appeal id -> decided;
    `assessed`: party roles assessed; `ground_rules_accepted`: party roles that accepted
    the latest proposal; `parties`: employee ids of the mediation parties."""

    roles: Mapping[str, str] = field(default_factory=dict)
    allegations: Mapping[str, str] = field(default_factory=dict)
    statements: tuple[tuple[str, str | None], ...] = ()
    findings: frozenset[str] = frozenset()
    outcomes: tuple[OutcomeRecord, ...] = ()
    appeals: Mapping[str, bool] = field(default_factory=dict)
    assessed: frozenset[str] = frozenset()
    ground_rules_accepted: frozenset[str] = frozenset()
    meetings_held: int = 0
    agreements_in_force: int = 0
    complainant_id: str | None = None
    parties: frozenset[str] = frozenset()

    @property
    def respondent_ids(self) -> frozenset[str]:
        return frozenset(self.allegations.values())

    @property
    def latest_outcome(self) -> OutcomeRecord | None:
        return max(self.outcomes, key=lambda o: o.decided_at, default=None)


def facts_from(
    records: Iterable[FactRecord],
    *,
    roles: Mapping[str, str] | None = None,
    outcomes: Sequence[OutcomeRecord] = (),
) -> ProcessFacts:
    """Fold the case's fact rows (any order) into a snapshot."""
    latest: dict[tuple[str, str], FactRecord] = {}
    for record in sorted(records, key=lambda r: r.recorded_at):
        latest[(record.kind, record.key)] = record
    by_kind: dict[str, list[FactRecord]] = {}
    for record in latest.values():
        by_kind.setdefault(record.kind, []).append(record)

    def of(kind: str) -> list[FactRecord]:
        return by_kind.get(kind, [])

    proposals = sorted(of(GROUND_RULES), key=lambda r: r.recorded_at)
    current = proposals[-1] if proposals else None
    accepted = frozenset(
        str(r.data["party_role"])
        for r in of(GROUND_RULES_ACCEPTED)
        if current is not None and str(r.data["ground_rules_id"]) == current.key
    )
    parties = {str(r.data["employee_id"]) for r in of(ASSESSMENT)}
    for proposal in proposals:
        parties.update(str(e) for e in proposal.data.get("party_employee_ids", ()))
    decided = {r.key for r in of(APPEAL_DECISION)}
    reporter = of(REPORTER)
    return ProcessFacts(
        roles=dict(roles or {}),
        allegations={r.key: str(r.data["respondent_employee_id"]) for r in of(ALLEGATION)},
        statements=tuple(
            (str(r.data["given_by_role"]), r.data.get("given_by_employee_id"))
            for r in of(STATEMENT)
        ),
        findings=frozenset(r.key for r in of(FINDING)),
        outcomes=tuple(outcomes),
        appeals={r.key: r.key in decided for r in of(APPEAL)},
        assessed=frozenset(r.key for r in of(ASSESSMENT)),
        ground_rules_accepted=accepted,
        meetings_held=len(of(MEETING)),
        agreements_in_force=len(of(AGREEMENT_IN_FORCE)),
        complainant_id=reporter[0].data.get("employee_id") if reporter else None,
        parties=frozenset(parties),
    )


def holds(requirement: str, facts: ProcessFacts) -> bool:
    """Whether one requirement of the vocabulary holds over `facts`."""
    allegations = facts.allegations
    if requirement == "investigator_assigned":
        return "investigator" in facts.roles
    if requirement == "case_manager_assigned":
        return "case_manager" in facts.roles
    if requirement == "appeal_hearer_assigned":
        return "appeal_hearer" in facts.roles
    if requirement == "allegation_recorded":
        return bool(allegations)
    if requirement == "complainant_heard":
        return any(role == "complainant" for role, _ in facts.statements)
    if requirement == "every_respondent_heard":
        heard = {who for role, who in facts.statements if role == "respondent"}
        return bool(allegations) and facts.respondent_ids <= heard
    if requirement == "every_allegation_found":
        return bool(allegations) and set(allegations) <= facts.findings
    if requirement == "outcome_approved":
        return any(o.approved_at is not None for o in facts.outcomes)
    if requirement == "appeal_lodged":
        return bool(facts.appeals)
    if requirement == "appeal_settled":
        if facts.appeals:
            return all(facts.appeals.values())
        return any(o.window_closed_at is not None for o in facts.outcomes)
    if requirement == "every_party_assessed":
        return set(PARTY_ROLES) <= facts.assessed
    if requirement == "ground_rules_accepted_by_every_party":
        return set(PARTY_ROLES) <= facts.ground_rules_accepted
    if requirement == "meeting_held":
        return facts.meetings_held > 0
    if requirement == "agreement_in_force":
        return facts.agreements_in_force > 0
    raise ValueError(f"unknown requirement {requirement!r}")  # the policy refuses these


def unmet(requirements: Iterable[str], facts: ProcessFacts) -> list[str]:
    """The requirements that do not hold, as staff read them."""
    return [REQUIREMENT_TEXT[r] for r in requirements if not holds(r, facts)]


# --- moves -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageMove:
    """An allowed move: into `stage` from `previous`, with the ending (final) and reason."""

    stage: StageSpec
    previous: str
    direction: Direction
    ending: str | None = None
    reason: str | None = None


def _stage_names(process: ProcessSpec) -> str:
    return ", ".join(s.name for s in process.stages)


def plan_move(
    process: ProcessSpec,
    *,
    current: str,
    ended: bool,
    target: str,
    ending: str | None,
    reason: str | None,
    facts: ProcessFacts,
) -> StageMove:
    """The move staff asked for, or ProcessRefused naming the rule it breaks."""
    reason = (reason or "").strip() or None
    if ended:
        raise ProcessRefused(
            f"the {process.label} process has ended: its stage cannot change any more"
        )
    stage = process.stage(target)
    if stage is None:
        raise ProcessRefused(
            f"the {process.label} process has no stage {target!r}; its stages are"
            f" {_stage_names(process)}"
        )
    if target == current:
        raise ProcessRefused(f"the case is already in stage {stage.label}")
    here, there = process.index(current), process.index(target)
    if stage is process.final:
        return StageMove(
            stage, current, "final", _check_ending(process, ending, reason, facts), reason
        )
    if ending is not None:
        raise ProcessRefused(
            f"an ending is given only when entering the final stage {process.final.label}"
        )
    if there < here:
        if reason is None:
            raise ProcessRefused(f"moving back to stage {stage.label} needs a reason")
        return StageMove(stage, current, "back", None, reason)
    _check_forward(process, here, there, facts)
    return StageMove(stage, current, "forward", None, reason)


def _check_ending(
    process: ProcessSpec, ending: str | None, reason: str | None, facts: ProcessFacts
) -> str:
    final = process.final
    endings = ", ".join(process.endings)
    if ending is None:
        raise ProcessRefused(f"entering the final stage {final.label} needs an ending: {endings}")
    if ending not in process.endings:
        raise ProcessRefused(
            f"the {process.label} process has no ending {ending!r}; its endings are {endings}"
        )
    if reason is None:
        raise ProcessRefused(f"entering the final stage {final.label} needs a reason")
    missing = unmet(process.endings[ending], facts)
    if missing:
        raise ProcessRefused(f"the ending {ending} needs {'; '.join(missing)}")
    return ending


def _check_forward(process: ProcessSpec, here: int, there: int, facts: ProcessFacts) -> None:
    stage = process.stages[there]
    skipped = process.stages[here + 1 : there]
    required = [s for s in skipped if not s.optional]
    if required:
        raise ProcessRefused(
            f"stages move forward one at a time: stage {required[0].label} comes before"
            f" {stage.label} (only optional stages may be skipped)"
        )
    missing = unmet(stage.requires, facts)
    if missing:
        raise ProcessRefused(f"stage {stage.label} needs {'; '.join(missing)}")


def automatic_entry(
    process: ProcessSpec, *, current: str, ended: bool, event_type: str, facts: ProcessFacts
) -> StageSpec | None:
    """The stage `event_type` enters by itself (its `enter_on`), when that is a forward
    move the rules allow from `current`; None otherwise (the event changes no stage)."""
    if ended or process.stage(current) is None:
        return None
    here = process.index(current)
    for there, stage in enumerate(process.stages):
        if there <= here or event_type not in stage.enter_on or stage is process.final:
            continue
        try:
            _check_forward(process, here, there, facts)
        except ProcessRefused:
            continue
        return stage
    return None


# --- stage clocks ------------------------------------------------------------------------


@dataclass(frozen=True)
class StageClock:
    """A stage's target and reminder instants (UTC); None: the stage has no clock."""

    target_at: datetime | None = None
    due_soon_at: datetime | None = None


def stage_clock(
    process: ProcessSpec, stage: StageSpec, calendar: WorkingCalendar, entered_at: datetime
) -> StageClock:
    """The clock of `stage` entered at `entered_at`, in the owning team's `calendar`."""
    if stage.target_working_days is None:
        return StageClock()
    days = math.ceil(stage.target_working_days)
    target = close_of_working_day(calendar, entered_at, days)
    reminder = reminder_at(calendar, process.stage_due_soon_share, start=entered_at, due=target)
    return StageClock(target, reminder)


def appeal_window_ends_at(calendar: WorkingCalendar, approved_at: datetime, days: int) -> datetime:
    """The close of the `days`th working day after the day of the approval (0: the close
    of that day's work) in the owning team's calendar."""
    return close_of_working_day(calendar, approved_at, days)


# --- process roles -----------------------------------------------------------------------


@dataclass(frozen=True)
class RoleCheck:
    """What `role_problem` needs to know about the case and the person.

    `respondent_conflicted`: the respondents (the case's and the allegations') and their
    management chains; `party_conflicted`: the parties (the reporter and the mediation
    parties) and their chains; `declared`: staff who declared a conflict on the case;
    `ever_held`: role -> everyone who held it on the case (released or not)."""

    process_name: str
    process: ProcessSpec
    known: bool
    inactive: bool = False
    respondent_conflicted: frozenset[str] = frozenset()
    party_conflicted: frozenset[str] = frozenset()
    declared: frozenset[str] = frozenset()
    ever_held: Mapping[str, frozenset[str]] = field(default_factory=dict)
    current_holder: str | None = None
    complainant_id: str | None = None
    outcome_people: frozenset[str] = frozenset()  # deciders and approvers of outcomes


def role_problem(role: str, staff_id: str, check: RoleCheck) -> str | None:
    """Why `staff_id` may not hold `role` on the case (None: they may)."""
    process = check.process
    if role not in process.roles:
        declared = ", ".join(process.roles) or "none"
        return (
            f"the {process.label} process has no {role.replace('_', ' ')} role"
            f" (its roles: {declared})"
        )
    if not check.known:
        return f"{staff_id!r} is not HR staff in the routing policy"
    if check.inactive:
        return f"{staff_id} is marked inactive in the directory"
    if staff_id == check.current_holder:
        return f"{staff_id} already holds the {role.replace('_', ' ')} role on this case"
    if staff_id in check.declared:
        return f"{staff_id} declared a conflict of interest on this case"
    if staff_id in check.respondent_conflicted:
        return (
            f"conflict of interest: {staff_id} is a respondent or in a respondent's"
            " management chain"
        )
    if staff_id == check.complainant_id:
        return f"conflict of interest: {staff_id} is the complainant"
    if role == "case_manager" and staff_id in check.party_conflicted:
        return (
            f"a case manager must be impartial: {staff_id} is a party or in a party's"
            " management chain"
        )
    if role == "appeal_hearer":
        involved = (
            check.ever_held.get("investigator", frozenset())
            | check.ever_held.get("case_manager", frozenset())
            | check.outcome_people
        )
        if staff_id in involved:
            return (
                f"an appeal is heard by someone not yet involved: {staff_id} investigated,"
                " managed, decided or approved the outcome on this case"
            )
    return None


# --- outcome approval --------------------------------------------------------------------


def approvers(process: ProcessSpec, team_lead: str) -> tuple[str, ...]:
    """The staff ids the process lets approve an outcome (`team_lead` resolved)."""
    return tuple(dict.fromkeys(team_lead if a == TEAM_LEAD else a for a in process.approval_by))


def approval_problem(
    process: ProcessSpec,
    *,
    outcome_id: str,
    approver_id: str,
    stage: str,
    facts: ProcessFacts,
    team_lead: str,
    investigators: frozenset[str],
    conflicted: frozenset[str],
) -> str | None:
    """Why `approver_id` may not approve outcome `outcome_id` now (None: they may).

    `investigators`: everyone who held the investigator role on the case; `conflicted`:
    respondents, their management chains and staff who declared a conflict."""
    allowed = approvers(process, team_lead)
    if not allowed:
        return f"the {process.label} process has no outcome approval"
    outcome = next((o for o in facts.outcomes if o.outcome_id == outcome_id), None)
    if outcome is None:
        return "no such decided outcome on this case"
    latest = facts.latest_outcome
    if latest is not None and latest.outcome_id != outcome_id:
        return "a later outcome was decided on this case: approve that one"
    if outcome.approved_at is not None:
        return "the outcome is already approved"
    if stage != OUTCOME_STAGE:
        return f"an outcome is approved in stage {OUTCOME_STAGE}, not {stage}"
    missing = unmet(("every_allegation_found",), facts)
    if missing:
        return f"an outcome is approved only with {missing[0]}"
    if approver_id not in allowed:
        return (
            f"{approver_id} may not approve outcomes in the {process.label} process: the"
            f" policy names {', '.join(allowed)}"
        )
    if approver_id == outcome.decided_by:
        return "a second person approves the outcome: the decider cannot approve it"
    if approver_id in investigators:
        return "the investigator cannot approve the outcome of their own investigation"
    if approver_id in conflicted:
        return (
            f"conflict of interest: {approver_id} is a respondent, in a respondent's"
            " management chain or declared a conflict on this case"
        )
    return None
