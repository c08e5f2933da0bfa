"""Typed payloads per event type: the contract between services.

Each payload class names its `event_type` (the routing key) and `schema_version`.
A consumer parses `envelope.payload` with `parse_payload`, which refuses an
unknown type or a payload that does not match its schema.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.addresses import EventMailAddress
from shared.envelope import Actor, Envelope, PayloadDate, PayloadTime, new_envelope
from shared.privacy.fields import (
    PERSON,
    REPORTER_ROLE,
    Identified,
    Personal,
    PersonalIfAddress,
    SubjectRef,
)

Channel = Literal["api", "portal", "email", "phone"]
Sensitivity = Literal["normal", "confidential", "restricted"]
Priority = Literal["P1", "P2", "P3", "P4"]


class EventPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1


class Reporter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    privacy_subject: ClassVar[Identified] = PERSON
    # `email:<address>` for an email sender intake knows no employee id of: sealed then.
    employee_id: PersonalIfAddress[str] = Field(min_length=1, max_length=64)
    name: Personal[str] = Field(min_length=1, max_length=200)
    email: Personal[EventMailAddress]


class Person(BaseModel):
    """A member of staff the system addresses (an HR agent or manager)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    email: EventMailAddress


class InjuryDetails(BaseModel):
    """What routing needs to decide whether a case conference is mandatory."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    date_of_injury: PayloadDate | None = None
    serious: bool = False
    # False when the pre-injury employer has no suitable employment to offer.
    suitable_employment_available: bool | None = None
    # The claim's jurisdiction: a key of the policy's statutory clock packs (e.g. "nsw");
    # None: the owning team's jurisdiction applies.
    jurisdiction: str | None = Field(default=None, min_length=1, max_length=32)


class Attachment(BaseModel):
    """A stored document: the event carries a reference and a hash, never the bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    attachment_id: UUID
    filename: Personal[str] = Field(max_length=255)  # may name a person or their illness
    content_type: str = Field(max_length=255)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class CaseSubmitted(EventPayload):
    event_type: ClassVar[str] = "case.submitted"
    # Subject and description are the reporter's (an anonymous report's:
    # anonymous:<case_id>); a named respondent's name and email are the respondent's.
    privacy_subjects: ClassVar[dict[str, SubjectRef]] = {"*": "reporter"}
    privacy_roles: ClassVar[dict[str, str]] = {"reporter": REPORTER_ROLE}
    reference: str
    channel: Channel
    subject: Personal[str]
    description: Personal[str]
    # None for an anonymous report: nothing in the event identifies the reporter.
    reporter: Reporter | None
    anonymous: bool = False
    category: str | None = None
    submitted_at: PayloadTime
    # Employees the case is about (a respondent): never assigned, never notified.
    respondent_employee_ids: list[str] = Field(default_factory=list)
    # Respondents as named (id, name and/or email); routing resolves them against its
    # directory. Ids named here are also in respondent_employee_ids (older readers).
    respondents: list[RespondentNamed] = Field(default_factory=list, max_length=10)
    urgent: bool = False  # the reporter's own flag
    injury: InjuryDetails | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    # Phone: the agent who logged the call (also the envelope's actor).
    logged_by: str | None = None
    # A follow-up case opened from a reply to an old, closed case: that case's id.
    follows_up_case_id: UUID | None = None


class CaseRouted(EventPayload):
    event_type: ClassVar[str] = "case.routed"
    reference: str
    category: str
    category_source: Literal["reporter", "rules", "default"]
    matched_terms: list[str]
    sensitivity: Sensitivity
    priority: Priority
    priority_reasons: list[str]
    first_response_due: PayloadTime
    resolution_due: PayloadTime
    policy_hash: str


class CaseAssigned(EventPayload):
    event_type: ClassVar[str] = "case.assigned"
    reference: str
    team: str
    owner: Person
    strategy: str
    priority: Priority
    sensitivity: Sensitivity
    category: str
    first_response_due: PayloadTime
    previous_owner_id: str | None = None


class CaseStatusChanged(EventPayload):
    event_type: ClassVar[str] = "case.status_changed"
    reference: str
    from_status: str
    to_status: str
    reason: str | None = None


class NotificationSent(EventPayload):
    event_type: ClassVar[str] = "notification.sent"
    notification_id: UUID
    source_event_id: UUID
    channel: Literal["email", "webhook"]
    template: str
    audience: str
    recipient_id: str | None
    message_id: str


class NotificationFailed(EventPayload):
    event_type: ClassVar[str] = "notification.failed"
    notification_id: UUID
    source_event_id: UUID
    channel: Literal["email", "webhook"]
    template: str
    audience: str
    recipient_id: str | None
    attempts: int
    error: str


class CaseMessageReceived(EventPayload):
    """A reply or update from a party to the case (resumes a paused SLA clock)."""

    event_type: ClassVar[str] = "case.message_received"
    reference: str
    channel: Channel
    sender_role: Literal["reporter", "agent", "anonymous_reporter"]
    body: Personal[str]
    attachments: list[Attachment] = Field(default_factory=list)
    received_at: PayloadTime


class CaseNoteAdded(EventPayload):
    event_type: ClassVar[str] = "case.note_added"
    reference: str
    note_id: UUID
    body: Personal[str]
    internal: bool = True


class CaseRecategorisationRequested(EventPayload):
    """A person corrects the category; routing re-runs priority and SLA."""

    event_type: ClassVar[str] = "case.recategorisation_requested"
    category: str
    reason: str


class CaseAssignmentRequested(EventPayload):
    """An HR manager assigns or reassigns a case by hand."""

    event_type: ClassVar[str] = "case.assignment_requested"
    owner_id: str
    reason: str


class CaseStatusChangeRequested(EventPayload):
    """An agent moves a case (e.g. waiting_on_employee pauses the SLA clock)."""

    event_type: ClassVar[str] = "case.status_change_requested"
    to_status: Literal["in_progress", "waiting_on_employee", "resolved", "closed", "reopened"]
    reason: str | None = None


class CaseRequestRefused(EventPayload):
    """Routing did not apply a person's request; the reason goes back to the requester.

    A business outcome (a conflicted assignee, a move the lifecycle forbids, a request
    superseded by a later change), not a fault: faults are dead-lettered instead.
    """

    event_type: ClassVar[str] = "case.request_refused"
    reference: str
    request_event_id: UUID
    request_type: str
    reason: str


class CaseReopened(EventPayload):
    """Routing reopened a resolved or closed case (its status change is announced too, as
    `case.status_changed` to in_progress with a reason starting "reopened").

    `trigger`: "reporter_reply" when the reporter wrote to the case within the policy's
    `reopen_within_days` of its closure, "staff_request" when staff asked for it. The
    owner is told (notifications); the resolution clock runs again from `reopened_at`.
    Carries no case content.
    """

    event_type: ClassVar[str] = "case.reopened"
    reference: str
    owner_id: str
    trigger: Literal["reporter_reply", "staff_request"]
    closed_at: PayloadTime | None  # when the case was resolved or closed
    reopened_at: PayloadTime
    resolution_due: PayloadTime | None = None


class CaseFollowUpCaseRequested(EventPayload):
    """Routing asks intake to open a new case linked to this one (the envelope's case_id).

    The reporter wrote to a case resolved or closed longer ago than the policy's
    `reopen_within_days`: the message is not lost in the old case; intake opens a new
    case through its one `open_case` path, the message's text as its description, the
    old case's reporter as reporter, linked to the old case (`follows_up_case_id`).
    `message_event_id` (the `case.message_received` that arrived) makes it idempotent.
    """

    event_type: ClassVar[str] = "case.follow_up_case_requested"
    reference: str  # the old case's
    message_event_id: UUID
    channel: Channel
    body: Personal[str]
    attachments: list[Attachment] = Field(default_factory=list)
    received_at: PayloadTime
    closed_at: PayloadTime | None
    reason: str


class _SlaClockEvent(EventPayload):
    reference: str
    clock: Literal["first_response", "resolution"]
    due_at: PayloadTime
    owner_id: str | None


class CaseSlaWarning(_SlaClockEvent):
    event_type: ClassVar[str] = "case.sla_warning"


class CaseSlaBreached(_SlaClockEvent):
    event_type: ClassVar[str] = "case.sla_breached"


class CaseEscalated(EventPayload):
    event_type: ClassVar[str] = "case.escalated"
    reference: str
    level: int = Field(ge=1)
    escalated_to: Person
    reason: str


