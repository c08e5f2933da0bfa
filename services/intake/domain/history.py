"""A case's history: which events it keeps, what each entry says, who is named. No I/O.

Every event on a case becomes one entry (`kind` + `summary`), written where intake writes
or consumes the event. People are shown by name: the name stored with the entry (the
Principal's name for intake's own writes, the payload's Person for routing's), else a name
intake knows for the id, else the id. Texts (message and note bodies) are not copied into
the history; readers join them from their own tables, so internal notes stay where their
visibility rule lives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from services.intake.domain.process_history import (
    PROCESS_DECISION_KINDS,
    PROCESS_EVENT_KINDS,
    PROCESS_REQUEST_KINDS,
    describe_process,
    process_summary,
)
from shared.envelope import Envelope

# Kinds whose actor is whoever made the request that caused them (status changes,
# assignments, re-categorisations routing applied): looked up by causation_id.
CAUSED_BY_REQUEST = (
    frozenset({"status_changed", "assigned", "recategorised", "reopened"}) | PROCESS_DECISION_KINDS
)
# The entries whose actor such an outcome takes: a person asked (a routed case's first
# assignment is routing's own doing, though a submission caused it).
REQUEST_KINDS = frozenset(
    {"status_change_requested", "recategorisation_requested", "assignment_requested", "message"}
) | (PROCESS_REQUEST_KINDS - {"conflict_declared"})
REQUEST_LABELS = {
    "case.status_change_requested": "status change",
    "case.recategorisation_requested": "re-categorisation",
    "case.assignment_requested": "assignment",
    "case.respondent_resolution_requested": "respondent resolution",
    "statutory_clock.completion_requested": "statutory clock completion",
    "conference.planning_requested": "case conference",
    "conference.change_requested": "conference change",
    "conference.cancellation_requested": "conference cancellation",
    "conference.hold_recording_requested": "conference attendance",
    "conference.summary_recording_requested": "conference summary",
    "conference.action_completion_requested": "conference action completion",
    "conference.action_replanning_requested": "conference action re-planning",
    "case.process_change_requested": "process change",
    "case.stage_change_requested": "stage change",
    "case.process_role_assignment_requested": "process role assignment",
}
# Who acted, when an event names a service or a timer rather than a person.
SYSTEM_ACTORS = {
    ("service", "routing"): "Routing",
    ("system", "routing-timers"): "SLA timer",
    ("service", "intake"): "Intake",
}
STATUS_WORDS = {
    "new": "new",
    "routed": "routed",
    "assigned": "assigned",
    "in_progress": "in progress",
    "waiting_on_employee": "waiting on the employee",
    "resolved": "resolved",
    "closed": "closed",
    "reopened": "reopened",
}
CLOCK_WORDS = {"first_response": "first response", "resolution": "resolution"}


@dataclass(frozen=True)
class Actor:
    """Who acted: the envelope's actor type and id with a display name when known."""

    type: str
    id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One row of intake.case_history."""

    event_id: UUID
    case_id: UUID
    occurred_at: datetime
    event_type: str
    kind: str
    actor: Actor
    summary: dict[str, Any] = field(default_factory=dict)
    causation_id: UUID | None = None


@dataclass(frozen=True)
class CaseBefore:
    """The read model's values an event changes, as they were before it applied."""

    category: str | None
    owner_id: str | None
    owner_name: str | None


def _actor_of(envelope: Envelope) -> Actor:
    return Actor(type=envelope.actor.type, id=envelope.actor.id)


@dataclass(frozen=True)
class Cause:
    """The recorded entry of the event that caused another: its kind and actor."""

    kind: str
    actor: Actor


def consumed_entry(envelope: Envelope, before: CaseBefore, cause: Cause | None) -> HistoryEntry:
    """The entry for an event intake consumed (routing's decisions and clocks).

    `cause` is the entry of the event that caused this one (an agent's request, a
    reporter's message), if intake recorded it: a status change or an assignment is shown
    as that person's doing, and a case.routed caused by a re-categorisation request is a
    re-categorisation. An event type without a summary rule is kept with its type as kind
    and no summary (nothing sensitive copied).
    """
    assert envelope.case_id is not None
    recategorised = cause is not None and cause.kind == "recategorisation_requested"
    kind, summary = _summary(envelope.event_type, envelope.payload, before, recategorised)
    actor = _actor_of(envelope)
    if kind in CAUSED_BY_REQUEST and cause is not None and cause.kind in REQUEST_KINDS:
        actor = cause.actor
    return HistoryEntry(
        event_id=envelope.event_id,
        case_id=envelope.case_id,
        occurred_at=envelope.occurred_at,
        event_type=envelope.event_type,
        kind=kind,
        actor=actor,
        summary=summary,
        causation_id=envelope.causation_id,
    )


