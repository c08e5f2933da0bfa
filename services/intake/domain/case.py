"""Intake's rules: what a valid submission is and how a case is referenced. No I/O."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from services.intake.domain.email.threads import sender_employee_id
from shared.addresses import MailAddress
from shared.auth import Principal, Role
from shared.envelope import Actor
from shared.events import InjuryDetails, Reporter, RespondentNamed

NEW_STATUS = "new"
# The statuses intake's read model passes through before routing's lifecycle takes over:
# case.routed and case.assigned move a case forward through these and never backwards.
STATUS_RANK = {"new": 0, "routed": 1, "assigned": 2}


# --- Input limits ---------------------------------------------------------------------------
# Every request body intake accepts derives from IntakeInput: no string field anywhere in it
# (nested models included) may hold a NUL, which Postgres text cannot store. Instants people
# give us (when a call happened, ...) are PastInstant: not before EARLIEST_INSTANT and not
# later than now plus CLOCK_SKEW. Both answer 422 naming the field, never a 500.
EARLIEST_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(minutes=5)
NUL_MESSAGE = "must not contain NUL characters"


def _no_nul_anywhere(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _no_nul_anywhere(item)
    return value


class IntakeInput(BaseModel):
    """Base of every request body: NUL in any string field is refused with the field named."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_fields(cls, value: Any) -> Any:
        return _no_nul_anywhere(value)


def within_window(value: datetime, *, now: datetime | None = None) -> datetime:
    """`value` (aware) in UTC if EARLIEST_INSTANT <= value <= now + CLOCK_SKEW.

    Raises ValueError (a 422 naming the field) otherwise, including for values whose
    conversion to UTC overflows (year 1 with a positive offset, year 9999 with a negative).
    """
    latest = (now or datetime.now(UTC)) + CLOCK_SKEW
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError("is out of range") from exc
    if utc < EARLIEST_INSTANT:
        raise ValueError(f"must not be before {EARLIEST_INSTANT:%Y-%m-%d}")
    if utc > latest:
        raise ValueError("cannot be in the future")
    return utc


# A moment in the past that intake can store and show: the one type for every such field.
PastInstant = Annotated[AwareDatetime, AfterValidator(within_window)]


class ReporterInput(Reporter, IntakeInput):
    """The reporter as a request gives it: the event's `Reporter` with intake's input limits
    and the address under this deployment's rule (the event payload's `Reporter` takes any
    address some door may accept)."""

    email: MailAddress


# --- Respondents and injury facts (every door) -------------------------------------------
MAX_RESPONDENTS = 10


class RespondentInput(RespondentNamed, IntakeInput):
    """A respondent as a door takes it: at least one of employee_id, name, email (the
    address under this deployment's rule). Routing resolves it against its directory."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
    email: MailAddress | None = None


class InjuryInput(InjuryDetails, IntakeInput):
    """Workplace-injury facts as a door takes them: `suitable_employment_available` is
    true, false or null (not yet known); the date of injury is not in the future."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("date_of_injury")
    @classmethod
    def _not_future(cls, value: date | None) -> date | None:
        if value is None:
            return None
        if value < EARLIEST_INSTANT.date():
            raise ValueError(f"must not be before {EARLIEST_INSTANT:%Y-%m-%d}")
        # A day of slack: "today" somewhere east of UTC.
        if value > (datetime.now(UTC) + timedelta(days=1)).date():
            raise ValueError("cannot be in the future")
        return value


Respondents = Annotated[list[RespondentInput], Field(max_length=MAX_RESPONDENTS)]


def without_empty_facts(dumped: dict[str, Any]) -> dict[str, Any]:
    """A request's dump without respondents/injury when none were given, so requests that
    name neither keep the fingerprint they had before these fields existed."""
    return {k: v for k, v in dumped.items() if not (k in ("respondents", "injury") and not v)}


