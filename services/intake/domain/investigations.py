"""Investigations as intake records and shows them. No I/O.

The investigator (or an HR manager who may act on the case) records the facts of an
investigation at intake's doors: allegations (one respondent each), interim measures,
interviews, statements, the evidence log, a finding per allegation, the outcome and its
actions. Routing owns the stage (`intake.case_processes`, projected from
case.stage_entered) and judges the outcome's approver; intake refuses what the stage
plainly does not allow (409, naming the rule) before anything is published.

The parties (signed-in employees) see only what concerns them: the complainant (the
case's reporter) every allegation and the finding on each, the respondent the allegations
naming them and the findings on those; each their own interviews and statements, and the
outcome's actions that are general or concern them, once the outcome is approved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, ConfigDict, Field, field_validator

from services.intake.domain.case import FreeText, IntakeInput
from services.intake.domain.meeting_times import future_instant, iana_zone
from shared.addresses import MailAddress
from shared.auth import Role
from shared.events import (
    AllegationType,
    FindingValue,
    InterimMeasureKind,
    InterviewRole,
    OutcomeActionKind,
)

# Who records investigation facts: staff who may act on the case (routing and the case's
# access rules decide who that is; the process's investigator is among them).
INVESTIGATION_ROLES: tuple[Role, ...] = ("hr_agent", "hr_manager", "investigator")
PROCESS = "investigation"
FINDING_STAGES = ("findings", "outcome")
OUTCOME_STAGE = "outcome"
PartyRole = Literal["complainant", "respondent"]
ReviewState = Literal["awaiting_review", "confirmed", "corrected"]
ApprovalState = Literal["decided", "approval_requested", "approved", "refused", "superseded"]
AppealDecision = Literal["upheld", "partly_upheld", "dismissed"]
_EMPLOYEE_ID = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"

ALLEGATION_LABELS: dict[str, str] = {
    "harassment": "Harassment",
    "sexual_harassment": "Sexual harassment",
    "bullying": "Bullying",
    "discrimination": "Discrimination",
    "victimisation": "Victimisation",
    "misconduct": "Misconduct",
    "fraud": "Fraud",
    "safety": "Safety",
    "other": "Other",
}
FINDING_LABELS: dict[str, str] = {
    "substantiated": "Substantiated",
    "not_substantiated": "Not substantiated",
    "inconclusive": "Inconclusive",
}
REVIEW_LABELS: dict[str, str] = {
    "awaiting_review": "Awaiting the person's review",
    "confirmed": "Confirmed by the person",
    "corrected": "Corrections given",
}
APPROVAL_LABELS: dict[str, str] = {
    "decided": "Decided, not yet sent for approval",
    "approval_requested": "Approval requested, waiting for routing",
    "approved": "Approved",
    "refused": "Approval refused",
    "superseded": "Superseded",
}


def _blank_is_none(value: str | None) -> str | None:
    return value.strip() or None if isinstance(value, str) else value


def _single_line(value: str | None) -> str | None:
    if value and any(ch in value for ch in "\r\n"):
        raise ValueError("must be a single line")
    return value


class _Input(IntakeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AllegationInput(_Input):
    """POST .../investigation/allegations: one allegation about one respondent."""

    allegation_type: AllegationType
    summary: FreeText = Field(min_length=1, max_length=5000)
    respondent_employee_id: str = Field(pattern=_EMPLOYEE_ID)
    respondent_name: str | None = Field(default=None, max_length=200)
    occurred_on: date | None = None

    @field_validator("respondent_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _single_line(_blank_is_none(value))

    @field_validator("occurred_on")
    @classmethod
    def _not_future(cls, value: date | None) -> date | None:
        if value is not None:
            today = datetime.now(UTC).date()
            if value > today + timedelta(days=1):
                raise ValueError("must not be in the future")
            if value.year < 1970:
                raise ValueError("must not be before 1970")
        return value


class InterimMeasureInput(_Input):
    """POST .../investigation/interim-measures."""

    kind: InterimMeasureKind
    description: FreeText = Field(min_length=1, max_length=2000)
    applies_to: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("applies_to")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.match(_EMPLOYEE_ID, item):
                raise ValueError("must be employee ids")
        return value


class IntervieweeInput(_Input):
    role: InterviewRole
    name: str = Field(min_length=1, max_length=200)
    email: MailAddress
    employee_id: str | None = Field(default=None, pattern=_EMPLOYEE_ID)

    @field_validator("name")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return _single_line(value) or value

    @field_validator("employee_id", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_is_none(value) if isinstance(value, str) else value


class InterviewInput(_Input):
    """POST .../investigation/interviews: `scheduled_for` with an offset, in the future
    (within a year); `time_zone` IANA (default UTC); a `location` or a `video_link`."""

    interviewee: IntervieweeInput
    scheduled_for: AwareDatetime
    duration_minutes: int = Field(ge=15, le=480)
    time_zone: str | None = Field(default=None, max_length=64)
    location: str | None = Field(default=None, max_length=500)
    video_link: str | None = Field(default=None, max_length=2000, validate_default=True)

    @field_validator("scheduled_for")
    @classmethod
    def _ahead(cls, value: datetime) -> datetime:
        return future_instant(value)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return iana_zone(value)

    @field_validator("location")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        return _single_line(_blank_is_none(value))

    @field_validator("video_link")
    @classmethod
    def _video(cls, value: str | None, info: Any) -> str | None:
        value = _blank_is_none(value)
        if value is not None and (not value.startswith("https://") or " " in value):
            raise ValueError("must be an https:// link")
        if value is None and not info.data.get("location"):
            raise ValueError("give a location or a video_link")
        return value


class StatementInput(_Input):
    """POST .../investigation/statements: what the person said (`allegation_ids` of this
    case's allegations it bears on)."""

    interview_id: UUID | None = None
    given_by_role: InterviewRole
    given_by_name: str = Field(min_length=1, max_length=200)
    given_by_employee_id: str | None = Field(default=None, pattern=_EMPLOYEE_ID)
    text: FreeText = Field(min_length=1, max_length=50000)
    allegation_ids: list[UUID] = Field(default_factory=list, max_length=50)
    companion_name: str | None = Field(default=None, max_length=200)

    @field_validator("given_by_name", "companion_name")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        return _single_line(_blank_is_none(value))

    @field_validator("given_by_employee_id", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_is_none(value) if isinstance(value, str) else value


class EvidenceItemInput(_Input):
    """POST .../investigation/evidence as JSON: an item (not a file intake stores), with
    the SHA-256 of its digital copy when there is one."""

    description: FreeText = Field(min_length=1, max_length=2000)
    source: FreeText = Field(min_length=1, max_length=500)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    allegation_ids: list[UUID] = Field(default_factory=list, max_length=50)

    @field_validator("sha256", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() or None if isinstance(value, str) else value


class FindingInput(_Input):
    """POST .../investigation/findings: the finding on one allegation, with reasoning."""

    allegation_id: UUID
    finding: FindingValue
    reasoning: FreeText = Field(min_length=1, max_length=20000)


class OutcomeActionInput(_Input):
    kind: OutcomeActionKind
    description: FreeText = Field(min_length=1, max_length=2000)
    concerns_employee_id: str | None = Field(default=None, pattern=_EMPLOYEE_ID)

    @field_validator("concerns_employee_id", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_is_none(value) if isinstance(value, str) else value


class OutcomeInput(_Input):
    """POST .../investigation/outcome: the decided outcome and its actions."""

    summary: FreeText = Field(min_length=1, max_length=20000)
    actions: list[OutcomeActionInput] = Field(min_length=1, max_length=30)


class StatementReviewInput(_Input):
    """POST .../investigation/statements/{sid}/review (the person the statement is
    from): confirm it as written, or give corrections."""

    confirmed: bool
    corrections: FreeText | None = Field(default=None, max_length=20000, validate_default=True)

    @field_validator("corrections")
    @classmethod
    def _needed(cls, value: str | None, info: Any) -> str | None:
        value = _blank_is_none(value)
        if info.data.get("confirmed") is False and not value:
            raise ValueError("give your corrections, or confirm the statement")
        return value


class AppealInput(_Input):
    """POST .../investigation/appeal (a party): the grounds of the appeal."""

    grounds: FreeText = Field(min_length=1, max_length=20000)


class AppealDecisionInput(_Input):
    """POST .../investigation/appeal/decision (the appeal hearer)."""

    decision: AppealDecision
    reasoning: FreeText = Field(min_length=1, max_length=20000)


# --- Rules --------------------------------------------------------------------------------


def process_conflict(process: Mapping[str, Any] | None, stages: Iterable[str] = ()) -> str | None:
    """Why the case's process does not allow an investigation fact (409), if so: not in
    the investigation process, ended, or (when `stages` is given) not in one of them."""
    if process is None:
        return "the case is not in a process yet; it needs the investigation process"
    if process["process"] != PROCESS:
        return (
            f"the case is in the {process['process']} process, not investigation;"
            " switch its process first"
        )
    if process.get("stage_state") == "ended" or process.get("ending"):
        return f"the investigation has ended ({process.get('ending') or process.get('stage')})"
    wanted = tuple(stages)
    if wanted and process.get("stage") not in wanted:
        return (
            f"the case is in the {process.get('stage') or 'no'} stage; this needs the"
            f" {' or '.join(wanted)} stage"
        )
    return None


def allegations_without_finding(
    allegations: Iterable[Mapping[str, Any]], findings: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The allegations that have no current finding, in the order given."""
    found = {str(f["allegation_id"]) for f in findings if f.get("superseded_by") is None}
    return [a for a in allegations if str(a["allegation_id"]) not in found]


def outcome_conflict(
    allegations: Sequence[Mapping[str, Any]], findings: Sequence[Mapping[str, Any]]
) -> str | None:
    """Why an outcome cannot be decided yet (409): no allegation, or allegations without
    a finding (named by type and respondent)."""
    if not allegations:
        return "record the allegations (and a finding on each) before the outcome"
    missing = allegations_without_finding(allegations, findings)
    if missing:
        named = ", ".join(
            f"{a['allegation_id']} ({a['allegation_type']},"
            f" respondent {a['respondent_employee_id']})"
            for a in missing
        )
        return f"every allegation needs a finding first; missing for: {named}"
    return None


def appeal_window_open(outcome: Mapping[str, Any] | None, now: datetime) -> bool:
    """An approved outcome whose window has neither ended nor been closed by routing."""
    if outcome is None or outcome.get("approval_state") != "approved":
        return False
    ends = outcome.get("appeal_window_ends_at")
    return outcome.get("window_closed_at") is None and ends is not None and now < ends


def party_roles(
    employee_id: str | None,
    *,
    reporter_employee_id: str | None,
    anonymous: bool,
    allegations: Iterable[Mapping[str, Any]],
) -> set[PartyRole]:
    """The parties `employee_id` is on the case: complainant (its named reporter),
    respondent (named by an allegation). Empty for anyone else."""
    if not employee_id:
        return set()
    roles: set[PartyRole] = set()
    if not anonymous and reporter_employee_id == employee_id:
        roles.add("complainant")
    if any(a["respondent_employee_id"] == employee_id for a in allegations):
        roles.add("respondent")
    return roles


def concerns(allegation: Mapping[str, Any], employee_id: str, roles: set[PartyRole]) -> bool:
    """Whether an allegation concerns the party: every allegation concerns the
    complainant; a respondent only those naming them."""
    return "complainant" in roles or allegation["respondent_employee_id"] == employee_id


def own_statement(statement: Mapping[str, Any], employee_id: str) -> bool:
    """A statement is the party's own when it was given by them (their employee id)."""
    return statement.get("given_by_employee_id") == employee_id


def own_interview(interview: Mapping[str, Any], employee_id: str) -> bool:
    return interview.get("interviewee_employee_id") == employee_id


def letter_actions(actions: Iterable[Mapping[str, Any]], employee_id: str) -> list[Any]:
    """The outcome's actions a party is told of: general ones and those concerning them."""
    return [a for a in actions if a.get("concerns_employee_id") in (None, employee_id)]