class CaseAssignmentNeeded(EventPayload):
    """Routing could not choose an owner (every candidate in the case's team and in the
    conflict fallback team is conflicted out or inactive): an HR manager must assign one.

    `reason` is routing's sentence, never who the respondents are; `notify` are the HR
    managers to ask (policy `staff`, minus anyone conflicted), their work contacts as in
    case.escalated."""

    event_type: ClassVar[str] = "case.assignment_needed"
    reference: str
    team: str  # the team the category routes to
    reason: str = Field(max_length=500)
    priority: Priority
    sensitivity: Sensitivity
    first_response_due: PayloadTime
    notify: list[Person]


class ConferenceRequired(EventPayload):
    """A case conference is mandatory (e.g. serious injury, no suitable employment)."""

    event_type: ClassVar[str] = "conference.required"
    reference: str
    reasons: list[str]
    due_by: PayloadTime | None = None


class DirectoryEmployeeUpdated(EventPayload):
    """An employee record from the HR system (routing keeps the org chart from these)."""

    event_type: ClassVar[str] = "directory.employee_updated"
    employee_id: str
    name: str
    email: EventMailAddress | None = None
    manager_id: str | None = None
    department: str | None = None
    active: bool = True


class RoutingPolicyLoaded(EventPayload):
    """Routing started with a policy file: its hash goes into the audit record."""

    event_type: ClassVar[str] = "routing.policy_loaded"
    policy_hash: str
    version: int
    source: str


class CaseViewed(EventPayload):
    """Audit-only: who read a case record, from where, when (no case content).

    Version 2 is the one shape for every producer (intake's staff reads, audit's own reads
    of the log); version 1 entries came in two shapes and are upcast on read
    (`upcast_payload`, README "One shape for audit.case_viewed").
    """

    event_type: ClassVar[str] = "audit.case_viewed"
    schema_version: ClassVar[int] = 2
    viewer: str
    roles: list[str]
    case_id: UUID
    client_ip: str | None
    user_agent: str | None = Field(default=None, max_length=512)
    # As claimed by the client or a proxy (X-Forwarded-For); not verified.
    forwarded_for: str | None = Field(default=None, max_length=512)
    view: str  # which page or endpoint showed it
    at: PayloadTime  # when it was read
    # The instant a replayed state was shown for (audit's "state" view), as requested.
    as_of: str | None = Field(default=None, max_length=64)


def _case_viewed_v1_to_v2(
    payload: dict[str, Any], case_id: UUID | None, occurred_at: datetime
) -> dict[str, Any]:
    """Version 1 had two shapes: intake's (`viewer`, `case_id`, `at` = read time) and the
    audit service's own (`subject`, `forwarded_for`, and `at` = the replayed instant, with
    the read time only in the envelope). Both become version 2; missing values are None."""
    if "viewer" in payload:  # intake's shape: version 2 minus the new optional fields
        return {"forwarded_for": None, "as_of": None, **payload}
    return {
        "viewer": payload.get("subject"),
        "roles": payload.get("roles") or [],
        "case_id": str(case_id) if case_id else None,
        "client_ip": payload.get("client_ip"),
        "user_agent": payload.get("user_agent"),
        "forwarded_for": payload.get("forwarded_for"),
        "view": payload.get("view"),
        "at": occurred_at.isoformat(),
        "as_of": payload.get("at"),
    }


Upcaster = Callable[[dict[str, Any], UUID | None, datetime], dict[str, Any]]
# (event_type, from schema_version) -> the payload one version up. Stored entries are never
# rewritten (the chain hashes their bytes): readers upcast what they read.
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("audit.case_viewed", 1): _case_viewed_v1_to_v2,
}


def upcast_payload(
    event_type: str,
    schema_version: int,
    payload: dict[str, Any],
    *,
    case_id: UUID | None,
    occurred_at: datetime,
) -> dict[str, Any]:
    """`payload` of `schema_version` brought up to the current version of `event_type`
    (unchanged when no upcaster applies). `case_id`/`occurred_at` are the envelope's."""
    while (upcaster := UPCASTERS.get((event_type, schema_version))) is not None:
        payload = upcaster(payload, case_id, occurred_at)
        schema_version += 1
    return payload


class AuditEventRefused(EventPayload):
    """Audit-only: a message the audit service refused to record (it was dead-lettered
    with the reason). Identifies the message without its body; the `refused_*` values
    are as claimed by the message (unverified, possibly not even a UUID)."""

    event_type: ClassVar[str] = "audit.event_refused"
    refused_event_id: str | None = Field(default=None, max_length=100)
    refused_event_type: str | None = Field(default=None, max_length=100)
    refused_producer: str | None = Field(default=None, max_length=100)
    refused_case_id: str | None = Field(default=None, max_length=100)
    routing_key: str = Field(max_length=255)
    reason: str = Field(max_length=2000)
    body_bytes: int = Field(ge=0)
    body_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


# --- Respondents and injury facts at every door ---


class RespondentNamed(BaseModel):
    """A respondent as the person raising the case named them: an employee id, or a name
    and/or an email that routing resolves against its employee directory."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    privacy_subject: ClassVar[Identified] = PERSON
    employee_id: str | None = Field(default=None, min_length=1, max_length=64)
    name: Personal[str | None] = Field(default=None, min_length=1, max_length=200)
    email: Personal[EventMailAddress | None] = None

    @model_validator(mode="after")
    def _named_somehow(self) -> RespondentNamed:
        if not (self.employee_id or self.name or self.email):
            raise ValueError("name a respondent by employee_id, name or email")
        return self


class RespondentResolution(BaseModel):
    """How routing matched one named respondent (by its position in case.submitted)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    position: int = Field(ge=0)
    # The directory's employee id; None while a person must resolve it.
    employee_id: str | None = None
    # "person": a member of staff resolved it by hand (case.respondent_resolution_requested).
    matched_by: Literal["employee_id", "email", "name", "person"] | None = None
    # Why it is not resolved: nobody matched, or more than one employee did.
    problem: Literal["not_found", "ambiguous"] | None = None


class CaseRespondentsResolved(EventPayload):
    """Routing resolved the case's named respondents against its directory: the resolved
    ones (and their management chain) are never owner or escalation target; `unresolved`
    ones need a person. Carries ids only, never names."""

    event_type: ClassVar[str] = "case.respondents_resolved"
    reference: str
    respondents: list[RespondentResolution]
    resolved_employee_ids: list[str]
    unresolved: int = Field(ge=0)


class CaseInjuryFactsRecorded(EventPayload):
    """Staff recorded (a later decision on) a workplace injury's facts: the case's facts
    as they now stand. Routing decides whether a case conference becomes mandatory."""

    event_type: ClassVar[str] = "case.injury_facts_recorded"
    reference: str
    injury: InjuryDetails


CaseSubmitted.model_rebuild()
# --- Staff work queue: routing's roster for intake ---


class RosterMember(BaseModel):
    """A member of HR staff as routing's policy names them (ids, not directory records)."""

    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    email: EventMailAddress


class RosterTeam(BaseModel):
    team: str = Field(min_length=1, max_length=64)  # the policy's key, as on case.assigned
    label: str = Field(max_length=200)
    lead: str | None = None
    calendar: str  # the name of one of the event's calendars
    members: list[RosterMember]


class RosterCalendar(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    time_zone: str  # IANA
    # "mon".."sun" -> ["09:00-17:30", ...]; a missing day is a day off.
    hours: dict[str, list[str]]
    holidays: list[PayloadDate] = Field(default_factory=list)


class RoutingRosterPublished(EventPayload):
    """Who works in which team, with which working calendar: routing publishes it on every
    start so intake can show staff by name, scope the work queue to a team and count the
    working time left on the SLA clocks. The latest policy's roster replaces the previous."""

    event_type: ClassVar[str] = "routing.roster_published"
    policy_hash: str
    version: int
    teams: list[RosterTeam]
    calendars: list[RosterCalendar]
    staff: list[RosterMember] = Field(default_factory=list)  # managers outside any team


# --- tasks on a case ---
# Staff ask (intake publishes the *_requested commands); routing, which owns every clock,
# decides and answers with the outcome (task.created, ...) or case.request_refused. Titles
# are staff-written single lines; a task's description travels only in its request.


class TaskCreationRequested(EventPayload):
    """A member of staff asks for a task on the case: exactly one of the due forms is set
    (`due_in_working_hours` counts in the owning team's calendar from the request)."""

    event_type: ClassVar[str] = "task.creation_requested"
    reference: str
    task_id: UUID
    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    assignee_id: str = Field(min_length=1, max_length=64)
    due_in_working_hours: float | None = Field(default=None, gt=0)
    due_at: PayloadTime | None = None


class TaskCompletionRequested(EventPayload):
    event_type: ClassVar[str] = "task.completion_requested"
    reference: str
    task_id: UUID


class TaskReassignmentRequested(EventPayload):
    event_type: ClassVar[str] = "task.reassignment_requested"
    reference: str
    task_id: UUID
    assignee_id: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=2000)