class SubmitCase(IntakeInput):
    """A case raised through the API (the portal and other channels map onto this)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    subject: str = Field(min_length=3, max_length=200)
    description: str = Field(min_length=10, max_length=20_000)
    reporter: ReporterInput
    category: str | None = Field(default=None, pattern=r"^[a-z][a-z_]{1,63}$")
    respondents: Respondents = Field(default_factory=list)
    injury: InjuryInput | None = None

    @field_validator("subject")
    @classmethod
    def _single_line(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n\x00"):
            raise ValueError("subject must be a single line")
        return value

    def fingerprint(self) -> str:
        """Stable hash of the request, to tell a retry from a reused idempotency key."""
        dumped = without_empty_facts(self.model_dump(mode="json"))
        canonical = json.dumps(dumped, sort_keys=True)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def format_reference(submitted_at: datetime, number: int) -> str:
    """Human-friendly and unique: the year for the reader, a global sequence for uniqueness."""
    return f"HR-{submitted_at.year}-{number:06d}"


def advance_status(current: str, proposed: str) -> str:
    """Status after case.routed/case.assigned (proposed: "routed" or "assigned").

    These only move a case forward through new -> routed -> assigned. A case already in a
    later lifecycle status (in_progress, waiting_on_employee, resolved, closed, ...) keeps
    it: a second case.routed after a re-categorisation must not undo "in progress".
    """
    if current not in STATUS_RANK:
        return current
    if STATUS_RANK.get(proposed, len(STATUS_RANK)) >= STATUS_RANK[current]:
        return proposed
    return current


# Categories people may pick; routing owns their rules and falls back on keywords when
# none is picked (or an unknown one is sent by a newer client).
CATEGORIES: dict[str, str] = {
    "payroll_query": "Payroll query",
    "leave_query": "Leave and absence query",
    "policy_question": "Policy question",
    "grievance": "Grievance",
    "harassment": "Harassment complaint",
    "discrimination": "Discrimination complaint",
    "misconduct": "Misconduct / disciplinary",
    "compliance": "Compliance / whistleblowing",
    "contract_dispute": "Contract dispute",
    "wrongful_termination": "Wrongful termination",
    "workplace_injury": "Workplace injury claim",
    "general_query": "General HR query",
}
CATEGORY_PATTERN = r"^[a-z][a-z_]{1,63}$"
CLOSED_STATUSES = frozenset({"closed"})


# --- Who may read a case -------------------------------------------------------------------
# Employees see the cases they reported, nothing else (and never an anonymous case: nothing
# links it to them). Staff (hr_agent, hr_manager, investigator) see cases by sensitivity:
# - normal: every member of staff;
# - confidential: every member of staff, and each read is audited;
# - restricted: an HR manager, the case's owner (for an investigator: only the cases they
#   are assigned to), or whoever logged/submitted it; each read is audited.
# A case not yet routed has no sensitivity yet and is treated as restricted (fail closed).
# Auditors and admins read the audit service instead.
STAFF_ROLES: tuple[Role, ...] = ("hr_agent", "hr_manager", "investigator")
SUBMIT_ON_BEHALF_ROLES: tuple[Role, ...] = ("hr_agent", "hr_manager")
RESTRICTED_READERS: tuple[Role, ...] = ("hr_manager",)
# Sensitivities whose every staff read goes to the audit log (audit.case_viewed).
AUDITED_SENSITIVITIES = frozenset({"confidential", "restricted"})


class CaseFacts(BaseModel):
    """The parts of a case row that decide who may read it."""

    reporter_employee_id: str | None
    anonymous: bool
    sensitivity: str | None
    owner_id: str | None
    logged_by: str | None
    submitted_by: str | None
    # Staff ids holding a process role on the case (investigator, case_manager,
    # appeal_hearer: intake.case_process_roles, as routing assigned them). They read and
    # work the case like its owner. Rows read without the column (older callers) hold none.
    process_role_holders: tuple[str, ...] = ()


class Access(BaseModel):
    allowed: bool
    # True when a member of staff reads a confidential or restricted case: the read goes to
    # the audit log.
    audited: bool = False


def reporter_ids(principal: Principal) -> tuple[str, ...]:
    """The reporter ids (`intake.cases.reporter_employee_id`) that are `principal`'s: their
    employee id and, when the portal's sign-in verified their address, the id of a case
    opened by mail from that address (`email:<address>`, threads.email_employee_id). The
    one place the reporter rule reads a principal: every door (a case, "My cases", the
    work queue) asks this. An unverified address (an API token's claim) adds nothing."""
    ids = [principal.employee_id] if principal.employee_id else []
    if principal.email_verified and principal.email:
        by_mail = sender_employee_id(principal.email)
        if by_mail is not None:
            ids.append(by_mail)
    return tuple(ids)


def is_reporter(principal: Principal, case: CaseFacts) -> bool:
    reporter = case.reporter_employee_id
    if case.anonymous or reporter is None:
        return False
    # The employee id is always among reporter_ids: checked first, so only a case opened
    # by mail pays for normalising the session's address.
    return reporter == principal.employee_id or (
        reporter.startswith("email:") and reporter in reporter_ids(principal)
    )


def case_access(principal: Principal, case: CaseFacts) -> Access:
    if is_reporter(principal, case):
        return Access(allowed=True)
    if not principal.has_any(*STAFF_ROLES):
        return Access(allowed=False)
    sensitivity = case.sensitivity or "restricted"
    audited = sensitivity in AUDITED_SENSITIVITIES
    if sensitivity != "restricted":
        return Access(allowed=True, audited=audited)
    mine = {principal.subject, principal.employee_id} - {None}
    allowed = (
        principal.has_any(*RESTRICTED_READERS)
        or case.owner_id in mine
        or case.logged_by in mine
        or case.submitted_by in mine
        or not mine.isdisjoint(case.process_role_holders)
    )
    return Access(allowed=allowed, audited=allowed)


def may_submit_for(principal: Principal, reporter: Reporter) -> str | None:
    """None when `principal` may raise a case for `reporter`, else the reason it may not."""
    if principal.has_any(*SUBMIT_ON_BEHALF_ROLES):
        return None
    if not principal.has_any("employee"):
        return "raising a case requires the employee, hr_agent or hr_manager role"
    if principal.employee_id is None:
        return "the token carries no employee_id"
    if principal.employee_id != reporter.employee_id:
        return "employees may only raise cases for themselves (reporter.employee_id)"
    return None


REPORTER_EMAIL_NOT_ON_FILE = "must be the address on your record"


def reporter_email_refusal(principal: Principal, reporter: Reporter) -> str | None:
    """None, or why `reporter.email` is refused: a person raising a case for themselves whose
    token carries the address on their HR record (`email` claim) may not give another one.

    Refused rather than silently replaced, so a client that thinks updates go elsewhere
    learns they do not. Case-insensitive (the same mailbox typed in other capitals passes).
    Raising for someone else (staff on behalf of an employee) is not checked here: those
    mails go to the HR directory's address when it knows the employee (notifications).
    """
    if principal.email is None or principal.employee_id != reporter.employee_id:
        return None
    if str(reporter.email).casefold() == principal.email.casefold():
        return None
    return REPORTER_EMAIL_NOT_ON_FILE


def submitter_actor(principal: Principal) -> Actor:
    if principal.has_any(*SUBMIT_ON_BEHALF_ROLES):
        return Actor(type="agent", id=principal.subject)
    return Actor(type="employee", id=principal.employee_id or principal.subject)


def idempotency_scope(principal: Principal, key: str) -> str:
    """Keys are per caller: another caller's key must never replay someone else's case."""
    return hashlib.sha256(f"{principal.subject}\x1f{key}".encode()).hexdigest()


# --- Messages, anonymous reports and phone calls ------------------------------------------


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Free text people type: any characters but NUL (Postgres text cannot hold it).
FreeText = Annotated[str, AfterValidator(_no_nul)]


class NewMessage(IntakeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    body: FreeText = Field(min_length=1, max_length=20_000)


class AnonymousReport(IntakeInput):
    """A report with no identity at all: no reporter, no contact details."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    subject: str = Field(min_length=3, max_length=200)
    description: FreeText = Field(min_length=10, max_length=20_000)
    category: str | None = Field(default=None, pattern=CATEGORY_PATTERN)
    urgent: bool = False
    respondents: Respondents = Field(default_factory=list)
    injury: InjuryInput | None = None

    @field_validator("subject")
    @classmethod
    def _single_line(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n\x00"):
            raise ValueError("subject must be a single line")
        return value


class PhoneCaller(IntakeInput):
    """Who called: an identified employee (all three fields) or free-text details."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    employee_id: str | None = Field(default=None, min_length=1, max_length=64)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: MailAddress | None = None
    details: str | None = Field(default=None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _identified_or_described(self) -> PhoneCaller:
        identified = (self.employee_id, self.name, self.email)
        if any(identified) and not all(identified):
            raise ValueError("an identified caller needs employee_id, name and email")
        if not any(identified) and not self.details:
            raise ValueError("give the caller's employee_id, name and email, or details")
        return self

    def reporter(self) -> Reporter | None:
        if self.employee_id and self.name and self.email:
            return Reporter(employee_id=self.employee_id, name=self.name, email=self.email)
        return None


class PhoneCall(IntakeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    caller: PhoneCaller
    called_at: PastInstant
    duration_seconds: int = Field(ge=0, le=24 * 3600)
    summary: str = Field(min_length=10, max_length=20_000)
    subject: str | None = Field(default=None, min_length=3, max_length=200)
    category: str | None = Field(default=None, pattern=CATEGORY_PATTERN)
    callback_number: str | None = Field(default=None, pattern=r"^\+?[0-9 ()\-.]{3,32}$")
    urgent: bool = False
    respondents: Respondents = Field(default_factory=list)
    injury: InjuryInput | None = None

    @field_validator("subject")
    @classmethod
    def _single_line(cls, value: str | None) -> str | None:
        if value is not None and any(ch in value for ch in "\r\n\x00"):
            raise ValueError("subject must be a single line")
        return value

    def case_subject(self) -> str:
        if self.subject:
            return self.subject
        first_line = self.summary.splitlines()[0].strip()
        title = first_line if len(first_line) <= 80 else first_line[:77].rstrip() + "..."
        return f"Phone call: {title}"


# --- Agent actions ---------------------------------------------------------------------------
# Staff work a case by requesting changes; routing (the lifecycle authority) decides and
# intake's read model follows its events. Who may request what:
NOTE_ROLES: tuple[Role, ...] = ("hr_agent", "hr_manager", "investigator")
STATUS_ROLES: tuple[Role, ...] = ("hr_agent", "hr_manager", "investigator")
CATEGORY_ROLES: tuple[Role, ...] = ("hr_agent", "hr_manager")
ASSIGNMENT_ROLES: tuple[Role, ...] = ("hr_manager",)

# The moves an agent may request (the values of CaseStatusChangeRequested.to_status).
RequestableStatus = Literal["in_progress", "waiting_on_employee", "resolved", "closed", "reopened"]
REOPENABLE_STATUSES = frozenset({"resolved", "closed"})
_OWNER_ID = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


class AgentNote(IntakeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    body: FreeText = Field(min_length=1, max_length=20_000)
    # Internal by default: a note reaches the employee only when the agent says so.
    internal: bool = True


class StatusChange(IntakeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    to_status: RequestableStatus
    reason: str | None = Field(default=None, max_length=2000)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str | None) -> str | None:
        # A blank reason from a form is no reason.
        return None if value is None else _no_nul(value) or None


class Recategorisation(IntakeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    category: str = Field(pattern=CATEGORY_PATTERN)
    reason: FreeText = Field(min_length=3, max_length=2000)

    @field_validator("category")
    @classmethod
    def _known(cls, value: str) -> str:
        # Routing dead-letters an unknown category; refusing it here tells the agent why.
        if value not in CATEGORIES:
            raise ValueError(f"unknown category; one of: {', '.join(sorted(CATEGORIES))}")
        return value


class AssignmentChange(IntakeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    owner_id: str = Field(pattern=_OWNER_ID)
    reason: FreeText = Field(min_length=3, max_length=2000)


# Staff record a later decision on a workplace injury's facts; routing decides whether a
# case conference becomes mandatory.
INJURY_ROLES: tuple[Role, ...] = ("hr_agent", "hr_manager", "investigator")


class InjuryFactsChange(IntakeInput):
    """The injury facts staff record: only the fields given change (null is a value:
    `suitable_employment_available: null` means "not yet known")."""

    model_config = ConfigDict(extra="forbid")
    date_of_injury: date | None = None
    serious: bool | None = None
    suitable_employment_available: bool | None = None
    # The claim's jurisdiction (a key of routing's statutory clock packs, e.g. "nsw").
    jurisdiction: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,31}$")

    @model_validator(mode="after")
    def _something(self) -> InjuryFactsChange:
        if not self.model_fields_set:
            raise ValueError(
                "give at least one of date_of_injury, serious, suitable_employment_available,"
                " jurisdiction"
            )
        if "serious" in self.model_fields_set and self.serious is None:
            raise ValueError("serious must be true or false")
        return self

    def applied_to(self, current: dict[str, Any] | None) -> InjuryInput:
        """The case's facts after this change (raises ValidationError naming the field)."""
        changed = {name: getattr(self, name) for name in self.model_fields_set}
        return InjuryInput.model_validate({**(current or {}), **changed})


# Staff say which employee a respondent routing could not match is; routing checks the
# id against its directory and applies the conflict-of-interest rule late.
RESPONDENT_ROLES: tuple[Role, ...] = ("hr_agent", "hr_manager", "investigator")


class RespondentResolutionChange(IntakeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    employee_id: str = Field(pattern=_OWNER_ID)
    reason: FreeText | None = Field(default=None, max_length=2000)

    @field_validator("reason")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


ActionRefusal = Literal["hidden", "own_case"]


def action_refusal(principal: Principal, case: CaseFacts) -> ActionRefusal | None:
    """Why `principal` (already holding the action's role) may not act on the case, if so.

    "hidden": they may not read it (answered like a missing case). "own_case": they reported
    it; an employee who is also staff must not work their own case.
    """
    if not case_access(principal, case).allowed:
        return "hidden"
    if is_reporter(principal, case):
        return "own_case"
    return None


def sees_internal_notes(principal: Principal, case: CaseFacts) -> bool:
    """Staff who may read the case see internal notes; the reporter never does."""
    return (
        not is_reporter(principal, case)
        and principal.has_any(*STAFF_ROLES)
        and case_access(principal, case).allowed
    )


def status_conflict(current: str, to_status: str | None = None) -> str | None:
    """Why a request cannot apply to a case in `current` status (409), as far as intake's
    read model can tell; routing still decides and refuses any other invalid move.
    `to_status` is given for a status change request."""
    if to_status == "reopened":
        if current in REOPENABLE_STATUSES:
            return None
        return f"only a resolved or closed case can be reopened; this case is {current}"
    if current in CLOSED_STATUSES:
        return "the case is closed; reopen it first"
    if to_status is not None and to_status == current:
        return f"the case is already {current}"
    return None


def status_options(current: str) -> tuple[RequestableStatus, ...]:
    """The moves a form offers from `current` (a hint: routing decides)."""
    if current in CLOSED_STATUSES:
        return ("reopened",)
    if current == "resolved":
        return ("closed", "reopened")
    moves: tuple[RequestableStatus, ...] = (
        "in_progress",
        "waiting_on_employee",
        "resolved",
        "closed",
    )
    return tuple(move for move in moves if move != current)
