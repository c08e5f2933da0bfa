"""The process a case is worked through, as staff ask to change it and as intake shows it.
No I/O.

Routing owns the process (investigation, case_management, query, ... as the policy
declares them), the stage, the process roles and the stage clock; staff ask at intake's
doors (case.process_change_requested, case.stage_change_requested,
case.process_role_assignment_requested) and declare conflicts (case.conflict_declared).
Intake refuses early (409) only what its projection already shows cannot apply: a stage
the case's process does not have, an ending it does not have (or one given with another
stage than the final one; the final stage without an ending or a reason), a process that
has ended.
Everything else (requirements, the order of stages, who may hold a role) routing judges,
answering with its decision or case.request_refused naming the rule.

The projection's row (adapters/process_sql.case_process) has: process, label, stages
([{name, label, target_working_days}] in order), endings ([name]), stage, stage_label,
stage_entered_at, target_at, due_soon_at, stage_state (on_track | due_soon | overdue |
ended), ending, ending_reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from services.intake.domain.case import STAFF_ROLES, FreeText, IntakeInput
from shared.auth import Role
from shared.events import ProcessRole

# Who works a case's process at intake's doors: the staff roles (role holders among them
# are let in by case_access, the rest as for any staff action on the case).
PROCESS_ROLES: tuple[Role, ...] = STAFF_ROLES
# The staff roles a process names (routing checks the process declares the role).
PROCESS_ROLE_NAMES: tuple[ProcessRole, ...] = ("investigator", "case_manager", "appeal_hearer")
ROLE_LABELS: dict[str, str] = {
    "investigator": "Investigator",
    "case_manager": "Case manager",
    "appeal_hearer": "Appeal hearer",
}
# The requests routing may refuse about the process (their last refusal is shown).
PROCESS_REQUEST_TYPES: tuple[str, ...] = (
    "case.process_change_requested",
    "case.stage_change_requested",
    "case.process_role_assignment_requested",
)
REQUEST_LABELS: dict[str, str] = {
    "case.process_change_requested": "process change",
    "case.stage_change_requested": "stage change",
    "case.process_role_assignment_requested": "process role assignment",
    "case.conflict_declared": "conflict declaration",
}
# The processes the shipped policy declares, offered in the switch form until routing has
# put some case in them (routing refuses a process its policy does not declare).
SHIPPED_PROCESSES: dict[str, str] = {
    "investigation": "Investigation",
    "case_management": "Independent case management",
    "query": "Query",
}
STATE_LABELS: dict[str, str] = {
    "on_track": "On track",
    "due_soon": "Due soon",
    "overdue": "Overdue",
    "ended": "Ended",
}
StagePosition = Literal["done", "current", "next"]
_NAME = r"^[a-z][a-z0-9_]{0,63}$"
STAFF_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
_STAFF_ID = STAFF_ID_PATTERN


def _blank_is_none(value: str | None) -> str | None:
    return value or None


class ProcessChange(IntakeInput):
    """POST /cases/{id}/process: the policy's process to switch to (its name, e.g.
    `case_management`) and why (required, 3-2000 characters)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    process: str = Field(pattern=_NAME)
    reason: FreeText = Field(min_length=3, max_length=2000)


class StageChange(IntakeInput):
    """POST /cases/{id}/stage: the stage to move to (a name from the case's process),
    `ending` when it is the final stage (one of the process's endings), and a reason
    (routing requires one for a move back and for the final stage)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    stage: str = Field(pattern=_NAME)
    ending: str | None = Field(default=None, pattern=_NAME)
    reason: FreeText | None = Field(default=None, max_length=2000)

    @field_validator("ending", "reason", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class ProcessRoleAssignment(IntakeInput):
    """POST /cases/{id}/process-roles: the role (investigator | case_manager |
    appeal_hearer) and the staff id to hold it (routing's roster), with an optional reason."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    role: ProcessRole
    staff_id: str = Field(pattern=_STAFF_ID)
    reason: FreeText | None = Field(default=None, max_length=2000)

    @field_validator("reason", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class ConflictDeclaration(IntakeInput):
    """POST /cases/{id}/conflicts: who has a conflict of interest on the case (a staff id;
    the signed-in person when omitted) and why (required, 3-2000 characters)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    staff_id: str | None = Field(default=None, pattern=_STAFF_ID)
    reason: FreeText = Field(min_length=3, max_length=2000)

    @field_validator("staff_id", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


def has_ended(process: Mapping[str, Any]) -> bool:
    return process.get("stage_state") == "ended" or process.get("ending") is not None


def stage_names(process: Mapping[str, Any]) -> list[str]:
    return [str(stage["name"]) for stage in process.get("stages") or []]


def _ended(process: Mapping[str, Any]) -> str:
    ending = process.get("ending")
    how = f" ({str(ending).replace('_', ' ')})" if ending else ""
    return f"the {process['label']} process on this case has ended{how}"


def stage_conflict(process: Mapping[str, Any] | None, change: StageChange) -> str | None:
    """Why `change` cannot apply, as far as intake's projection shows (409), else None."""
    if process is None:
        return "the case is not in a process yet"
    if has_ended(process):
        return _ended(process)
    names = stage_names(process)
    if change.stage not in names:
        return (
            f"the {process['label']} process has no stage '{change.stage}'"
            f" (stages: {', '.join(names)})"
        )
    endings = [str(e) for e in process.get("endings") or []]
    if change.ending is not None and change.ending not in endings:
        known = ", ".join(endings) or "none"
        return f"the {process['label']} process has no ending '{change.ending}' (endings: {known})"
    labels = {str(s["name"]): str(s["label"]) for s in process.get("stages") or []}
    final = names[-1]
    if change.ending is not None and change.stage != final:
        return f"an ending is given only with the final stage ({labels[final]})"
    if change.stage == final and change.ending is None:
        return f"the final stage ({labels[final]}) needs an ending: one of {', '.join(endings)}"
    if change.stage == final and not change.reason:
        return f"the final stage ({labels[final]}) needs a reason"
    if change.stage == process.get("stage"):
        return f"the case is already in the {process.get('stage_label') or change.stage} stage"
    return None


def process_conflict(process: Mapping[str, Any] | None, change: ProcessChange) -> str | None:
    """Why a switch to `change.process` cannot apply, as far as intake can tell (409)."""
    if process is None:
        return None  # routing decides: the case may not have been routed yet
    if has_ended(process):
        return _ended(process)
    if change.process == process.get("process"):
        return f"the case is already in the {process['label']} process"
    return None


def role_conflict(process: Mapping[str, Any] | None) -> str | None:
    """A role on a process that has ended cannot be given (409)."""
    if process is not None and has_ended(process):
        return _ended(process)
    return None


def stage_trail(process: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The process's stages in order, each {name, label, target_working_days, position}
    with position done | current | next (every stage before the current one is done; a
    process that has ended shows its final stage as current)."""
    current = process.get("stage")
    names = stage_names(process)
    index = names.index(current) if current in names else -1
    trail = []
    for i, stage in enumerate(process.get("stages") or []):
        position: StagePosition = "done" if i < index else "current" if i == index else "next"
        trail.append({**stage, "position": position})
    return trail


def final_stage(process: Mapping[str, Any]) -> str | None:
    names = stage_names(process)
    return names[-1] if names else None