class TaskCancellationRequested(EventPayload):
    event_type: ClassVar[str] = "task.cancellation_requested"
    reference: str
    task_id: UUID
    reason: str = Field(min_length=1, max_length=2000)


class _TaskEvent(EventPayload):
    reference: str
    task_id: UUID
    title: str = Field(min_length=1, max_length=200)


class TaskCreated(_TaskEvent):
    """Routing accepted the task: its assignee (work contact, as in case.assigned) and the
    due instant computed in working time; `due_soon_at` is None when no reminder is due."""

    event_type: ClassVar[str] = "task.created"
    assignee: Person
    due_at: PayloadTime
    due_soon_at: PayloadTime | None = None


class TaskCompleted(_TaskEvent):
    event_type: ClassVar[str] = "task.completed"
    assignee_id: str


class TaskReassigned(_TaskEvent):
    event_type: ClassVar[str] = "task.reassigned"
    assignee: Person
    previous_assignee_id: str
    due_at: PayloadTime
    reason: str | None = None


class TaskCancelled(_TaskEvent):
    event_type: ClassVar[str] = "task.cancelled"
    assignee_id: str
    reason: str


class TaskDueSoon(_TaskEvent):
    """Routing's reminder timer: the task falls due at `due_at` (policy `tasks.due_soon`)."""

    event_type: ClassVar[str] = "task.due_soon"
    assignee: Person
    due_at: PayloadTime


class TaskOverdue(_TaskEvent):
    """The task was not done by `due_at`: the assignee is told and the task escalates to
    `escalated_to` (the case team's escalation ladder at policy `tasks.escalation_level`,
    never a respondent, someone in their management chain, or the assignee; None when the
    ladder has nobody eligible left)."""

    event_type: ClassVar[str] = "task.overdue"
    assignee: Person
    due_at: PayloadTime
    escalated_to: Person | None = None
    escalation_level: int | None = Field(default=None, ge=1)


TASK_EVENTS: tuple[type[EventPayload], ...] = (
    TaskCreationRequested,
    TaskCompletionRequested,
    TaskReassignmentRequested,
    TaskCancellationRequested,
    TaskCreated,
    TaskCompleted,
    TaskReassigned,
    TaskCancelled,
    TaskDueSoon,
    TaskOverdue,
)
# --- documents ---


class CaseDocumentAdded(EventPayload):
    """A member of staff added a file to a case (evidence, a document, a note's file).

    Carries the file's reference and SHA-256, never its bytes (they stay in intake), so the
    audit chain vouches for exactly this file. `shared`: the reporter may see and open it
    (never for evidence); `note_id`: the internal or shared note it belongs to.
    """

    event_type: ClassVar[str] = "case.document_added"
    reference: str
    document: Attachment
    evidence: bool = False
    shared: bool = False
    note_id: UUID | None = None
    description: str | None = Field(default=None, max_length=2000)


# --- auditor console ---


class PortalSessionEnded(EventPayload):
    """A portal session stopped being valid (sign-out, or replaced by a new sign-in).

    The audit service, which verifies the portal's session token itself for its console,
    cannot read intake's sessions: it refuses a token whose session this event ended.
    Ids only: the session id (the token's `jti`) and the subject."""

    event_type: ClassVar[str] = "portal.session_ended"
    session_id: UUID
    subject: str = Field(min_length=1, max_length=200)
    # provider_logout: the single sign-on provider ended the person's session there
    # (OpenID Connect back-channel logout).
    reason: Literal["signed_out", "replaced", "provider_logout"]
    ended_at: PayloadTime


# --- respondent resolution by a person ---


class CaseRespondentResolutionRequested(EventPayload):
    """A member of staff says which employee a flagged (unmatched) respondent is: the
    respondent at `position` (its place in case.submitted). Routing checks the id against
    its directory and answers with case.respondents_resolved, or case.request_refused."""

    event_type: ClassVar[str] = "case.respondent_resolution_requested"
    reference: str
    position: int = Field(ge=0, le=1000)
    employee_id: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=2000)


# --- case conferences (workplace injury) and statutory clocks ---
# Staff ask through intake's doors (the *_requested commands); routing, which owns the
# policy, the working calendars and every clock, checks the conference rules and answers
# with the decision (conference.planned, ...) or case.request_refused naming the rule.
# Notifications mails the participants and records what it relayed (notice_sent,
# agenda_sent, summary_sent). Consent, acknowledgements and objections are facts a person
# states at intake's doors. Decisions carry the conference as it now stands, so every
# consumer can act on one event without keeping a copy.

ConferenceRole = Literal[
    "worker",
    "employer_representative",
    "case_manager",
    "treating_doctor",
    "psychologist",
    "rehabilitation_provider",
    "union_representative",
    "support_person",
]
# Roles that see medical information: invited only once the worker's consent is recorded.
PRACTITIONER_ROLES: tuple[str, ...] = ("treating_doctor", "psychologist")
ConferenceMode = Literal["in_person", "telephone", "video"]
# Where an in-person conference is held: the worker's workplace by default, another venue
# (e.g. when worker and employer are in conflict), or within the worker's medical
# consultation (only with the worker's and the treating practitioner's consent).
ConferenceVenue = Literal["workplace", "other_venue", "medical_consultation"]
ConsentKind = Literal["practitioner_involvement", "medical_consultation"]


class ConferenceParticipant(BaseModel):
    """One person asked to attend. External participants (a treating doctor, a union
    representative) need no account: `email` is where their agenda, changes and summary
    go; `employee_id` is set for the worker and other employees."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    privacy_subject: ClassVar[Identified] = PERSON
    participant_id: UUID
    role: ConferenceRole
    name: Personal[str] = Field(min_length=1, max_length=200)
    email: Personal[EventMailAddress]
    organisation: str | None = Field(default=None, max_length=200)
    employee_id: str | None = Field(default=None, min_length=1, max_length=64)


class DesiredOutcomeProposal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    by: ConferenceRole
    text: Personal[str] = Field(min_length=1, max_length=2000)


class DesiredOutcome(BaseModel):
    """One topic the conference should settle ("future employment", "ongoing treatment"):
    what each side proposes and, once agreed before the meeting, the agreed wording."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    topic: str = Field(min_length=1, max_length=200)
    proposals: list[DesiredOutcomeProposal] = Field(default_factory=list, max_length=10)
    agreed: Personal[str | None] = Field(default=None, max_length=2000)


class ConferencePlan(BaseModel):
    """When, where and what: `scheduled_for` is the start instant (UTC on the bus; shown
    in `time_zone`, the owning team's calendar zone unless the request names one);
    `location` is the address for in-person conferences or the dial-in for telephone;
    `video_link` an https URL for video."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    purpose: Personal[str] = Field(min_length=1, max_length=2000)
    scheduled_for: PayloadTime
    duration_minutes: int = Field(ge=15, le=480)
    time_zone: str = Field(min_length=1, max_length=64)  # IANA
    mode: ConferenceMode
    venue: ConferenceVenue | None = None  # in_person only
    venue_reason: str | None = Field(default=None, max_length=2000)  # why not the workplace
    location: str | None = Field(default=None, max_length=500)
    video_link: str | None = Field(default=None, max_length=2000)
    agenda: list[Personal[str]] = Field(min_length=1, max_length=30)
    desired_outcomes: list[DesiredOutcome] = Field(min_length=1, max_length=10)


class ConferencePlanningRequested(EventPayload):
    """A member of staff plans a conference on a case (POST /api/v1/cases/{id}/conferences)."""

    event_type: ClassVar[str] = "conference.planning_requested"
    reference: str
    conference_id: UUID
    plan: ConferencePlan
    participants: list[ConferenceParticipant] = Field(min_length=1, max_length=20)


class ConferenceChangeRequested(EventPayload):
    """Staff change a planned conference: the complete new plan and participant list."""

    event_type: ClassVar[str] = "conference.change_requested"
    reference: str
    conference_id: UUID
    plan: ConferencePlan
    participants: list[ConferenceParticipant] = Field(min_length=1, max_length=20)
    reason: str = Field(min_length=1, max_length=2000)


class ConferenceCancellationRequested(EventPayload):
    event_type: ClassVar[str] = "conference.cancellation_requested"
    reference: str
    conference_id: UUID
    reason: str = Field(min_length=1, max_length=2000)


class ConferenceAttendance(BaseModel):
    """Whether a participant attended and, for telephone and video conferences, whether
    they had their turn to state their view (None for in-person conferences)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    participant_id: UUID
    attended: bool
    view_stated: bool | None = None


