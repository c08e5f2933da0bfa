"""Case conferences as staff ask for them, and as intake shows them. No I/O.

Staff plan, change, cancel, hold and summarise a conference at intake's doors; routing
owns the rules (notice working days, consent gates, summary deadline, action clocks) and
answers with decisions (conference.planned, ...) or case.request_refused. Intake keeps
one row per conference (`intake.conferences`) as the last decision stated it, plus what
notifications relayed to each participant and what participants acknowledged or objected.

Shapes kept in the row (jsonb):
- plan: `shared.events.ConferencePlan` as JSON.
- participants: `ConferenceParticipant` as JSON plus `invitation` (None until routing
  decides, then "invited" or "awaiting_consent"), `mails` ([{kind, notification_id,
  sent_at, sequence?, method?}]), `acknowledged_at`, `objection`, `objection_at`.
- actions: `ConferenceAction` as JSON plus `status` (open|done|replanned|ended),
  `due_soon`, `overdue`, `escalated_to_name`, `note`, `reason`, `on_time`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from services.intake.domain.case import NUL_MESSAGE, FreeText, IntakeInput, PastInstant
from services.intake.domain.meeting_times import future_instant, iana_zone
from shared.addresses import MailAddress
from shared.auth import Role
from shared.events import (
    ConferenceMode,
    ConferenceRole,
    ConferenceVenue,
    ConsentKind,
    DesiredOutcome,
)

CONFERENCE_ROLES: tuple[Role, ...] = ("hr_agent", "hr_manager", "investigator")
ConferenceStatus = Literal[
    "requested", "planned", "refused", "cancelled", "held", "summarised", "completed"
]
ActionStatus = Literal["open", "done", "replanned", "ended"]
ENDED_STATUSES = frozenset({"refused", "cancelled", "completed"})
ROLE_LABELS: dict[str, str] = {
    "worker": "Worker",
    "employer_representative": "Employer representative",
    "case_manager": "Case manager",
    "treating_doctor": "Treating doctor",
    "psychologist": "Psychologist",
    "rehabilitation_provider": "Rehabilitation provider",
    "union_representative": "Union representative",
    "support_person": "Support person",
}
STATUS_LABELS: dict[str, str] = {
    "requested": "Waiting for routing",
    "planned": "Planned",
    "refused": "Refused",
    "cancelled": "Cancelled",
    "held": "Held, summary to write",
    "summarised": "Summarised, actions open",
    "completed": "Completed",
}
DEFAULT_OUTCOME_TOPICS = ("Future employment", "Ongoing treatment")
# The furthest ahead a conference may be planned (a typo such as year 2206 is refused).
_STAFF_ID = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


def _single_line(value: str) -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError("must be a single line")
    return value


def _blank_is_none(value: str | None) -> str | None:
    return value or None


# The furthest ahead an agreed action may fall due (a typo such as 2206 is refused here).
MAX_DUE_AHEAD = timedelta(days=3 * 366)


def _due_date(value: date | None) -> date | None:
    """An action's due date: from yesterday (a day of slack for zones west of UTC) to
    three years ahead."""
    if value is None:
        return None
    today = datetime.now(UTC).date()
    if value < today - timedelta(days=1):
        raise ValueError("must not be in the past")
    if value > today + MAX_DUE_AHEAD:
        raise ValueError("must be within three years")
    return value


def default_outcomes() -> list[DesiredOutcome]:
    return [DesiredOutcome(topic=topic) for topic in DEFAULT_OUTCOME_TOPICS]


class ParticipantInput(IntakeInput):
    """One person asked to attend. `participant_id` only in a change, to keep a person
    already on the conference (their invitation, mails and acknowledgements stay)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    participant_id: UUID | None = None
    role: ConferenceRole
    name: str = Field(min_length=1, max_length=200)
    email: MailAddress
    organisation: str | None = Field(default=None, max_length=200)
    employee_id: str | None = Field(default=None, max_length=64)

    @field_validator("name", "organisation")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        return _single_line(value) if value else value

    @field_validator("organisation", "employee_id")
    @classmethod
    def _blank(cls, value: str | None) -> str | None:
        return _blank_is_none(value)