def _summary(
    event_type: str,
    payload: Mapping[str, Any],
    before: CaseBefore,
    caused_by_recategorisation: bool,
) -> tuple[str, dict[str, Any]]:
    """(kind, summary) of a consumed event; facts only, no free text of the reporter's."""
    pick = _picker(payload)
    match event_type:
        case "case.routed" if caused_by_recategorisation:
            return "recategorised", {
                "from_category": before.category,
                **pick("category", "priority", "sensitivity"),
                "reason": _first(payload.get("priority_reasons")),
            }
        case "case.routed":
            return "routed", pick(
                "category", "sensitivity", "priority", "first_response_due", "resolution_due"
            )
        case "case.assigned":
            owner = payload.get("owner") or {}
            previous_id = payload.get("previous_owner_id")
            previous_name = before.owner_name if previous_id == before.owner_id else None
            return "assigned", {
                **pick("team", "strategy"),
                "owner_id": owner.get("id"),
                "owner_name": owner.get("name"),
                "previous_owner_id": previous_id,
                "previous_owner_name": previous_name if previous_id else None,
            }
        case "case.status_changed":
            return "status_changed", pick("from_status", "to_status", "reason")
        case "case.request_refused":
            return "request_refused", pick("request_type", "request_event_id", "reason")
        case "case.reopened":
            return "reopened", pick("trigger", "closed_at", "reopened_at", "resolution_due")
        case "case.assignment_needed":
            return "assignment_needed", pick("team", "reason", "priority")
        case "case.sla_warning" | "case.sla_breached":
            return event_type.removeprefix("case."), pick("clock", "due_at", "owner_id")
        case "case.escalated":
            target = payload.get("escalated_to") or {}
            return "escalated", {
                **pick("level", "reason"),
                "escalated_to_id": target.get("id"),
                "escalated_to_name": target.get("name"),
            }
        case "case.follow_up_case_requested":
            return "follow_up_requested", pick("reason", "closed_at")
        case "case.respondents_resolved":
            return "respondents_resolved", {
                "resolved": len(payload.get("resolved_employee_ids") or []),
                **pick("unresolved"),
            }
        case "conference.required":
            return "conference_required", pick("reasons", "due_by")
        case "task.created" | "task.reassigned" | "task.due_soon" | "task.overdue":
            assignee = payload.get("assignee") or {}
            target = payload.get("escalated_to") or {}
            return event_type.replace(".", "_"), {
                **pick("title", "due_at", "reason"),
                "assignee_id": assignee.get("id"),
                "assignee_name": assignee.get("name"),
                "escalated_to_id": target.get("id"),
                "escalated_to_name": target.get("name"),
            }
        case "task.completed" | "task.cancelled":
            return event_type.replace(".", "_"), pick("title", "reason")
        case _ if event_type.startswith("statutory_clock."):
            return statutory_clock_summary(event_type, payload)
        case _ if event_type in PROCESS_EVENT_KINDS:
            return process_summary(event_type, payload)
    if event_type.startswith("conference."):
        return _conference_summary(event_type, payload, pick)
    return event_type, {}


def _conference_summary(
    event_type: str, payload: Mapping[str, Any], pick: Any
) -> tuple[str, dict[str, Any]]:
    """(kind, summary) of a consumed conference event: when, who by role, counts; never
    the summary's points or objections."""
    kind = event_type.replace(".", "_")
    plan = payload.get("plan") or {}
    when = {"scheduled_for": plan.get("scheduled_for"), "time_zone": plan.get("time_zone")}
    match event_type:
        case "conference.planned" | "conference.rescheduled":
            return kind, {**pick("conference_id", "reason", "changed"), **when}
        case "conference.cancelled":
            return kind, {**pick("conference_id", "reason"), **when}
        case "conference.participant_invited":
            wanted = str(payload.get("participant_id"))
            roles = [
                p.get("role")
                for p in payload.get("participants") or []
                if str(p.get("participant_id")) == wanted
            ]
            return kind, {**pick("conference_id"), "role": _first(roles)}
        case "conference.held":
            return kind, pick("conference_id", "held_at", "summary_due_at")
        case "conference.summary_recorded":
            return kind, {
                **pick("conference_id", "on_time"),
                "actions": len(payload.get("actions") or []),
            }
        case "conference.completed":
            return kind, pick("conference_id", "actions_completed", "actions_replanned")
        case "conference.notice_sent" | "conference.agenda_sent" | "conference.summary_sent":
            return kind, pick("conference_id", "role", "method")
    target = payload.get("escalated_to") or {}
    return kind, {
        **pick("conference_id", "description", "due_at", "owner_name", "reason", "ended"),
        "escalated_to_id": target.get("id"),
        "escalated_to_name": target.get("name"),
    }