class ConferenceHoldRecordingRequested(EventPayload):
    """Staff record that the conference took place: when, and who attended."""

    event_type: ClassVar[str] = "conference.hold_recording_requested"
    reference: str
    conference_id: UUID
    held_at: PayloadTime
    attendance: list[ConferenceAttendance] = Field(min_length=1, max_length=20)


class ConferenceActionRequest(BaseModel):
    """An agreed action as staff write it: the owner is a participant or a member of staff
    (exactly one), due by the end of `due_on` in the owning team's calendar."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    action_id: UUID
    description: str = Field(min_length=1, max_length=1000)
    owner_participant_id: UUID | None = None
    owner_staff_id: str | None = Field(default=None, min_length=1, max_length=64)
    due_on: PayloadDate


class ConferenceObjection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    participant_id: UUID | None = None
    text: Personal[str] = Field(min_length=1, max_length=5000)


class ConferenceSummaryRecordingRequested(EventPayload):
    """Staff write the summary: agreed points, agreed actions, objections raised."""

    event_type: ClassVar[str] = "conference.summary_recording_requested"
    reference: str
    conference_id: UUID
    agreed_points: list[Personal[str]] = Field(min_length=1, max_length=50)
    actions: list[ConferenceActionRequest] = Field(default_factory=list, max_length=50)
    objections: list[ConferenceObjection] = Field(default_factory=list, max_length=50)


class ConferenceActionCompletionRequested(EventPayload):
    event_type: ClassVar[str] = "conference.action_completion_requested"
    reference: str
    conference_id: UUID
    action_id: UUID
    note: str | None = Field(default=None, max_length=2000)


class ConferenceActionReplanningRequested(EventPayload):
    """Re-plan an agreed action: a new due date keeps it tracked; none carries it out of
    this conference (to a later conference or another process), which ends it here."""

    event_type: ClassVar[str] = "conference.action_replanning_requested"
    reference: str
    conference_id: UUID
    action_id: UUID
    reason: str = Field(min_length=1, max_length=2000)
    due_on: PayloadDate | None = None


class ConferenceConsentRecorded(EventPayload):
    """A consent given (or withdrawn: `granted` False) for the case's conferences:
    `practitioner_involvement` — the worker lets the treating doctor or psychologist be
    invited and medical information be shared; `medical_consultation` — the conference may
    be held within the worker's medical consultation (needs the worker's and the treating
    practitioner's). Recorded by staff (with what it rests on) or by the worker in the portal."""

    event_type: ClassVar[str] = "conference.consent_recorded"
    reference: str
    consent: ConsentKind
    given_by: Literal["worker", "treating_doctor", "psychologist"]
    granted: bool = True
    recorded_via: Literal["portal", "staff"]
    basis: str | None = Field(default=None, max_length=2000)  # e.g. "signed form, 3 Dec"
    recorded_at: PayloadTime


class _ConferenceDecision(EventPayload):
    reference: str
    conference_id: UUID
    plan: ConferencePlan
    participants: list[ConferenceParticipant]
    # Participants not invited yet: practitioners waiting for the worker's consent.
    awaiting_consent: list[UUID] = Field(default_factory=list)
    # The calendar invitation's SEQUENCE (RFC 5545): 0 when planned, +1 on every change.
    sequence: int = Field(default=0, ge=0)
    owner_id: str | None = None  # the case owner (the case manager on hrcase's side)


class ConferencePlanned(_ConferenceDecision):
    """Routing accepted the plan: notice and agenda go out (the worker first); the
    agenda reaches the invited participants at least `notice_working_days` before."""

    event_type: ClassVar[str] = "conference.planned"
    notice_working_days: int = Field(ge=0)


class ConferenceRescheduled(_ConferenceDecision):
    """The plan changed (time, place, link, agenda, outcomes or participants): everyone
    invited gets the change. `changed` names the ConferencePlan fields (or
    "participants") that differ."""

    event_type: ClassVar[str] = "conference.rescheduled"
    changed: list[str]
    reason: str
    removed_participants: list[ConferenceParticipant] = Field(default_factory=list)


class ConferenceCancelled(_ConferenceDecision):
    event_type: ClassVar[str] = "conference.cancelled"
    reason: str


class ConferenceParticipantInvited(_ConferenceDecision):
    """A participant held back for consent is now invited (the worker's consent was
    recorded): the agenda goes to them."""

    event_type: ClassVar[str] = "conference.participant_invited"
    participant_id: UUID


class ConferenceHeld(EventPayload):
    event_type: ClassVar[str] = "conference.held"
    reference: str
    conference_id: UUID
    held_at: PayloadTime
    attendance: list[ConferenceAttendance]
    summary_due_at: PayloadTime


class ConferenceAction(BaseModel):
    """An agreed action as routing tracks it: its owner's contact and its due instant."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    action_id: UUID
    description: str = Field(min_length=1, max_length=1000)
    owner_participant_id: UUID | None = None
    owner_staff_id: str | None = None
    owner_name: str = Field(min_length=1, max_length=200)
    owner_email: EventMailAddress
    due_on: PayloadDate
    due_at: PayloadTime
    due_soon_at: PayloadTime | None = None


class ConferenceSummaryRecorded(_ConferenceDecision):
    """Routing accepted the summary: it goes to every participant (summary_sent), each of
    whom may acknowledge it or object through their own link; the actions are tracked."""

    event_type: ClassVar[str] = "conference.summary_recorded"
    agreed_points: list[Personal[str]]
    actions: list[ConferenceAction]
    objections: list[ConferenceObjection]
    summary_due_at: PayloadTime
    on_time: bool


class _ConferenceActionEvent(EventPayload):
    reference: str
    conference_id: UUID
    action_id: UUID
    description: str = Field(min_length=1, max_length=1000)
    owner_name: str = Field(min_length=1, max_length=200)
    owner_email: EventMailAddress
    due_at: PayloadTime
    owner_id: str | None = None  # the case owner


class ConferenceActionDueSoon(_ConferenceActionEvent):
    event_type: ClassVar[str] = "conference.action_due_soon"


class ConferenceActionOverdue(_ConferenceActionEvent):
    """Not done by `due_at`: escalates on the case team's ladder (policy
    `conferences.action_escalation_level`); None when nobody eligible is left."""

    event_type: ClassVar[str] = "conference.action_overdue"
    escalated_to: Person | None = None
    escalation_level: int | None = Field(default=None, ge=1)


class ConferenceActionCompleted(_ConferenceActionEvent):
    event_type: ClassVar[str] = "conference.action_completed"
    note: str | None = None
    on_time: bool


class ConferenceActionReplanned(_ConferenceActionEvent):
    """A new due date (`due_at` is then the new instant) or, when `ended`, carried out of
    this conference."""

    event_type: ClassVar[str] = "conference.action_replanned"
    reason: str
    ended: bool


class ConferenceCompleted(EventPayload):
    """Every agreed action is done or re-planned out of the conference."""

    event_type: ClassVar[str] = "conference.completed"
    reference: str
    conference_id: UUID
    actions_completed: int = Field(ge=0)
    actions_replanned: int = Field(ge=0)


class _ConferenceMailed(EventPayload):
    """Notifications relayed a conference mail to one participant (`notification_id` is
    the notification.sent that proves delivery to the relay)."""

    reference: str
    conference_id: UUID
    participant_id: UUID
    role: ConferenceRole
    notification_id: UUID
    sent_at: PayloadTime


class ConferenceNoticeSent(_ConferenceMailed):
    """The worker was told a conference is intended and why (before any agenda goes out)."""

    event_type: ClassVar[str] = "conference.notice_sent"


class ConferenceAgendaSent(_ConferenceMailed):
    """The written agenda with its calendar invitation (.ics, METHOD `method`, UID
    `ics_uid`, SEQUENCE `sequence`) reached the relay for this participant."""

    event_type: ClassVar[str] = "conference.agenda_sent"
    ics_uid: str = Field(min_length=1, max_length=255)
    sequence: int = Field(ge=0)
    method: Literal["REQUEST", "CANCEL"]


class ConferenceSummarySent(_ConferenceMailed):
    """The summary's link (signed, expiring at `link_expires_at`) reached the relay."""

    event_type: ClassVar[str] = "conference.summary_sent"
    link_expires_at: PayloadTime