class ConferencePlanInput(IntakeInput):
    """The plan and participants of `POST /cases/{id}/conferences` (and of a change).

    `scheduled_for` needs an offset; `time_zone` (IANA) defaults to the owning team's
    calendar zone; `mode` is inferred (a video_link makes it video, else in person);
    an in-person conference is at the worker's workplace unless `venue` says otherwise
    (another venue needs `venue_reason`); in person and telephone need `location` (the
    address or dial-in), video needs `video_link` (https)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    purpose: FreeText = Field(min_length=3, max_length=2000)
    scheduled_for: AwareDatetime
    duration_minutes: int = Field(ge=15, le=480)
    time_zone: str | None = Field(default=None, max_length=64)
    mode: ConferenceMode | None = None
    # Cross-field rules run in field order and are reported on the field to fix, so the
    # order of these matters (validated even when absent).
    video_link: str | None = Field(default=None, max_length=2000, validate_default=True)
    location: str | None = Field(default=None, max_length=500, validate_default=True)
    venue: ConferenceVenue | None = Field(default=None, validate_default=True)
    venue_reason: FreeText | None = Field(default=None, max_length=2000, validate_default=True)
    participants: list[ParticipantInput] = Field(min_length=1, max_length=20)
    agenda: list[str] = Field(min_length=1, max_length=30)
    desired_outcomes: list[DesiredOutcome] | None = Field(default=None, max_length=10)

    @field_validator("scheduled_for")
    @classmethod
    def _ahead(cls, value: datetime) -> datetime:
        return future_instant(value)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return iana_zone(value, example="Australia/Sydney")

    @field_validator("video_link")
    @classmethod
    def _video_link(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = _blank_is_none(value)
        if value is not None and (not value.startswith("https://") or " " in value):
            raise ValueError("must be an https:// link")
        if value is None and info.data.get("mode") == "video":
            raise ValueError("a video conference needs a video_link")
        return value

    @field_validator("location")
    @classmethod
    def _location(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = _blank_is_none(value)
        if value is not None:
            _single_line(value)
        if "video_link" not in info.data:
            return value  # the link itself was invalid: reported there
        if value is None and _mode_of(info.data) != "video":
            raise ValueError(
                "give the address of the location (the worker's workplace too: the"
                " participants need to find it), the dial-in for a telephone conference,"
                " or a video_link"
            )
        return value

    @field_validator("venue")
    @classmethod
    def _venue(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and "video_link" in info.data and _mode_of(info.data) != "in_person":
            raise ValueError("a venue applies to in-person conferences only")
        return value

    @field_validator("venue_reason")
    @classmethod
    def _venue_reason(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = _blank_is_none(value)
        if value is None and info.data.get("venue") == "other_venue":
            raise ValueError("say why the conference is not at the workplace")
        return value

    @field_validator("participants")
    @classmethod
    def _distinct(cls, value: list[ParticipantInput]) -> list[ParticipantInput]:
        ids = [p.participant_id for p in value if p.participant_id]
        if len(ids) != len(set(ids)):
            raise ValueError("a participant_id appears twice")
        return value

    @field_validator("desired_outcomes")
    @classmethod
    def _outcomes(cls, value: list[DesiredOutcome] | None) -> list[DesiredOutcome] | None:
        # The event's own model, not an IntakeInput: NUL (which Postgres cannot store) is
        # refused here, naming this field.
        for outcome in value or []:
            texts = [outcome.topic, outcome.agreed or "", *(p.text for p in outcome.proposals)]
            if any("\x00" in text for text in texts):
                raise ValueError(NUL_MESSAGE)
        return value

    @field_validator("agenda")
    @classmethod
    def _agenda(cls, value: list[str]) -> list[str]:
        items = [item.strip() for item in value]
        for item in items:
            if not item or len(item) > 500:
                raise ValueError("each agenda item needs 1 to 500 characters")
            _single_line(item)
        return items

    def resolved_mode(self) -> ConferenceMode:
        return self.mode or ("video" if self.video_link else "in_person")

    def resolved_venue(self) -> ConferenceVenue | None:
        if self.resolved_mode() != "in_person":
            return None
        return self.venue or "workplace"


def _mode_of(data: Mapping[str, Any]) -> str:
    """The mode a plan's fields so far give: as named, else video with a link, else in person."""
    return str(data.get("mode") or ("video" if data.get("video_link") else "in_person"))


class ConferenceChange(ConferencePlanInput):
    """`POST .../changes`: the complete new plan and participants, and why."""

    reason: FreeText = Field(min_length=3, max_length=2000)


