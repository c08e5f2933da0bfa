"""Independent case management (mediation) as the case manager records it and as each
party reads it. No I/O.

The case manager (the holder of the `case_manager` process role, or an HR manager who may
act on the case) records facts at intake's doors: each party's initial assessment, the
ground rules, facilitated discussions (meetings) and the written agreement with its
terms. The parties (the employee; the employer's representative), signed in as
employees, accept the ground rules and the agreement for their own role. Routing owns
the stage and every clock (agreement.in_force, obligation reminders and escalations,
follow-up check-ins); intake projects them.

What each reader sees (`staff_view`, `party_view`):
- staff who may read the case: everything, except each meeting's `privileged_notes`,
  which only the case manager role holder reads (auditors read them in the audit log);
- a party: their own assessment (account, desired outcomes, documents' names), the
  ground rules and who accepted them, meeting dates with the shared summary (discussed,
  proposals), the agreement with its acceptances, their own obligations. Never the other
  party's assessment, never privileged notes.

Row shapes (adapters/mediation_sql.py): assessments {party_role, employee_id, name,
email, account, desired_outcomes[], documents[], recorded_at}; ground rules
{ground_rules_id, rules[], parties[], acceptances {role: instant}, proposed_at};
meetings {meeting_id, scheduled_for, duration_minutes, time_zone, location, video_link,
case_manager {id, name, email}, held_at, discussed, proposals[], privileged_notes};
agreement {agreement_id, version, terms[{term_id, text, owner_role, due_on}], parties[],
acceptances {role: {version, accepted_at}}, in_force_at, in_force_version,
follow_ups_at[]}; obligations {term_id, owner_role, due_at, due_soon_at, state,
escalated_to, met_on, met_note}; follow-ups {check_in, due_at, fell_due_at}.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args
from uuid import UUID

from pydantic import AwareDatetime, ConfigDict, Field, ValidationInfo, field_validator

from services.intake.domain.case import FreeText, IntakeInput, PastInstant
from services.intake.domain.meeting_times import future_instant, iana_zone
from shared.addresses import MailAddress
from shared.auth import Role
from shared.events import PartyRole

PROCESS = "case_management"
CASE_MANAGER_ROLE = "case_manager"
# Staff roles that may use the staff doors at all (the case manager is an hr_agent or an
# investigator; the HR manager may stand in). Whether they may act on this case is then
# decided by `may_record`.
MEDIATION_ROLES: tuple[Role, ...] = ("hr_agent", "hr_manager", "investigator")
PARTY_ROLES: tuple[str, ...] = get_args(PartyRole)
PARTY_LABELS: dict[str, str] = {
    "employee": "Employee",
    "employer_representative": "Employer's representative",
}
OBLIGATION_LABELS: dict[str, str] = {
    "draft": "Not yet in force",
    "open": "Open",
    "due_soon": "Due soon",
    "overdue": "Overdue",
    "met": "Met",
}
AGREEMENT_STAGE = "agreement"
MAX_DUE_AHEAD = timedelta(days=3 * 366)


def _one_line(value: str) -> str:
    if any(ch in value for ch in "\r\n"):
        raise ValueError("must be a single line")
    return value


def _items(values: list[str], *, max_length: int) -> list[str]:
    """Trimmed list items: a blank one or one over `max_length` characters is refused."""
    cleaned = [v.strip() for v in values]
    for item in cleaned:
        if not item:
            raise ValueError("items must not be blank")
        if len(item) > max_length:
            raise ValueError(f"items must be at most {max_length} characters")
    return cleaned


# --- What the case manager records ----------------------------------------------------------


class PartyInput(IntakeInput):
    """One side of the process: the employee or the employer's representative, by their
    employee id and work contact."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    role: PartyRole
    employee_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    name: str = Field(min_length=1, max_length=200)
    email: MailAddress

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _one_line(value)