class ConferenceAcknowledged(EventPayload):
    """A participant acknowledged receipt of the summary (their signed link, or the
    worker in the portal)."""

    event_type: ClassVar[str] = "conference.acknowledged"
    reference: str
    conference_id: UUID
    participant_id: UUID
    role: ConferenceRole
    acknowledged_at: PayloadTime


class ConferenceObjectionRaised(EventPayload):
    event_type: ClassVar[str] = "conference.objection_raised"
    reference: str
    conference_id: UUID
    participant_id: UUID
    role: ConferenceRole
    objection: Personal[str] = Field(min_length=1, max_length=5000)
    raised_at: PayloadTime


# Statutory clocks: named deadlines from the policy's packs (a jurisdiction's rules, or
# hrcase's own conference rules), in working or calendar time, started by an event on the
# case and met by another (or by staff recording it). Defaults, never legal advice.


class _StatutoryClockEvent(EventPayload):
    reference: str
    pack: str = Field(min_length=1, max_length=64)  # e.g. "nsw", "conference_rules"
    clock: str = Field(min_length=1, max_length=64)  # e.g. "insurer_contact"
    label: str = Field(min_length=1, max_length=200)
    citation: str = Field(max_length=500)
    due_at: PayloadTime
    conference_id: UUID | None = None
    owner_id: str | None = None  # the case owner


class StatutoryClockStarted(_StatutoryClockEvent):
    event_type: ClassVar[str] = "statutory_clock.started"
    basis: Literal["working", "calendar"]
    started_at: PayloadTime
    trigger: str  # the event type that started it
    due_soon_at: PayloadTime | None = None


class StatutoryClockDueSoon(_StatutoryClockEvent):
    event_type: ClassVar[str] = "statutory_clock.due_soon"


class StatutoryClockBreached(_StatutoryClockEvent):
    """The deadline passed unmet: escalates on the case team's ladder (None when nobody
    eligible is left or the pack says not to)."""

    event_type: ClassVar[str] = "statutory_clock.breached"
    escalated_to: Person | None = None
    escalation_level: int | None = Field(default=None, ge=1)


class StatutoryClockMet(_StatutoryClockEvent):
    event_type: ClassVar[str] = "statutory_clock.met"
    met_at: PayloadTime
    on_time: bool
    met_by: str  # the event type that met it, or "staff"


class StatutoryClockCompletionRequested(EventPayload):
    """Staff record that a clock's obligation was fulfilled outside hrcase (e.g. the
    insurer was notified)."""

    event_type: ClassVar[str] = "statutory_clock.completion_requested"
    reference: str
    pack: str = Field(min_length=1, max_length=64)
    clock: str = Field(min_length=1, max_length=64)
    note: str | None = Field(default=None, max_length=2000)
    completed_at: PayloadTime


CONFERENCE_EVENTS: tuple[type[EventPayload], ...] = (
    ConferencePlanningRequested,
    ConferenceChangeRequested,
    ConferenceCancellationRequested,
    ConferenceHoldRecordingRequested,
    ConferenceSummaryRecordingRequested,
    ConferenceActionCompletionRequested,
    ConferenceActionReplanningRequested,
    ConferenceConsentRecorded,
    ConferencePlanned,
    ConferenceRescheduled,
    ConferenceCancelled,
    ConferenceParticipantInvited,
    ConferenceHeld,
    ConferenceSummaryRecorded,
    ConferenceActionDueSoon,
    ConferenceActionOverdue,
    ConferenceActionCompleted,
    ConferenceActionReplanned,
    ConferenceCompleted,
    ConferenceNoticeSent,
    ConferenceAgendaSent,
    ConferenceSummarySent,
    ConferenceAcknowledged,
    ConferenceObjectionRaised,
    StatutoryClockStarted,
    StatutoryClockDueSoon,
    StatutoryClockBreached,
    StatutoryClockMet,
    StatutoryClockCompletionRequested,
)


# --- processes: investigations and independent case management (mediation) ---
# A case is worked through a process the policy declares (`processes:`): ordered stages
# with entry requirements and working-time targets. Routing owns the process a case is
# in, its stage, who holds each process role (investigator, case manager, appeal hearer)
# and every clock (stage targets, the appeal window, agreement obligations, follow-up
# check-ins): staff ask through intake's doors (the *_requested commands) and routing
# answers with the decision or case.request_refused naming the rule. What was said,
# found and agreed are facts people record at intake's doors (investigation.*,
# mediation.*, agreement.*, case.outcome_decided, case.appeal_*); routing reads them to
# judge stage requirements. Free text here (allegations, statements, findings, accounts,
# notes, terms) is sensitive: notifications never binds to an event that carries it,
# except to take ids, instants and the work contacts of the people it mails.

# Roles a person holds in a process. The investigator and the case manager are never a
# respondent, anyone in a respondent's (or, for the case manager, either party's)
# management chain, or anyone who declared a conflict on the case; the appeal hearer is
# moreover not yet involved (not the investigator, the outcome's decider or approver).
ProcessRole = Literal["investigator", "case_manager", "appeal_hearer"]
# Who a statement or an interview is with.
InterviewRole = Literal["complainant", "respondent", "witness"]
AllegationType = Literal[
    "harassment",
    "sexual_harassment",
    "bullying",
    "discrimination",
    "victimisation",
    "misconduct",
    "fraud",
    "safety",
    "other",
]
InterimMeasureKind = Literal[
    "separation_of_parties",
    "change_of_reporting_line",
    "paid_leave",
    "remote_work",
    "suspension",
    "other",
]
FindingValue = Literal["substantiated", "not_substantiated", "inconclusive"]
OutcomeActionKind = Literal[
    "training",
    "warning",
    "final_warning",
    "dismissal",
    "policy_change",
    "mediation",
    "no_action",
    "other",
]
# The two sides of an independent case-management process.
PartyRole = Literal["employee", "employer_representative"]


class CaseProcessChangeRequested(EventPayload):
    """Staff switch the case to another of the policy's processes, with a reason
    (POST /api/v1/cases/{id}/process). Routing answers case.process_assigned or refuses."""

    event_type: ClassVar[str] = "case.process_change_requested"
    reference: str
    process: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2000)


class CaseStageChangeRequested(EventPayload):
    """Staff move the case to a stage of its process (POST /api/v1/cases/{id}/stage).
    A move forward must meet the stage's requirements; a move back needs a reason; the
    final stage needs one of the process's `endings` and a reason."""

    event_type: ClassVar[str] = "case.stage_change_requested"
    reference: str
    stage: str = Field(min_length=1, max_length=64)
    ending: str | None = Field(default=None, min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=2000)


class CaseProcessRoleAssignmentRequested(EventPayload):
    """Staff name the person who holds a process role on the case
    (POST /api/v1/cases/{id}/process-roles)."""

    event_type: ClassVar[str] = "case.process_role_assignment_requested"
    reference: str
    role: ProcessRole
    staff_id: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=2000)


class CaseConflictDeclared(EventPayload):
    """A member of staff declares a conflict of interest on the case (themselves, or
    another on their behalf): routing never gives them a process role on it."""

    event_type: ClassVar[str] = "case.conflict_declared"
    reference: str
    staff_id: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2000)


class ProcessStage(BaseModel):
    """A stage as the policy declares it: `target_working_days` in the owning team's
    calendar (None: no clock)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    label: str = Field(min_length=1, max_length=200)
    target_working_days: float | None = Field(default=None, gt=0)


class CaseProcessAssigned(EventPayload):
    """Routing put the case in a process: by the policy's default for its category
    (`assigned_by: policy`, when first routed) or on staff's request with a reason."""

    event_type: ClassVar[str] = "case.process_assigned"
    reference: str
    process: str
    label: str
    stages: list[ProcessStage] = Field(min_length=1)
    endings: list[str] = Field(default_factory=list)
    previous_process: str | None = None
    assigned_by: Literal["policy", "staff"]
    reason: str | None = Field(default=None, max_length=2000)
    # The process's policy: an interviewee may bring a companion (a colleague or a
    # trade-union representative) to an investigation interview.
    companion_allowed: bool = True