class ConferenceCancellation(IntakeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: FreeText = Field(min_length=3, max_length=2000)


class AttendanceInput(IntakeInput):
    model_config = ConfigDict(extra="forbid")
    participant_id: UUID
    attended: bool
    view_stated: bool | None = None


class HoldRecording(IntakeInput):
    """`POST .../attendance`: when it was held (not in the future) and who attended; for
    telephone and video conferences whether each had their turn to state their view."""

    model_config = ConfigDict(extra="forbid")
    held_at: PastInstant
    attendance: list[AttendanceInput] = Field(min_length=1, max_length=20)


class ActionInput(IntakeInput):
    """An agreed action: owned by a participant or a member of staff (exactly one)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    description: FreeText = Field(min_length=3, max_length=1000)
    owner_participant_id: UUID | None = None
    # Validated even when absent: the "exactly one owner" rule is reported on this field.
    owner_staff_id: str | None = Field(default=None, pattern=_STAFF_ID, validate_default=True)
    due_on: date

    @field_validator("due_on")
    @classmethod
    def _due(cls, value: date) -> date | None:
        return _due_date(value)

    @field_validator("owner_staff_id")
    @classmethod
    def _one_owner(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "owner_participant_id" not in info.data:
            return value
        if (info.data["owner_participant_id"] is None) == (value is None):
            raise ValueError("give exactly one of owner_participant_id, owner_staff_id")
        return value


class ObjectionInput(IntakeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    participant_id: UUID | None = None
    text: FreeText = Field(min_length=1, max_length=5000)


class SummaryRecording(IntakeInput):
    """`POST .../summary`: agreed points, agreed actions (intake gives each an action_id),
    objections raised at the meeting."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    agreed_points: list[FreeText] = Field(min_length=1, max_length=50)
    actions: list[ActionInput] = Field(default_factory=list, max_length=50)
    objections: list[ObjectionInput] = Field(default_factory=list, max_length=50)

    @field_validator("agreed_points")
    @classmethod
    def _points(cls, value: list[str]) -> list[str]:
        points = [point.strip() for point in value]
        if any(not point or len(point) > 2000 for point in points):
            raise ValueError("each agreed point needs 1 to 2000 characters")
        return points


class ActionCompletion(IntakeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    note: FreeText | None = Field(default=None, max_length=2000)

    @field_validator("note")
    @classmethod
    def _blank(cls, value: str | None) -> str | None:
        return _blank_is_none(value)


class ActionReplanning(IntakeInput):
    """A new due date keeps the action tracked; none carries it out of this conference."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: FreeText = Field(min_length=3, max_length=2000)
    due_on: date | None = None

    @field_validator("due_on")
    @classmethod
    def _due(cls, value: date | None) -> date | None:
        return _due_date(value)


class ConsentInput(IntakeInput):
    """`POST /cases/{id}/consents`: staff record a consent (with what it rests on), or the
    worker (the case's reporter) gives their own (`given_by` must then be "worker")."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    consent: ConsentKind
    given_by: Literal["worker", "treating_doctor", "psychologist"]
    granted: bool = True
    basis: FreeText | None = Field(default=None, max_length=2000)

    @field_validator("basis")
    @classmethod
    def _blank(cls, value: str | None) -> str | None:
        return _blank_is_none(value)


# --- What may be asked when (409 otherwise; routing still decides) -----------------------


def change_conflict(status: str) -> str | None:
    if status == "requested":
        return "the conference is still waiting for routing to accept it; try again in a moment"
    if status != "planned":
        return f"only a planned conference can be changed or cancelled; this one is {status}"
    return None


def hold_conflict(status: str) -> str | None:
    if status != "planned":
        return f"attendance is recorded for a planned conference; this one is {status}"
    return None


def summary_conflict(status: str) -> str | None:
    if status != "held":
        return f"the summary is written once the conference is held; this one is {status}"
    return None


def action_conflict(status: str, action: Mapping[str, Any] | None) -> str | None:
    if action is None:
        return None
    if status != "summarised":
        return f"actions are followed up on a summarised conference; this one is {status}"
    if action.get("status") in ("done", "ended"):
        return f"the action is already {action.get('status')}"
    return None


def local_time(instant: datetime, zone: str) -> datetime:
    """`instant` in the plan's zone (UTC when the zone is unknown to this host)."""
    try:
        return instant.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        return instant.astimezone(UTC)