def _picker(payload: Mapping[str, Any]) -> Any:
    def pick(*names: str) -> dict[str, Any]:
        return {name: payload.get(name) for name in names}

    return pick


def _first(values: Any) -> Any:
    return values[0] if isinstance(values, list) and values else None


def staff_ids(summary: Mapping[str, Any]) -> set[str]:
    """Ids of staff an entry names without (necessarily) their name."""
    keys = ("owner_id", "previous_owner_id", "requested_owner_id", "assignee_id", "escalated_to_id")
    ids = {summary.get(key) for key in keys}
    return {value for value in ids if isinstance(value, str)}


def display_actor(actor: Actor, names: Mapping[str, str]) -> str:
    """The name to show for who acted: stored name, a name known for the id, a system
    label, the id; "Anonymous reporter" for an anonymous actor (nothing else is known)."""
    if actor.type == "anonymous":
        return "Anonymous reporter"
    if actor.name:
        return actor.name
    if actor.id and actor.id in names:
        return names[actor.id]
    label = SYSTEM_ACTORS.get((actor.type, actor.id or ""))
    return label or actor.id or actor.type


def _status(value: Any) -> str:
    return STATUS_WORDS.get(str(value), str(value).replace("_", " "))


def _named(summary: Mapping[str, Any], id_key: str, name_key: str, names: Mapping[str, str]) -> str:
    ident = summary.get(id_key)
    return str(summary.get(name_key) or names.get(str(ident)) or ident or "nobody")


def _when(value: Any) -> str:
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        return str(value)


def _clock(summary: Mapping[str, Any]) -> str:
    clock = str(summary.get("clock"))
    return f"{CLOCK_WORDS.get(clock, clock)} due {_when(summary.get('due_at'))}"