class CaseStageEntered(EventPayload):
    """The case entered a stage: `target_at` is when its working-time target falls due
    (None: no clock); `ending` and `reason` are set when it entered the final stage."""

    event_type: ClassVar[str] = "case.stage_entered"
    reference: str
    process: str
    stage: str
    label: str
    previous_stage: str | None = None
    direction: Literal["start", "forward", "back", "final"]
    target_at: PayloadTime | None = None
    due_soon_at: PayloadTime | None = None
    ending: str | None = None
    reason: str | None = Field(default=None, max_length=2000)
    owner_id: str | None = None


class _StageClockEvent(EventPayload):
    reference: str
    process: str
    stage: str
    label: str
    target_at: PayloadTime
    owner: Person | None = None  # the case owner, told


class CaseStageDueSoon(_StageClockEvent):
    event_type: ClassVar[str] = "case.stage_due_soon"


class CaseStageOverdue(_StageClockEvent):
    """The stage outlived its target: escalated along the case team's ladder."""

    event_type: ClassVar[str] = "case.stage_overdue"
    escalated_to: Person | None = None


class CaseProcessRoleAssigned(EventPayload):
    """Routing accepted the person for the role (work contact, as in case.assigned)."""

    event_type: ClassVar[str] = "case.process_role_assigned"
    reference: str
    process: str
    role: ProcessRole
    person: Person
    previous_id: str | None = None
    reason: str | None = Field(default=None, max_length=2000)


# ---- investigation: facts recorded at intake's doors by the investigator ----


class InvestigationAllegationRecorded(EventPayload):
    """One allegation, about one respondent (an employee id from the directory)."""

    event_type: ClassVar[str] = "investigation.allegation_recorded"
    # The summary is the complainant's (the case's reporter); the name the respondent's.
    privacy_subjects: ClassVar[dict[str, SubjectRef]] = {
        "respondent_name": Identified(employee_id="respondent_employee_id")
    }
    reference: str
    allegation_id: UUID
    allegation_type: AllegationType
    summary: Personal[str] = Field(min_length=1, max_length=5000)
    respondent_employee_id: str = Field(min_length=1, max_length=64)
    respondent_name: Personal[str | None] = Field(default=None, max_length=200)
    occurred_on: PayloadDate | None = None


class InvestigationInterimMeasureRecorded(EventPayload):
    """A measure taken while the investigation runs (e.g. separating the parties)."""

    event_type: ClassVar[str] = "investigation.interim_measure_recorded"
    reference: str
    measure_id: UUID
    kind: InterimMeasureKind
    description: Personal[str] = Field(min_length=1, max_length=2000)
    applies_to: list[str] = Field(default_factory=list, max_length=20)  # employee ids


