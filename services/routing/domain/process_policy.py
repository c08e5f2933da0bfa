"""The policy's `processes:` section: the processes a case is worked through.

A process is an ordered list of stages (the last one is final: it is entered with one of
the process's `endings` and a reason), the process roles it uses, who may approve an
outcome and how long the appeal window runs. Stage and ending requirements are names from
a fixed vocabulary routing knows how to judge from the facts recorded on a case
(`REQUIREMENTS`); an unknown name, role or `enter_on` event is refused when the policy
loads, with the file, the key and the line (domain/policy.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.events import ProcessRole

if TYPE_CHECKING:
    from services.routing.domain.policy import Path_, Policy

Requirement = Literal[
    "investigator_assigned",
    "case_manager_assigned",
    "appeal_hearer_assigned",
    "allegation_recorded",
    "complainant_heard",
    "every_respondent_heard",
    "every_allegation_found",
    "outcome_approved",
    "appeal_lodged",
    "appeal_settled",
    "every_party_assessed",
    "ground_rules_accepted_by_every_party",
    "meeting_held",
    "agreement_in_force",
]
REQUIREMENTS: tuple[str, ...] = get_args(Requirement)
# A requirement about a role holder needs the process to declare that role.
ROLE_REQUIREMENTS: dict[str, ProcessRole] = {
    "investigator_assigned": "investigator",
    "case_manager_assigned": "case_manager",
    "appeal_hearer_assigned": "appeal_hearer",
}
# The events a stage may be entered on automatically (`enter_on`): those routing sees
# for a case in a process, as facts it consumes or decisions it makes.
ENTER_ON_EVENTS: tuple[str, ...] = (
    "investigation.allegation_recorded",
    "investigation.statement_recorded",
    "investigation.finding_recorded",
    "case.outcome_decided",
    "case.outcome_approved",
    "case.appeal_lodged",
    "case.appeal_decided",
    "mediation.assessment_recorded",
    "mediation.ground_rules_proposed",
    "mediation.ground_rules_accepted",
    "mediation.meeting_held",
    "agreement.in_force",
)
# Who may approve an outcome besides named staff: the lead of the case's team.
TEAM_LEAD = "team_lead"
# The process a category gets when it names none.
DEFAULT_PROCESS = "query"
_NAME = r"^[a-z][a-z0-9_]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StageSpec(_Strict):
    """One stage. `target_working_days`: the stage's target, counted to the close of the
    Nth working day (rounded up) after the day it was entered, in the owning team's
    calendar (None: no clock). `requires`: what must hold to enter it forward.
    `enter_on`: events on which it is entered by itself (when the move is allowed).
    `optional`: a forward move may skip it."""

    name: str = Field(pattern=_NAME)
    label: str = Field(min_length=1, max_length=200)
    target_working_days: float | None = Field(default=None, gt=0, le=366)
    requires: tuple[Requirement, ...] = ()
    enter_on: tuple[str, ...] = ()
    optional: bool = False


class ProcessSpec(_Strict):
    """A process as the policy declares it (README "Routing's rules for processes")."""

    label: str = Field(min_length=1, max_length=200)
    roles: tuple[ProcessRole, ...] = ()
    # Staff ids, or `team_lead`: who may approve a decided outcome.
    approval_by: tuple[str, ...] = ()
    # The appeal window closes at the end of this many working days after the approval.
    appeal_window_working_days: int = Field(default=10, ge=0, le=366)
    # Whether an interviewee may bring a companion (intake shows it on the invitation).
    companion_allowed: bool = True
    # The stage reminder comes at this share of the working time to the stage's target.
    stage_due_soon_share: float = Field(default=0.75, gt=0, lt=1)
    # An overdue stage escalates to this level of the case team's ladder.
    stage_escalation_level: int = Field(default=1, ge=1)
    stages: tuple[StageSpec, ...] = Field(min_length=2)
    # ending -> the requirements that must hold to end the process with it.
    endings: dict[str, tuple[Requirement, ...]] = Field(min_length=1)

    @field_validator("endings")
    @classmethod
    def _ending_names(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for name in value:
            if not re.match(_NAME, name):
                raise ValueError(f"ending {name!r} is not a lower-case name (a-z, 0-9, _)")
        return value

    @property
    def final(self) -> StageSpec:
        return self.stages[-1]

    def stage(self, name: str) -> StageSpec | None:
        return next((s for s in self.stages if s.name == name), None)

    def index(self, name: str) -> int:
        return next(i for i, s in enumerate(self.stages) if s.name == name)


def process_problems(policy: Policy) -> list[tuple[Path_, str]]:
    """Cross-references of `processes:` and the categories' `process:`: stage names
    unique, the final stage plain, requirements that need a role used only where the
    process declares it, approvers known, and every category's process declared."""
    problems: list[tuple[Path_, str]] = []
    for key, process in policy.processes.items():
        at: Path_ = ("processes", key)
        if not _is_name(key):
            problems.append((at, f"process {key!r} is not a lower-case name (a-z, 0-9, _)"))
        seen: set[str] = set()
        for index, stage in enumerate(process.stages):
            where: Path_ = (*at, "stages", index)
            if stage.name in seen:
                problems.append(((*where, "name"), f"stage {stage.name!r} named twice"))
            seen.add(stage.name)
            problems.extend(_role_problems(process, stage.requires, (*where, "requires")))
            for e_index, event_type in enumerate(stage.enter_on):
                if event_type not in ENTER_ON_EVENTS:
                    problems.append(
                        (
                            (*where, "enter_on", e_index),
                            f"unknown enter_on event {event_type!r}; routing enters a stage"
                            f" on one of {', '.join(ENTER_ON_EVENTS)}",
                        )
                    )
        first, final = process.stages[0], process.final
        if first.optional or first.requires or first.enter_on:
            problems.append(
                (
                    (*at, "stages", 0),
                    f"the first stage {first.name!r} is where the process starts: it cannot be"
                    " optional, have requirements or be entered on an event",
                )
            )
        last: Path_ = (*at, "stages", len(process.stages) - 1)
        if final.optional or final.requires or final.enter_on or final.target_working_days:
            problems.append(
                (
                    last,
                    f"the final stage {final.name!r} is entered with an ending: give the"
                    " requirements on `endings`, not on the stage, and no target or enter_on",
                )
            )
        for ending, requires in process.endings.items():
            problems.extend(_role_problems(process, requires, (*at, "endings", ending)))
        for a_index, approver in enumerate(process.approval_by):
            if approver != TEAM_LEAD and policy.person(approver) is None:
                problems.append(
                    (
                        (*at, "approval_by", a_index),
                        f"{approver!r} is neither {TEAM_LEAD} nor HR staff (a team member or"
                        " `staff`)",
                    )
                )
        for ladder_name, ladder in policy.escalation_ladders.items():
            if ladder and process.stage_escalation_level > len(ladder):
                problems.append(
                    (
                        (*at, "stage_escalation_level"),
                        f"ladder {ladder_name!r} has only {len(ladder)} levels",
                    )
                )
    if policy.processes:
        for name, category in policy.categories.items():
            wanted = category.process or DEFAULT_PROCESS
            if wanted not in policy.processes:
                where_c: Path_ = ("categories", name, "process")
                problems.append(
                    (
                        where_c if category.process else ("categories", name),
                        f"category {name!r} names unknown process {wanted!r}"
                        + ("" if category.process else " (the default when `process:` is omitted)"),
                    )
                )
    else:
        for name, category in policy.categories.items():
            if category.process is not None:
                problems.append(
                    (
                        ("categories", name, "process"),
                        f"category {name!r} names process {category.process!r} but the policy"
                        " declares no `processes:`",
                    )
                )
    return problems


def _role_problems(
    process: ProcessSpec, requires: tuple[str, ...], at: Path_
) -> list[tuple[Path_, str]]:
    problems: list[tuple[Path_, str]] = []
    for index, requirement in enumerate(requires):
        role = ROLE_REQUIREMENTS.get(requirement)
        if role is not None and role not in process.roles:
            problems.append(
                (
                    (*at, index),
                    f"{requirement} needs the process to declare role {role!r} in `roles`",
                )
            )
    return problems


def _is_name(text: str) -> bool:
    return re.match(_NAME, text) is not None