class AssessmentInput(IntakeInput):
    """`POST /cases/{id}/mediation/assessments`: the party's account (up to 20,000
    characters), desired outcomes (1-20, each up to 500) and documents: ids of files
    already on the case (at most 20). A new assessment of the same role replaces it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    party: PartyInput
    account: FreeText = Field(min_length=1, max_length=20_000)
    desired_outcomes: list[str] = Field(min_length=1, max_length=20)
    documents: list[UUID] = Field(default_factory=list, max_length=20)

    @field_validator("desired_outcomes")
    @classmethod
    def _outcomes(cls, value: list[str]) -> list[str]:
        return _items(value, max_length=500)

    @field_validator("documents")
    @classmethod
    def _distinct(cls, value: list[UUID]) -> list[UUID]:
        if len(set(value)) != len(value):
            raise ValueError("a document is listed twice")
        return value


class GroundRulesInput(IntakeInput):
    """`POST .../mediation/ground-rules`: 1-30 rules, each up to 1000 characters."""

    model_config = ConfigDict(extra="forbid")
    rules: list[str] = Field(min_length=1, max_length=30)

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: list[str]) -> list[str]:
        return _items(value, max_length=1000)


class MeetingInput(IntakeInput):
    """`POST .../mediation/meetings`: when (with an offset, in the future, within a year),
    how long (15-480 minutes), the IANA zone it is shown in (default: the owning team's),
    and where: a `location` (one line) or a `video_link` (https), at least one."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    scheduled_for: AwareDatetime
    duration_minutes: int = Field(ge=15, le=480)
    time_zone: str | None = Field(default=None, max_length=64)
    # Validated even when absent, in this order: the place is checked after the link.
    video_link: str | None = Field(default=None, max_length=2000, validate_default=True)
    location: str | None = Field(default=None, max_length=500, validate_default=True)

    @field_validator("scheduled_for")
    @classmethod
    def _ahead(cls, value: datetime) -> datetime:
        return future_instant(value)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return iana_zone(value)

    @field_validator("video_link")
    @classmethod
    def _video_link(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith("https://") or any(ch.isspace() for ch in value):
            raise ValueError("must be an https:// link")
        return value

    @field_validator("location")
    @classmethod
    def _location(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = _one_line(value) if value else None
        if "video_link" not in info.data:
            return value  # the link itself was invalid: reported there
        if value is None and info.data.get("video_link") is None:
            raise ValueError("give a location or a video_link")
        return value


class MeetingRecordInput(IntakeInput):
    """`POST .../mediation/meetings/{mid}/record`: when it was held (not in the future),
    what was discussed (shared with both parties), proposals (0-30, each up to 2000) and
    the case manager's own `privileged_notes` (only the case manager reads them)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    held_at: PastInstant
    discussed: FreeText = Field(min_length=1, max_length=20_000)
    proposals: list[str] = Field(default_factory=list, max_length=30)
    privileged_notes: FreeText | None = Field(default=None, max_length=20_000)

    @field_validator("proposals")
    @classmethod
    def _proposals(cls, value: list[str]) -> list[str]:
        return _items(value, max_length=2000)

    @field_validator("privileged_notes")
    @classmethod
    def _blank(cls, value: str | None) -> str | None:
        return value or None


def _due_on(value: date | None) -> date | None:
    """An obligation's due day: from today (UTC, with a day of slack for zones west of
    it) to three years ahead."""
    if value is None:
        return None
    today = datetime.now(UTC).date()
    if value < today - timedelta(days=1):
        raise ValueError("must not be in the past")
    if value > today + MAX_DUE_AHEAD:
        raise ValueError("must be within three years")
    return value


class TermInput(IntakeInput):
    """One term of the agreement (up to 2000 characters). With `owner_role` and `due_on`
    it is a tracked obligation of that party; one without the other is refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    text: FreeText = Field(min_length=1, max_length=2000)
    owner_role: PartyRole | None = None
    due_on: date | None = Field(default=None, validate_default=True)

    @field_validator("due_on")
    @classmethod
    def _due(cls, value: date | None, info: ValidationInfo) -> date | None:
        value = _due_on(value)
        if "owner_role" not in info.data:
            return value  # the role itself was invalid: reported there
        owner = info.data.get("owner_role")
        if owner is not None and value is None:
            raise ValueError("an obligation with an owner_role needs a due_on")
        if value is not None and owner is None:
            raise ValueError("a due_on needs the owner_role of the party who owes it")
        return value


class AgreementInput(IntakeInput):
    """`POST .../mediation/agreement`: the complete terms (1-50) of the next version."""

    model_config = ConfigDict(extra="forbid")
    terms: list[TermInput] = Field(min_length=1, max_length=50)


class ObligationMetInput(IntakeInput):
    """`POST .../mediation/agreement/obligations/{term_id}/met`: the day it was met (not
    after today) and what shows it (up to 2000 characters)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    met_on: date
    note: FreeText | None = Field(default=None, max_length=2000)

    @field_validator("met_on")
    @classmethod
    def _not_ahead(cls, value: date) -> date:
        today = datetime.now(UTC).date()
        if value > today + timedelta(days=1):
            raise ValueError("must not be in the future")
        if value < date(2000, 1, 1):
            raise ValueError("is out of range")
        return value

    @field_validator("note")
    @classmethod
    def _blank(cls, value: str | None) -> str | None:
        return value or None


class AgreementAcceptanceInput(IntakeInput):
    """`POST .../mediation/agreement/{agreement_id}/accept`: the version the party read."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=10_000)


# --- Rules (pure) ------------------------------------------------------------------------------


def process_conflict(process: dict[str, Any] | None) -> str | None:
    """Why no mediation fact may be recorded now (409), or None: the case must be in the
    `case_management` process and not have ended."""
    if process is None or process.get("process") != PROCESS:
        return "the case is not in independent case management"
    if process.get("ending") or process.get("stage_state") == "ended":
        return "independent case management on this case has ended"
    return None


def agreement_stage_conflict(process: dict[str, Any] | None) -> str | None:
    """A draft is written in the `agreement` stage only."""
    stage = (process or {}).get("stage")
    if stage != AGREEMENT_STAGE:
        return (
            f"the agreement is drafted in the agreement stage; the case is in {stage or 'no stage'}"
        )
    return None


def party_roles_missing(assessments: list[dict[str, Any]]) -> list[str]:
    have = {a["party_role"] for a in assessments}
    return [role for role in PARTY_ROLES if role not in have]


def parties_of(assessments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The two parties as events carry them, in role order."""
    by_role = {a["party_role"]: a for a in assessments}
    return [
        {
            "role": role,
            "employee_id": by_role[role]["employee_id"],
            "name": by_role[role]["name"],
            "email": by_role[role]["email"],
        }
        for role in PARTY_ROLES
        if role in by_role
    ]


def party_role_of(assessments: list[dict[str, Any]], employee_id: str | None) -> str | None:
    """The role the employee holds as a party of this case, or None."""
    if not employee_id:
        return None
    for assessment in assessments:
        if assessment["employee_id"] == employee_id:
            return str(assessment["party_role"])
    return None


def obligation_state(obligation: dict[str, Any] | None) -> str:
    """draft (not in force) | open | due_soon | overdue | met."""
    if obligation is None:
        return "draft"
    return str(obligation["state"])


def agreement_state(agreement: dict[str, Any] | None) -> str | None:
    """None (no draft), draft, accepted_by_one, accepted_by_both (routing has yet to put
    it in force), in_force."""
    if agreement is None:
        return None
    if agreement.get("in_force_version") == agreement["version"]:
        return "in_force"
    accepted = current_acceptances(agreement)
    if len(accepted) >= len(PARTY_ROLES):
        return "accepted_by_both"
    return "accepted_by_one" if accepted else "draft"


def current_acceptances(agreement: dict[str, Any]) -> dict[str, str]:
    """role -> accepted_at, for the agreement's current version only."""
    return {
        role: str(value.get("accepted_at"))
        for role, value in (agreement.get("acceptances") or {}).items()
        if value.get("version") == agreement["version"]
    }


def obligations_view(
    agreement: dict[str, Any] | None, obligations: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The agreement's obligation terms with their clock: due_at, due_soon_at (the
    reminder), state, met_on, escalated_to (a name) once routing runs them."""
    if agreement is None:
        return []
    tracked = {str(o["term_id"]): o for o in obligations}
    rows = []
    for term in agreement["terms"]:
        if not term.get("owner_role"):
            continue
        clock = tracked.get(str(term["term_id"]))
        rows.append(
            {
                "term_id": str(term["term_id"]),
                "text": term["text"],
                "owner_role": term["owner_role"],
                "due_on": term.get("due_on"),
                "due_at": clock["due_at"] if clock else None,
                "due_soon_at": clock["due_soon_at"] if clock else None,
                "state": obligation_state(clock),
                "met_on": clock["met_on"] if clock else None,
                "met_note": clock["met_note"] if clock else None,
                "escalated_to": (clock.get("escalated_to") or {}).get("name") if clock else None,
            }
        )
    return rows


def staff_view(
    *,
    process: dict[str, Any] | None,
    case_manager: dict[str, Any] | None,
    viewer_is_case_manager: bool,
    assessments: list[dict[str, Any]],
    ground_rules: list[dict[str, Any]],
    meetings: list[dict[str, Any]],
    agreement: dict[str, Any] | None,
    obligations: list[dict[str, Any]],
    follow_ups: list[dict[str, Any]],
) -> dict[str, Any]:
    """Everything for staff who may read the case; each meeting's `privileged_notes` only
    when the viewer holds the case manager role (else None, `privileged_notes_hidden`)."""
    shown_meetings = []
    for meeting in meetings:
        row = dict(meeting)
        if not viewer_is_case_manager:
            row["privileged_notes"] = None
        shown_meetings.append(row)
    latest = ground_rules[-1] if ground_rules else None
    return {
        "process": process,
        "stage": (process or {}).get("stage"),
        "case_manager": case_manager,
        "viewer_is_case_manager": viewer_is_case_manager,
        "privileged_notes_hidden": not viewer_is_case_manager,
        "assessments": assessments,
        "missing_party_roles": party_roles_missing(assessments),
        "ground_rules": latest,
        "earlier_ground_rules": ground_rules[:-1],
        "meetings": shown_meetings,
        "agreement": _agreement_view(agreement),
        "obligations": obligations_view(agreement, obligations),
        "follow_ups": follow_ups,
    }


def _agreement_view(agreement: dict[str, Any] | None) -> dict[str, Any] | None:
    if agreement is None:
        return None
    return {
        **agreement,
        "state": agreement_state(agreement),
        "accepted_by": current_acceptances(agreement),
    }


def party_view(
    *,
    role: str,
    case: dict[str, Any],
    process: dict[str, Any] | None,
    assessments: list[dict[str, Any]],
    ground_rules: list[dict[str, Any]],
    meetings: list[dict[str, Any]],
    agreement: dict[str, Any] | None,
    obligations: list[dict[str, Any]],
) -> dict[str, Any]:
    """What one party reads: their own assessment, the latest ground rules, meetings
    (dates and the shared summary only), the agreement and their own obligations."""
    own = next((a for a in assessments if a["party_role"] == role), None)
    latest = ground_rules[-1] if ground_rules else None
    shared_meetings = [
        {
            "meeting_id": m["meeting_id"],
            "scheduled_for": m["scheduled_for"],
            "duration_minutes": m["duration_minutes"],
            "time_zone": m["time_zone"],
            "location": m["location"],
            "video_link": m["video_link"],
            "case_manager_name": (m.get("case_manager") or {}).get("name"),
            "held_at": m["held_at"],
            "discussed": m["discussed"],
            "proposals": m["proposals"] or [],
        }
        for m in meetings
    ]
    shown_agreement = None
    if agreement is not None:
        accepted = current_acceptances(agreement)
        shown_agreement = {
            "agreement_id": agreement["agreement_id"],
            "version": agreement["version"],
            "terms": agreement["terms"],
            "state": agreement_state(agreement),
            "accepted_by": accepted,
            "you_accepted": role in accepted,
            "in_force_at": agreement.get("in_force_at")
            if agreement.get("in_force_version") == agreement["version"]
            else None,
        }
    ended = process_conflict(process) is not None
    return {
        "case_id": case["case_id"],
        "reference": case["reference"],
        "role": role,
        "role_label": PARTY_LABELS[role],
        "stage": (process or {}).get("stage_label") or (process or {}).get("stage"),
        "ended": ended,
        "assessment": None
        if own is None
        else {
            "account": own["account"],
            "desired_outcomes": own["desired_outcomes"],
            "documents": [d.get("filename") for d in own.get("documents") or []],
            "recorded_at": own["recorded_at"],
        },
        "ground_rules": None
        if latest is None
        else {
            "ground_rules_id": latest["ground_rules_id"],
            "rules": latest["rules"],
            "accepted_by": sorted((latest.get("acceptances") or {}).keys()),
            "you_accepted": role in (latest.get("acceptances") or {}),
            "proposed_at": latest["proposed_at"],
        },
        "meetings": shared_meetings,
        "agreement": shown_agreement,
        "obligations": [
            o for o in obligations_view(agreement, obligations) if o["owner_role"] == role
        ],
    }