class Interviewee(BaseModel):
    """Who is interviewed: `email` is where the invitation goes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    privacy_subject: ClassVar[Identified] = PERSON
    role: InterviewRole
    name: Personal[str] = Field(min_length=1, max_length=200)
    email: Personal[EventMailAddress]
    employee_id: str | None = Field(default=None, min_length=1, max_length=64)


class InvestigationInterviewScheduled(EventPayload):
    """An interview: `scheduled_for` UTC, shown in `time_zone`; `companion_allowed` per
    the policy (a colleague or a trade-union representative, UK ERA 1999 s 10 style)."""

    event_type: ClassVar[str] = "investigation.interview_scheduled"
    reference: str
    interview_id: UUID
    interviewee: Interviewee
    scheduled_for: PayloadTime
    duration_minutes: int = Field(ge=15, le=480)
    time_zone: str = Field(min_length=1, max_length=64)
    location: str | None = Field(default=None, max_length=500)
    video_link: str | None = Field(default=None, max_length=2000)
    companion_allowed: bool = True
    interviewer: Person


class InvestigationStatementRecorded(EventPayload):
    """A written statement: what the person said, in an interview or in writing."""

    event_type: ClassVar[str] = "investigation.statement_recorded"
    privacy_subjects: ClassVar[dict[str, SubjectRef]] = {
        "*": Identified(employee_id="given_by_employee_id")
    }
    reference: str
    statement_id: UUID
    interview_id: UUID | None = None
    given_by_role: InterviewRole
    given_by_name: Personal[str] = Field(min_length=1, max_length=200)
    given_by_employee_id: str | None = Field(default=None, min_length=1, max_length=64)
    text: Personal[str] = Field(min_length=1, max_length=50000)
    allegation_ids: list[UUID] = Field(default_factory=list, max_length=50)
    companion_name: Personal[str | None] = Field(default=None, max_length=200)


class InvestigationStatementReviewed(EventPayload):
    """The person shown their statement confirms it, or gives corrections."""

    event_type: ClassVar[str] = "investigation.statement_reviewed"
    reference: str
    statement_id: UUID
    confirmed: bool
    corrections: Personal[str | None] = Field(default=None, max_length=20000)


class InvestigationEvidenceAdded(EventPayload):
    """An entry in the evidence log: a document (its attachment and hash) or an item
    (its description; `sha256` of the item's digital copy when there is one)."""

    event_type: ClassVar[str] = "investigation.evidence_added"
    reference: str
    evidence_id: UUID
    kind: Literal["document", "item"]
    description: Personal[str] = Field(min_length=1, max_length=2000)
    source: str = Field(min_length=1, max_length=500)  # where it came from
    collected_by: str = Field(min_length=1, max_length=64)  # staff id
    collected_at: PayloadTime
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    attachment: Attachment | None = None
    allegation_ids: list[UUID] = Field(default_factory=list, max_length=50)


class InvestigationFindingRecorded(EventPayload):
    """The finding on one allegation, with the reasoning (balance of probabilities)."""

    event_type: ClassVar[str] = "investigation.finding_recorded"
    reference: str
    finding_id: UUID
    allegation_id: UUID
    finding: FindingValue
    reasoning: Personal[str] = Field(min_length=1, max_length=20000)


class OutcomeAction(BaseModel):
    """One action the outcome decides: `concerns_employee_id` None for a general action
    (training for a team, a policy change) both parties are told of."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    action_id: UUID
    kind: OutcomeActionKind
    description: Personal[str] = Field(min_length=1, max_length=2000)
    concerns_employee_id: str | None = Field(default=None, min_length=1, max_length=64)


class CaseOutcomeDecided(EventPayload):
    """The investigator's decided outcome (summary and actions), awaiting approval."""

    event_type: ClassVar[str] = "case.outcome_decided"
    reference: str
    outcome_id: UUID
    summary: Personal[str] = Field(min_length=1, max_length=20000)
    actions: list[OutcomeAction] = Field(min_length=1, max_length=30)
    decided_by: str = Field(min_length=1, max_length=64)  # staff id


class CaseOutcomeApprovalRequested(EventPayload):
    """A second person approves the decided outcome (`approver_id` is who signed in)."""

    event_type: ClassVar[str] = "case.outcome_approval_requested"
    reference: str
    outcome_id: UUID
    approver_id: str = Field(min_length=1, max_length=64)


class CaseOutcomeApproved(EventPayload):
    """Routing accepted the approver (named by the policy, not the decider or the
    investigator, not conflicted): both parties are now informed in writing, each of what
    concerns them; an appeal may be lodged until `appeal_window_ends_at`. `respondents`
    are the work contacts of the respondents the allegations name (the complainant is
    the case's reporter)."""

    event_type: ClassVar[str] = "case.outcome_approved"
    reference: str
    outcome_id: UUID
    approver: Person
    decided_by: str
    appeal_window_ends_at: PayloadTime
    respondents: list[Person] = Field(default_factory=list)


class CaseAppealLodged(EventPayload):
    """A party appeals the approved outcome within the window, with grounds."""

    event_type: ClassVar[str] = "case.appeal_lodged"
    reference: str
    appeal_id: UUID
    outcome_id: UUID
    by_role: Literal["complainant", "respondent"]
    by_employee_id: str | None = Field(default=None, min_length=1, max_length=64)
    grounds: Personal[str] = Field(min_length=1, max_length=20000)


class CaseAppealWindowClosed(EventPayload):
    """Routing's timer: the window passed (`appealed` tells whether one was lodged)."""

    event_type: ClassVar[str] = "case.appeal_window_closed"
    reference: str
    outcome_id: UUID
    appealed: bool


class CaseAppealDecided(EventPayload):
    """The appeal hearer's decision, with the reasoning."""

    event_type: ClassVar[str] = "case.appeal_decided"
    reference: str
    appeal_id: UUID
    decision: Literal["upheld", "partly_upheld", "dismissed"]
    reasoning: Personal[str] = Field(min_length=1, max_length=20000)
    decided_by: str = Field(min_length=1, max_length=64)


# ---- independent case management (mediation): facts recorded by the case manager ----


class MediationParty(BaseModel):
    """One side: the employee, or the employer's representative (their work contact)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    privacy_subject: ClassVar[Identified] = PERSON
    role: PartyRole
    employee_id: str = Field(min_length=1, max_length=64)
    name: Personal[str] = Field(min_length=1, max_length=200)
    email: Personal[EventMailAddress]


class MediationAssessmentRecorded(EventPayload):
    """Initial assessment of one party: their account, desired outcomes and documents."""

    event_type: ClassVar[str] = "mediation.assessment_recorded"
    privacy_subjects: ClassVar[dict[str, SubjectRef]] = {"*": "party"}
    reference: str
    party: MediationParty
    account: Personal[str] = Field(min_length=1, max_length=20000)
    desired_outcomes: list[Personal[str]] = Field(min_length=1, max_length=20)
    documents: list[Attachment] = Field(default_factory=list, max_length=20)


class MediationGroundRulesProposed(EventPayload):
    """The case manager proposes ground rules (a new proposal replaces the last)."""

    event_type: ClassVar[str] = "mediation.ground_rules_proposed"
    reference: str
    ground_rules_id: UUID
    rules: list[str] = Field(min_length=1, max_length=30)
    parties: list[MediationParty] = Field(min_length=2, max_length=2)


class MediationGroundRulesAccepted(EventPayload):
    """One party accepted the proposed ground rules (recorded per party)."""

    event_type: ClassVar[str] = "mediation.ground_rules_accepted"
    reference: str
    ground_rules_id: UUID
    party_role: PartyRole
    employee_id: str = Field(min_length=1, max_length=64)


class MediationMeetingScheduled(EventPayload):
    """A facilitated discussion with both parties."""

    event_type: ClassVar[str] = "mediation.meeting_scheduled"
    reference: str
    meeting_id: UUID
    scheduled_for: PayloadTime
    duration_minutes: int = Field(ge=15, le=480)
    time_zone: str = Field(min_length=1, max_length=64)
    location: str | None = Field(default=None, max_length=500)
    video_link: str | None = Field(default=None, max_length=2000)
    parties: list[MediationParty] = Field(min_length=2, max_length=2)
    case_manager: Person


class MediationMeetingHeld(EventPayload):
    """What was discussed and proposed (shared with both parties) and the case manager's
    own notes (privileged: only the case manager and auditors read them)."""

    event_type: ClassVar[str] = "mediation.meeting_held"
    reference: str
    meeting_id: UUID
    held_at: PayloadTime
    discussed: Personal[str] = Field(min_length=1, max_length=20000)
    proposals: list[Personal[str]] = Field(default_factory=list, max_length=30)
    privileged_notes: Personal[str | None] = Field(default=None, max_length=20000)


class AgreementTerm(BaseModel):
    """One term; a term with an `owner_role` and `due_on` is a tracked obligation, due by
    the end of that day in the owning team's calendar."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    term_id: UUID
    text: Personal[str] = Field(min_length=1, max_length=2000)
    owner_role: PartyRole | None = None
    due_on: PayloadDate | None = None


class AgreementDrafted(EventPayload):
    """The written agreement (a new version replaces the last; acceptances are per
    version)."""

    event_type: ClassVar[str] = "agreement.drafted"
    reference: str
    agreement_id: UUID
    version: int = Field(ge=1)
    terms: list[AgreementTerm] = Field(min_length=1, max_length=50)
    parties: list[MediationParty] = Field(min_length=2, max_length=2)


class AgreementAccepted(EventPayload):
    """One party accepted this version of the agreement."""

    event_type: ClassVar[str] = "agreement.accepted"
    reference: str
    agreement_id: UUID
    version: int = Field(ge=1)
    party_role: PartyRole
    employee_id: str = Field(min_length=1, max_length=64)


class AgreementObligation(BaseModel):
    """A tracked obligation as routing runs it: due instant and reminder instant."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    term_id: UUID
    owner_role: PartyRole
    due_at: PayloadTime
    due_soon_at: PayloadTime | None = None


class AgreementInForce(EventPayload):
    """Routing: every party accepted this version; its obligations' clocks run and the
    follow-up check-ins are scheduled."""

    event_type: ClassVar[str] = "agreement.in_force"
    reference: str
    agreement_id: UUID
    version: int
    obligations: list[AgreementObligation] = Field(default_factory=list)
    follow_ups_at: list[PayloadTime] = Field(default_factory=list)


class _ObligationClockEvent(EventPayload):
    reference: str
    agreement_id: UUID
    term_id: UUID
    owner_role: PartyRole
    owner: Person | None = None  # the party who owes it (work contact)
    due_at: PayloadTime
    case_manager: Person | None = None


class AgreementObligationDueSoon(_ObligationClockEvent):
    event_type: ClassVar[str] = "agreement.obligation_due_soon"


class AgreementObligationOverdue(_ObligationClockEvent):
    """Due and unmet: escalated along the case team's ladder."""

    event_type: ClassVar[str] = "agreement.obligation_overdue"
    escalated_to: Person | None = None


class AgreementObligationMet(EventPayload):
    """The case manager records an obligation met (with what shows it)."""

    event_type: ClassVar[str] = "agreement.obligation_met"
    reference: str
    agreement_id: UUID
    term_id: UUID
    met_on: PayloadDate
    note: str | None = Field(default=None, max_length=2000)


class CaseFollowUpDue(EventPayload):
    """Routing's timer: a check-in after the agreement falls due (policy's
    `follow_up_after_working_days`, counted from the agreement coming into force)."""

    event_type: ClassVar[str] = "case.follow_up_due"
    reference: str
    agreement_id: UUID
    check_in: int = Field(ge=1)  # 1 = the first check-in
    due_at: PayloadTime
    case_manager: Person | None = None


PROCESS_EVENTS: tuple[type[EventPayload], ...] = (
    CaseProcessChangeRequested,
    CaseStageChangeRequested,
    CaseProcessRoleAssignmentRequested,
    CaseConflictDeclared,
    CaseProcessAssigned,
    CaseStageEntered,
    CaseStageDueSoon,
    CaseStageOverdue,
    CaseProcessRoleAssigned,
    InvestigationAllegationRecorded,
    InvestigationInterimMeasureRecorded,
    InvestigationInterviewScheduled,
    InvestigationStatementRecorded,
    InvestigationStatementReviewed,
    InvestigationEvidenceAdded,
    InvestigationFindingRecorded,
    CaseOutcomeDecided,
    CaseOutcomeApprovalRequested,
    CaseOutcomeApproved,
    CaseAppealLodged,
    CaseAppealWindowClosed,
    CaseAppealDecided,
    MediationAssessmentRecorded,
    MediationGroundRulesProposed,
    MediationGroundRulesAccepted,
    MediationMeetingScheduled,
    MediationMeetingHeld,
    AgreementDrafted,
    AgreementAccepted,
    AgreementInForce,
    AgreementObligationDueSoon,
    AgreementObligationOverdue,
    AgreementObligationMet,
    CaseFollowUpDue,
)


# --- Privacy: legal holds and retention (issue #14; README "Retention schedule and legal
# holds"). Ids only: a data subject is named by its subject id (`employee:<id>`,
# `email:<sha256 hex>`, `anonymous:<case id>`, shared.privacy.keys.subject_for), never by
# a name or an address.

SUBJECT_ID_PATTERN = r"^(employee|email|anonymous):[^@]{1,128}$"


class PrivacyLegalHoldPlaced(EventPayload):
    """Intake: a person with the role placed a legal hold; it blocks retention erasure
    and erasure requests of what it covers until released. Exactly one of `case_id`,
    `subject_id` or `case_ids` (a matter: a named set of cases) says what it covers."""

    event_type: ClassVar[str] = "privacy.legal_hold_placed"
    hold_id: UUID
    case_id: UUID | None = None
    subject_id: str | None = Field(default=None, pattern=SUBJECT_ID_PATTERN)
    case_ids: list[UUID] = Field(default_factory=list, max_length=500)
    reason: str = Field(min_length=1, max_length=2000)
    placed_at: PayloadTime

    @model_validator(mode="after")
    def _covers_one_thing(self) -> PrivacyLegalHoldPlaced:
        given = [self.case_id is not None, self.subject_id is not None, bool(self.case_ids)]
        if sum(given) != 1:
            raise ValueError("a hold covers exactly one of case_id, subject_id, case_ids")
        return self


class PrivacyLegalHoldReleased(EventPayload):
    """Intake: the hold no longer blocks anything (a blocked retention is checked again)."""

    event_type: ClassVar[str] = "privacy.legal_hold_released"
    hold_id: UUID
    reason: str = Field(min_length=1, max_length=2000)
    released_at: PayloadTime


class PrivacyRetentionErased(EventPayload):
    """Routing: a closed case's retention period ended with no legal hold covering it;
    the keys of its scope (every data subject's) were destroyed under `rule`. Every
    service scrubs its read-model copies of the case, keeping the anonymous skeleton."""

    event_type: ClassVar[str] = "privacy.retention_erased"
    case_id: UUID
    subject_ids: list[str] = Field(default_factory=list, max_length=1000)
    rule: str = Field(min_length=1, max_length=500)
    closed_at: PayloadTime
    erased_at: PayloadTime


PRIVACY_HOLD_EVENTS: tuple[type[EventPayload], ...] = (
    PrivacyLegalHoldPlaced,
    PrivacyLegalHoldReleased,
    PrivacyRetentionErased,
)


EVENT_TYPES: dict[str, type[EventPayload]] = {
    cls.event_type: cls
    for cls in (
        CaseSubmitted,
        CaseRouted,
        CaseAssigned,
        CaseStatusChanged,
        NotificationSent,
        NotificationFailed,
        CaseMessageReceived,
        CaseNoteAdded,
        CaseRecategorisationRequested,
        CaseAssignmentRequested,
        CaseStatusChangeRequested,
        CaseRequestRefused,
        CaseSlaWarning,
        CaseSlaBreached,
        CaseEscalated,
        ConferenceRequired,
        DirectoryEmployeeUpdated,
        RoutingPolicyLoaded,
        CaseViewed,
        CaseReopened,
        CaseFollowUpCaseRequested,
        AuditEventRefused,
        CaseAssignmentNeeded,
        CaseRespondentsResolved,
        CaseInjuryFactsRecorded,
        RoutingRosterPublished,
        CaseDocumentAdded,
        PortalSessionEnded,
        CaseRespondentResolutionRequested,
    )
}
EVENT_TYPES.update({cls.event_type: cls for cls in TASK_EVENTS})
EVENT_TYPES.update({cls.event_type: cls for cls in CONFERENCE_EVENTS})
EVENT_TYPES.update({cls.event_type: cls for cls in PROCESS_EVENTS})
EVENT_TYPES.update({cls.event_type: cls for cls in PRIVACY_HOLD_EVENTS})

P = TypeVar("P", bound=EventPayload)


class UnknownEventType(ValueError):
    pass


def parse_payload(envelope: Envelope) -> EventPayload:
    """Validate an envelope's payload against the model of its event type."""
    cls = EVENT_TYPES.get(envelope.event_type)
    if cls is None:
        raise UnknownEventType(f"unknown event type {envelope.event_type!r}")
    payload, version = envelope.payload, envelope.schema_version
    steps = [(envelope.event_type, v) for v in range(version, cls.schema_version)]
    if version < cls.schema_version and all(step in UPCASTERS for step in steps):
        # An older shape: read as the current one (rolling upgrades, stored entries).
        payload = upcast_payload(
            envelope.event_type,
            version,
            payload,
            case_id=envelope.case_id,
            occurred_at=envelope.occurred_at,
        )
    elif version != cls.schema_version:
        raise UnknownEventType(
            f"{envelope.event_type} schema_version {envelope.schema_version} not supported"
        )
    return cls.model_validate(payload)


def payload_as(envelope: Envelope, cls: type[P]) -> P:
    if envelope.event_type != cls.event_type:
        raise UnknownEventType(f"expected {cls.event_type}, got {envelope.event_type}")
    return cls.model_validate(envelope.payload)


def make_event(
    payload: EventPayload,
    *,
    producer: str,
    actor: Actor,
    case_id: UUID | None,
    caused_by: Envelope | None = None,
    event_id: UUID | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    data: dict[str, Any] = payload.model_dump(mode="json")
    return new_envelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        payload=data,
        producer=producer,
        actor=actor,
        case_id=case_id,
        caused_by=caused_by,
        event_id=event_id,
        occurred_at=occurred_at,
        payload_is_json=True,  # model_dump(mode="json") already is
    )


# --- Data-subject rights (issue #14): access and erasure requests (intake) ---
# Who the person is travels only as the pseudonymous `subject_id` of the privacy model
# (`employee:<id>` or `email:<sha256 of the lower-cased address>`); never a name, an
# address or a reason's free text beyond the officer's own words.


class PrivacyErasureRequested(EventPayload):
    """A privacy officer placed an erasure request (GDPR Art. 17) for a data subject."""

    event_type: ClassVar[str] = "privacy.erasure_requested"
    erasure_request_id: UUID
    subject_id: str = Field(min_length=1, max_length=200)
    requested_by: str = Field(min_length=1, max_length=200)
    requested_at: PayloadTime


class PrivacyErasureDecided(EventPayload):
    """A second privacy officer approved or refused the request, with their reason.

    `kept_case_ids`: cases whose data is kept for legal claims (not erased). `blocked_by`:
    the legal holds that stopped an approved erasure (then `carried_out` is False)."""

    event_type: ClassVar[str] = "privacy.erasure_decided"
    erasure_request_id: UUID
    subject_id: str = Field(min_length=1, max_length=200)
    decision: Literal["approve", "refuse"]
    reason: str = Field(min_length=1, max_length=2000)
    decided_by: str = Field(min_length=1, max_length=200)
    decided_at: PayloadTime
    kept_case_ids: list[UUID] = Field(default_factory=list, max_length=500)
    blocked_by: list[UUID] = Field(default_factory=list, max_length=500)
    carried_out: bool
    keys_destroyed: int = Field(ge=0)


class PrivacyDataSubjectErased(EventPayload):
    """The subject's keys are destroyed: every service scrubs its own read-model copies.

    `scopes`: the case ids (as str) and "-" (data outside any case) erased; None = all of
    the subject's data. `kept_scopes`: cases kept for legal claims, left as they are."""

    event_type: ClassVar[str] = "privacy.data_subject_erased"
    subject_id: str = Field(min_length=1, max_length=200)
    scopes: list[str] | None = Field(default=None, max_length=5000)
    kept_scopes: list[str] = Field(default_factory=list, max_length=500)
    rule: str = Field(min_length=1, max_length=500)
    erasure_request_id: UUID | None = None
    erased_at: PayloadTime


class PrivacyAccessRequested(EventPayload):
    """A privacy officer asked for everything hrcase holds about a data subject."""

    event_type: ClassVar[str] = "privacy.access_requested"
    access_request_id: UUID
    subject_id: str = Field(min_length=1, max_length=200)
    requested_by: str = Field(min_length=1, max_length=200)
    requested_at: PayloadTime


class PrivacyAccessFulfilled(EventPayload):
    """The export was assembled (counts only: no personal data on the bus)."""

    event_type: ClassVar[str] = "privacy.access_fulfilled"
    access_request_id: UUID
    subject_id: str = Field(min_length=1, max_length=200)
    cases: int = Field(ge=0)
    messages: int = Field(ge=0)
    notifications: int = Field(ge=0)
    fulfilled_at: PayloadTime


class PrivacyRequestViewed(EventPayload):
    """Audit-only: who read a data-subject request or downloaded its export (no content)."""

    event_type: ClassVar[str] = "audit.privacy_request_viewed"
    viewer: str
    roles: list[str]
    request_kind: Literal["erasure", "access"]
    request_id: UUID
    view: str = Field(max_length=100)
    client_ip: str | None
    user_agent: str | None = Field(default=None, max_length=512)
    forwarded_for: str | None = Field(default=None, max_length=512)
    at: PayloadTime


PRIVACY_RIGHTS_EVENTS: tuple[type[EventPayload], ...] = (
    PrivacyErasureRequested,
    PrivacyErasureDecided,
    PrivacyDataSubjectErased,
    PrivacyAccessRequested,
    PrivacyAccessFulfilled,
    PrivacyRequestViewed,
)
EVENT_TYPES.update({cls.event_type: cls for cls in PRIVACY_RIGHTS_EVENTS})