def describe(kind: str, summary: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """One line a member of staff reads for an entry (texts are shown beside it)."""
    reason = f": {summary['reason']}" if summary.get("reason") else ""
    return _describe_written(kind, summary, reason, names) or _describe_consumed(
        kind, summary, reason, names
    )


def _describe_written(
    kind: str, s: Mapping[str, Any], reason: str, names: Mapping[str, str]
) -> str | None:
    """Entries for what intake wrote: submissions, messages, notes, staff requests."""
    match kind:
        case "submitted":
            return f"Case raised via {s.get('channel', 'unknown channel')}"
        case "message":
            return "Message from HR" if s.get("sender_role") == "agent" else "Message from reporter"
        case "note":
            return "Internal note" if s.get("internal", True) else "Note shared with the employee"
        case "status_change_requested":
            return f"Requested status change to {_status(s.get('to_status'))}{reason}"
        case "recategorisation_requested":
            return f"Requested re-categorisation to {s.get('category')}{reason}"
        case "assignment_requested":
            who = _named(s, "requested_owner_id", "requested_owner_name", names)
            return f"Requested assignment to {who}{reason}"
        case "task_requested":
            who = _named(s, "assignee_id", "assignee_name", names)
            return f"Requested a task for {who}: {s.get('title')}"
        case "task_update_requested":
            return f"Requested {s.get('action')}"
        case "statutory_clock_completion_requested":
            return f"Recorded statutory clock {s.get('pack')}/{s.get('clock')} as done"
        case "conference_requested":
            return f"Requested a case conference for {_local(s)}"
        case "conference_update_requested":
            return f"Requested {s.get('action')}"
        case "consent_recorded":
            given = "gave" if s.get("granted", True) else "withdrew"
            who = str(s.get("given_by") or "").replace("_", " ")
            return f"Recorded that the {who} {given} consent: {_consent(s.get('consent'))}"
        case "injury_facts_recorded":
            return "Recorded a decision on the injury facts"
        case "respondent_resolution_requested":
            return (
                f"Requested respondent {int(s.get('position', 0)) + 1} be resolved to"
                f" {s.get('employee_id')}{reason}"
            )
        case _ if kind in PROCESS_REQUEST_KINDS:
            return describe_process(kind, s, reason, names)
        case _ if kind in FACT_LABELS:
            return FACT_LABELS[kind] + reason
    return None


# What the investigator, the case manager and the parties recorded (the texts themselves
# stay on the investigation and case-management pages, for those who may read them).
FACT_LABELS: Mapping[str, str] = {
    "allegation_recorded": "Allegation recorded",
    "interim_measure_recorded": "Interim measure recorded",
    "interview_scheduled": "Interview scheduled",
    "statement_recorded": "Statement recorded",
    "statement_reviewed": "Statement reviewed by the person who gave it",
    "evidence_added": "Evidence logged",
    "finding_recorded": "Finding recorded",
    "outcome_decided": "Outcome decided",
    "outcome_approval_requested": "Approval of the outcome requested",
    "appeal_lodged": "Appeal lodged",
    "appeal_decided": "Appeal decided",
    "mediation_assessment_recorded": "Initial assessment of a party recorded",
    "mediation_ground_rules_proposed": "Ground rules proposed",
    "mediation_ground_rules_accepted": "Ground rules accepted by a party",
    "mediation_meeting_scheduled": "Meeting scheduled",
    "mediation_meeting_held": "Meeting held",
    "agreement_drafted": "Written agreement drafted",
    "agreement_accepted": "Written agreement accepted by a party",
    "agreement_obligation_met": "Obligation recorded as met",
}


def _describe_consumed(
    kind: str, s: Mapping[str, Any], reason: str, names: Mapping[str, str]
) -> str:
    """Entries for routing's decisions and clocks."""
    match kind:
        case "routed":
            return (
                f"Routed: category {s.get('category')}, priority {s.get('priority')},"
                f" {s.get('sensitivity')}"
            )
        case "recategorised":
            return (
                f"Re-categorised from {s.get('from_category')} to {s.get('category')}"
                f" (priority {s.get('priority')})"
            )
        case "assigned":
            owner = _named(s, "owner_id", "owner_name", names)
            text = f"Assigned to {owner} (team {s.get('team')})"
            if s.get("previous_owner_id"):
                previous = _named(s, "previous_owner_id", "previous_owner_name", names)
                text += f", previously {previous}"
            return text
        case "status_changed":
            return (
                f"Status changed from {_status(s.get('from_status'))} to"
                f" {_status(s.get('to_status'))}{reason}"
            )
        case "request_refused":
            label = REQUEST_LABELS.get(str(s.get("request_type")), s.get("request_type"))
            return f"Requested {label} was refused{reason}"
        case "reopened":
            by_reply = s.get("trigger") == "reporter_reply"
            return "Reopened" + (" by the reporter's reply" if by_reply else "")
        case "assignment_needed":
            return f"Needs a person: nobody in team {s.get('team')} could be assigned{reason}"
        case "sla_warning":
            return f"SLA warning: {_clock(s)}"
        case "sla_breached":
            return f"SLA breached: {_clock(s)}"
        case "escalated":
            who = _named(s, "escalated_to_id", "escalated_to_name", names)
            return f"Escalated (level {s.get('level')}) to {who}{reason}"
        case "follow_up_requested":
            return f"The reporter wrote after closure; a follow-up case was opened{reason}"
        case "respondents_resolved":
            text = f"Respondents matched in the directory: {s.get('resolved')}"
            if s.get("unresolved"):
                text += f"; {s.get('unresolved')} need a person to resolve"
            return text
        case "conference_required":
            reasons = ", ".join(str(r) for r in s.get("reasons") or []) or "policy"
            return f"A case conference is required ({reasons})"
        case "task_created" | "task_reassigned":
            who = _named(s, "assignee_id", "assignee_name", names)
            verb = "Task assigned" if kind == "task_created" else "Task handed over"
            return f"{verb} to {who}: {s.get('title')}"
        case "task_due_soon":
            return f"Task due soon: {s.get('title')}"
        case "task_overdue":
            text = f"Task overdue: {s.get('title')}"
            if s.get("escalated_to_id"):
                text += f", escalated to {_named(s, 'escalated_to_id', 'escalated_to_name', names)}"
            return text
        case "task_completed":
            return f"Task completed: {s.get('title')}"
        case str() if kind.startswith("conference_"):
            return _describe_conference(kind, s, reason, names)
        case "task_cancelled":
            return f"Task cancelled: {s.get('title')}{reason}"
        case _ if kind.startswith("statutory_clock_"):
            return describe_statutory_clock(kind, s, names)
        case _ if kind in PROCESS_EVENT_KINDS.values():
            return describe_process(kind, s, reason, names)
    return kind.replace("_", " ").replace(".", ": ")


# --- statutory clocks (routing's jurisdiction packs and conference rules) -----------------


def statutory_clock_summary(
    event_type: str, payload: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """(kind, summary) of a statutory_clock.* event: label, citation, due, outcome."""
    pick = _picker(payload)
    target = payload.get("escalated_to") or {}
    summary = {
        **pick("pack", "clock", "label", "citation", "due_at", "owner_id"),
        **pick("met_at", "met_by", "on_time", "trigger"),
        "escalated_to_id": target.get("id"),
        "escalated_to_name": target.get("name"),
    }
    return event_type.replace(".", "_"), summary


def describe_statutory_clock(kind: str, s: Mapping[str, Any], names: Mapping[str, str]) -> str:
    label, due = s.get("label"), _when(s.get("due_at"))
    match kind:
        case "statutory_clock_started":
            return f"Statutory clock started: {label}, due {due} ({s.get('citation')})"
        case "statutory_clock_due_soon":
            return f"Statutory clock due soon: {label}, due {due}"
        case "statutory_clock_breached":
            text = f"Statutory clock breached: {label}, was due {due}"
            if s.get("escalated_to_id"):
                text += f", escalated to {_named(s, 'escalated_to_id', 'escalated_to_name', names)}"
            return text
        case "statutory_clock_met":
            by = "recorded by staff" if s.get("met_by") == "staff" else f"by {s.get('met_by')}"
            late = "" if s.get("on_time") else " (late)"
            return f"Statutory clock met{late}: {label}, {by}"
    return f"Statutory clock: {label}"


CONSENT_WORDS = {
    "practitioner_involvement": "the treating practitioner may be invited",
    "medical_consultation": "the conference may be held in the medical consultation",
}


def _consent(value: Any) -> str:
    return CONSENT_WORDS.get(str(value), str(value).replace("_", " "))


def _local(s: Mapping[str, Any]) -> str:
    """The conference's start in its own zone, as staff plan it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        start = datetime.fromisoformat(str(s.get("scheduled_for")))
        zone = str(s.get("time_zone") or "UTC")
        return start.astimezone(ZoneInfo(zone)).strftime(f"%Y-%m-%d %H:%M ({zone})")
    except (ValueError, ZoneInfoNotFoundError):
        return str(s.get("scheduled_for"))


def _describe_conference(
    kind: str, s: Mapping[str, Any], reason: str, names: Mapping[str, str]
) -> str:
    """Entries for routing's conference decisions and the mails notifications relayed."""
    role = str(s.get("role") or "participant").replace("_", " ")
    action = s.get("description")
    match kind:
        case "conference_planned":
            return f"Case conference planned for {_local(s)}"
        case "conference_rescheduled":
            return f"Case conference changed, now {_local(s)}{reason}"
        case "conference_cancelled":
            return f"Case conference cancelled{reason}"
        case "conference_participant_invited":
            return f"The {role} was invited to the case conference (consent recorded)"
        case "conference_held":
            return f"Case conference held; summary due {_when(s.get('summary_due_at'))}"
        case "conference_summary_recorded":
            late = "" if s.get("on_time", True) else " (late)"
            return f"Conference summary recorded{late}: {s.get('actions')} agreed action(s)"
        case "conference_action_due_soon":
            return f"Conference action due soon: {action}"
        case "conference_action_overdue":
            text = f"Conference action overdue: {action}"
            if s.get("escalated_to_id"):
                text += f", escalated to {_named(s, 'escalated_to_id', 'escalated_to_name', names)}"
            return text
        case "conference_action_completed":
            return f"Conference action done: {action}"
        case "conference_action_replanned":
            verb = "carried out of the conference" if s.get("ended") else "re-planned"
            return f"Conference action {verb}: {action}{reason}"
        case "conference_completed":
            return (
                f"Case conference completed: {s.get('actions_completed')} action(s) done,"
                f" {s.get('actions_replanned')} re-planned"
            )
        case "conference_notice_sent":
            return f"Conference notice mailed to the {role}"
        case "conference_agenda_sent":
            what = "cancellation" if s.get("method") == "CANCEL" else "agenda and invitation"
            return f"Conference {what} mailed to the {role}"
        case "conference_summary_sent":
            return f"Conference summary link mailed to the {role}"
        # Written at intake's participant doors (the signed link, the worker's case page).
        case "conference_acknowledged":
            return f"The {role} acknowledged the conference summary"
        case "conference_objection_raised":
            return f"The {role} objected to the conference summary"
    return kind.replace("_", " ")
