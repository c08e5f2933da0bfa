"""A case's timeline for people: every entry with actor, time, a sentence, and what changed.

"What changed" is the difference between the replayed state (domain.replay) before and
after the entry, so the timeline and replay can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from services.audit.domain.chain import ChainEntry, format_timestamp, stored_object
from services.audit.domain.replay import CaseState, apply
from shared.events import upcast_payload

Summary = Callable[[dict[str, Any]], str]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _attachments(p: dict[str, Any]) -> str:
    n = len(p.get("attachments") or [])
    return f", {_plural(n, 'attachment')}" if n else ""


def _submitted(p: dict[str, Any]) -> str:
    who = "anonymously" if p.get("anonymous") else None
    reporter = (p.get("reporter") or {}).get("employee_id")
    by = who or (f"by employee {reporter}" if reporter else "")
    logged = f", logged by {p['logged_by']}" if p.get("logged_by") else ""
    return f"case {p.get('reference')} submitted via {p.get('channel')} {by}{logged}".replace(
        "  ", " "
    ).strip() + _attachments(p)


def _routed(p: dict[str, Any]) -> str:
    return (
        f"triaged: category {p.get('category')} ({p.get('category_source')}),"
        f" sensitivity {p.get('sensitivity')}, priority {p.get('priority')};"
        f" first response due {p.get('first_response_due')},"
        f" resolution due {p.get('resolution_due')}"
    )


def _assigned(p: dict[str, Any]) -> str:
    owner = p.get("owner") or {}
    text = f"assigned to {owner.get('id')} (team {p.get('team')})"
    if p.get("previous_owner_id"):
        text = (
            f"reassigned from {p['previous_owner_id']} to {owner.get('id')} (team {p.get('team')})"
        )
    return text


def _status(p: dict[str, Any]) -> str:
    reason = f" ({p['reason']})" if p.get("reason") else ""
    return f"status {p.get('from_status')} → {p.get('to_status')}{reason}"


def _note(p: dict[str, Any]) -> str:
    return ("internal note" if p.get("internal", True) else "note") + " added"


def _message(p: dict[str, Any]) -> str:
    return f"message from {p.get('sender_role')} received via {p.get('channel')}{_attachments(p)}"


def _sla(kind: str) -> Summary:
    return lambda p: f"SLA {p.get('clock')} clock {kind}: due {p.get('due_at')}"


def _escalated(p: dict[str, Any]) -> str:
    to = (p.get("escalated_to") or {}).get("id")
    return f"escalated to level {p.get('level')} ({to}): {p.get('reason')}"


def _viewed(p: dict[str, Any]) -> str:
    # Always the current shape: timeline() and the access log upcast stored entries first.
    who = p.get("viewer") or "someone"
    where = f" from {p['client_ip']}" if p.get("client_ip") else ""
    as_of = f" as of {p['as_of']}" if p.get("as_of") else ""
    view = f" ({p['view']}{as_of})" if p.get("view") else ""
    return f"record read by {who}{view}{where}"


def _document(p: dict[str, Any]) -> str:
    # The file as the chain vouches for it: name, detected type, size and SHA-256.
    d = p.get("document") or {}
    kind = "evidence" if p.get("evidence") else "document"
    seen = "shared with the reporter" if p.get("shared") else "internal"
    return (
        f"{kind} added ({seen}): {d.get('filename')} ({d.get('content_type')},"
        f" {d.get('size')} bytes, sha256 {d.get('sha256')})"
    )


def _exported(p: dict[str, Any]) -> str:
    return f"case file exported by {p.get('subject')} (sha256 {p.get('export_sha256')})"


SUMMARIES: dict[str, Summary] = {
    "case.submitted": _submitted,
    "case.routed": _routed,
    "case.assigned": _assigned,
    "case.status_changed": _status,
    "case.note_added": _note,
    "case.message_received": _message,
    "case.recategorisation_requested": lambda p: (
        f"recategorisation to {p.get('category')} requested: {p.get('reason')}"
    ),
    "case.assignment_requested": lambda p: (
        f"assignment to {p.get('owner_id')} requested: {p.get('reason')}"
    ),
    "case.status_change_requested": lambda p: f"status change to {p.get('to_status')} requested",
    "case.sla_warning": _sla("warning"),
    "case.sla_breached": _sla("breached"),
    "case.escalated": _escalated,
    "conference.required": lambda p: (
        "case conference required: " + "; ".join(map(str, p.get("reasons") or []))
    ),
    "notification.sent": lambda p: (
        f"{p.get('channel')} notification sent to the {p.get('audience')} ({p.get('template')})"
    ),
    "notification.failed": lambda p: (
        f"{p.get('channel')} notification to the {p.get('audience')} failed"
        f" after {p.get('attempts')} attempts"
    ),
    "audit.case_viewed": _viewed,
    "audit.export_created": _exported,
    "case.reopened": lambda p: (
        f"reopened ({str(p.get('trigger')).replace('_', ' ')}); owner {p.get('owner_id')} told"
    ),
    "case.follow_up_case_requested": lambda p: f"follow-up case requested: {p.get('reason')}",
    "portal.session_ended": lambda p: (
        f"portal session of {p.get('subject')} ended ({str(p.get('reason')).replace('_', ' ')})"
    ),
    "case.assignment_needed": lambda p: (
        f"no owner could be assigned in team {p.get('team')}: {p.get('reason')};"
        f" {len(p.get('notify') or [])} HR managers asked to assign a person"
    ),
    "case.document_added": _document,
    "case.request_refused": lambda p: f"{p.get('request_type')} refused: {p.get('reason')}",
    "case.respondents_resolved": lambda p: (
        "respondents matched in the directory: "
        + (", ".join(p.get("resolved_employee_ids") or []) or "none")
        + f"; {p.get('unresolved')} need a person"
    ),
    "case.respondent_resolution_requested": lambda p: (
        f"respondent {p.get('position')} resolution to {p.get('employee_id')} requested"
    ),
    "case.injury_facts_recorded": lambda p: (
        f"injury facts recorded: serious {(p.get('injury') or {}).get('serious')},"
        f" suitable employment {(p.get('injury') or {}).get('suitable_employment_available')}"
    ),
    "task.creation_requested": lambda p: (
        f"task requested for {p.get('assignee_id')}: {p.get('title')}"
    ),
    "task.completion_requested": lambda p: f"completion of task {p.get('task_id')} requested",
    "task.reassignment_requested": lambda p: (
        f"task {p.get('task_id')} reassignment to {p.get('assignee_id')} requested"
    ),
    "task.cancellation_requested": lambda p: (
        f"cancellation of task {p.get('task_id')} requested: {p.get('reason')}"
    ),
    "task.created": lambda p: (
        f"task created for {_person(p.get('assignee'))}, due {p.get('due_at')}: {p.get('title')}"
    ),
    "task.reassigned": lambda p: (
        f"task handed over to {_person(p.get('assignee'))}: {p.get('title')}"
    ),
    "task.completed": lambda p: f"task completed: {p.get('title')}",
    "task.cancelled": lambda p: f"task cancelled: {p.get('title')} ({p.get('reason')})",
    "task.due_soon": lambda p: f"task due soon ({p.get('due_at')}): {p.get('title')}",
    "task.overdue": lambda p: (
        f"task overdue: {p.get('title')}; escalated to {_person(p.get('escalated_to'))}"
    ),
    # Case conferences: routing's decisions (ids, dates and counts, never the summary text).
    "conference.planned": lambda p: (
        f"case conference {p.get('conference_id')} planned for"
        f" {(p.get('plan') or {}).get('scheduled_for')} ({(p.get('plan') or {}).get('mode')}),"
        f" {len(p.get('participants') or [])} participants,"
        f" {len(p.get('awaiting_consent') or [])} awaiting consent"
    ),
    "conference.rescheduled": lambda p: (
        f"case conference {p.get('conference_id')} changed (sequence {p.get('sequence')}): "
        + ", ".join(map(str, p.get("changed") or []))
        + f"; {p.get('reason')}"
    ),
    "conference.cancelled": lambda p: (
        f"case conference {p.get('conference_id')} cancelled: {p.get('reason')}"
    ),
    "conference.participant_invited": lambda p: (
        f"participant {p.get('participant_id')} invited to case conference"
        f" {p.get('conference_id')} after the worker's consent"
    ),
    "conference.held": lambda p: (
        f"case conference {p.get('conference_id')} held at {p.get('held_at')},"
        f" {sum(1 for a in p.get('attendance') or [] if a.get('attended'))} attended;"
        f" summary due {p.get('summary_due_at')}"
    ),
    "conference.summary_recorded": lambda p: (
        f"case conference {p.get('conference_id')} summary recorded"
        f" ({'on time' if p.get('on_time') else 'late'}):"
        f" {len(p.get('agreed_points') or [])} agreed points,"
        f" {len(p.get('actions') or [])} actions, {len(p.get('objections') or [])} objections"
    ),
    "conference.action_due_soon": lambda p: (
        f"conference action due soon ({p.get('due_at')}), owner {p.get('owner_name')}:"
        f" {p.get('description')}"
    ),
    "conference.action_overdue": lambda p: (
        f"conference action overdue (due {p.get('due_at')}), owner {p.get('owner_name')};"
        f" escalated to {_person(p.get('escalated_to'))}"
    ),
    "conference.action_completed": lambda p: (
        f"conference action completed ({'on time' if p.get('on_time') else 'late'}):"
        f" {p.get('description')}"
    ),
    "conference.action_replanned": lambda p: (
        f"conference action {'carried out of the conference' if p.get('ended') else 're-planned'}"
        + ("" if p.get("ended") else f", now due {p.get('due_at')}")
        + f": {p.get('reason')}"
    ),
    "conference.completed": lambda p: (
        f"case conference {p.get('conference_id')} complete: {p.get('actions_completed')}"
        f" actions done, {p.get('actions_replanned')} carried elsewhere"
    ),
    # Case conference mails relayed by notifications (one per participant).
    "conference.notice_sent": lambda p: f"conference notice sent to the {_role(p)}",
    "conference.agenda_sent": lambda p: (
        f"conference {'cancellation' if p.get('method') == 'CANCEL' else 'agenda'} sent to the"
        f" {_role(p)} (calendar sequence {p.get('sequence')})"
    ),
    "conference.summary_sent": lambda p: (
        f"conference summary link sent to the {_role(p)}, valid until {p.get('link_expires_at')}"
    ),
    # Intake's conference participant doors (signed link, the worker's portal page).
    "conference.acknowledged": lambda p: (
        f"conference {p.get('conference_id')} summary acknowledged by participant"
        f" {p.get('participant_id')} ({p.get('role')})"
    ),
    "conference.objection_raised": lambda p: (
        f"objection to conference {p.get('conference_id')} summary raised by participant"
        f" {p.get('participant_id')} ({p.get('role')})"
    ),
    "conference.consent_recorded": lambda p: (
        f"{p.get('consent')} consent {'given' if p.get('granted') else 'withdrawn'} by the"
        f" {p.get('given_by')} (recorded via {p.get('recorded_via')})"
    ),
    "statutory_clock.started": lambda p: (
        f"statutory clock {p.get('pack')}/{p.get('clock')} started by {p.get('trigger')},"
        f" due {p.get('due_at')} ({p.get('citation')})"
    ),
    "statutory_clock.due_soon": lambda p: (
        f"statutory clock {p.get('pack')}/{p.get('clock')} due soon ({p.get('due_at')})"
    ),
    "statutory_clock.breached": lambda p: (
        f"statutory clock {p.get('pack')}/{p.get('clock')} breached (due {p.get('due_at')});"
        f" escalated to {_person(p.get('escalated_to'))}"
    ),
    "statutory_clock.met": lambda p: (
        f"statutory clock {p.get('pack')}/{p.get('clock')} met by {p.get('met_by')}"
        f" at {p.get('met_at')} ({'on time' if p.get('on_time') else 'late'})"
    ),
    "statutory_clock.completion_requested": lambda p: (
        f"statutory clock {p.get('pack')}/{p.get('clock')} recorded as done by staff"
    ),
    # Case conferences: staff requests at intake (never the summary's text).
    "conference.planning_requested": lambda p: (
        f"case conference {p.get('conference_id')} requested for"
        f" {(p.get('plan') or {}).get('scheduled_for')}"
        f" with {len(p.get('participants') or [])} participants"
    ),
    "conference.change_requested": lambda p: (
        f"change of case conference {p.get('conference_id')} requested: {p.get('reason')}"
    ),
    "conference.cancellation_requested": lambda p: (
        f"cancellation of case conference {p.get('conference_id')} requested: {p.get('reason')}"
    ),
    "conference.hold_recording_requested": lambda p: (
        f"case conference {p.get('conference_id')} recorded as held at {p.get('held_at')}"
    ),
    "conference.summary_recording_requested": lambda p: (
        f"summary of case conference {p.get('conference_id')} written:"
        f" {len(p.get('agreed_points') or [])} agreed points,"
        f" {len(p.get('actions') or [])} actions, {len(p.get('objections') or [])} objections"
    ),
    "conference.action_completion_requested": lambda p: (
        f"completion of conference action {p.get('action_id')} requested"
    ),
    "conference.action_replanning_requested": lambda p: (
        f"re-planning of conference action {p.get('action_id')} requested: {p.get('reason')}"
    ),
    # Processes (investigations, independent case management): ids, stages, roles,
    # values and counts; the texts (allegations, statements, findings' reasoning, terms)
    # are in the replayed state and the case file.
    "case.process_change_requested": lambda p: (
        f"switch to process {p.get('process')} requested: {p.get('reason')}"
    ),
    "case.stage_change_requested": lambda p: (
        f"move to stage {p.get('stage')} requested"
        + (f" (ending {p.get('ending')})" if p.get("ending") else "")
        + (f": {p.get('reason')}" if p.get("reason") else "")
    ),
    "case.process_role_assignment_requested": lambda p: f"{_role(p)} {p.get('staff_id')} requested",
    "case.conflict_declared": lambda p: (
        f"conflict of interest declared for {p.get('staff_id')}: {p.get('reason')}"
    ),
    "case.process_assigned": lambda p: (
        f"process {p.get('label')} ({p.get('process')}) assigned by {p.get('assigned_by')}"
        + (f", was {p.get('previous_process')}" if p.get("previous_process") else "")
        + (f": {p.get('reason')}" if p.get("reason") else "")
    ),
    "case.stage_entered": lambda p: (
        f"stage {p.get('label')} ({p.get('stage')}) entered, {p.get('direction')}"
        + (f", ending {p.get('ending')}" if p.get("ending") else "")
        + (f", target {p.get('target_at')}" if p.get("target_at") else "")
        + (f": {p.get('reason')}" if p.get("reason") else "")
    ),
    "case.stage_due_soon": lambda p: f"stage {p.get('stage')} due soon ({p.get('target_at')})",
    "case.stage_overdue": lambda p: (
        f"stage {p.get('stage')} overdue (target {p.get('target_at')});"
        f" escalated to {_person(p.get('escalated_to'))}"
    ),
    "case.process_role_assigned": lambda p: (
        f"{_role(p)}: {_person(p.get('person'))}"
        + (f", replacing {p.get('previous_id')}" if p.get("previous_id") else "")
    ),
    "investigation.allegation_recorded": lambda p: (
        f"allegation {p.get('allegation_id')} ({p.get('allegation_type')}) recorded against"
        f" {p.get('respondent_employee_id')}"
    ),
    "investigation.interim_measure_recorded": lambda p: (
        f"interim measure recorded: {p.get('kind')}"
    ),
    "investigation.interview_scheduled": lambda p: (
        f"interview {p.get('interview_id')} with the"
        f" {(p.get('interviewee') or {}).get('role')} scheduled for {p.get('scheduled_for')}"
    ),
    "investigation.statement_recorded": lambda p: (
        f"statement {p.get('statement_id')} of the {p.get('given_by_role')} recorded"
    ),
    "investigation.statement_reviewed": lambda p: (
        f"statement {p.get('statement_id')} "
        + ("confirmed" if p.get("confirmed") else "corrected")
        + " by the person who gave it"
    ),
    "investigation.evidence_added": lambda p: (
        f"evidence {p.get('evidence_id')} ({p.get('kind')}) logged from {p.get('source')},"
        f" sha256 {p.get('sha256') or (p.get('attachment') or {}).get('sha256')}"
    ),
    "investigation.finding_recorded": lambda p: (
        f"finding on allegation {p.get('allegation_id')}: {p.get('finding')}"
    ),
    "case.outcome_decided": lambda p: (
        f"outcome {p.get('outcome_id')} decided by {p.get('decided_by')}:"
        f" {len(p.get('actions') or [])} actions"
    ),
    "case.outcome_approval_requested": lambda p: (
        f"approval of outcome {p.get('outcome_id')} requested by {p.get('approver_id')}"
    ),
    "case.outcome_approved": lambda p: (
        f"outcome {p.get('outcome_id')} approved by {_person(p.get('approver'))};"
        f" appeal window ends {p.get('appeal_window_ends_at')}"
    ),
    "case.appeal_lodged": lambda p: f"appeal {p.get('appeal_id')} lodged by the {p.get('by_role')}",
    "case.appeal_window_closed": lambda p: (
        "appeal window closed" + (" (appealed)" if p.get("appealed") else " without appeal")
    ),
    "case.appeal_decided": lambda p: (
        f"appeal {p.get('appeal_id')} {p.get('decision')} by {p.get('decided_by')}"
    ),
    "mediation.assessment_recorded": lambda p: (
        f"initial assessment of the {((p.get('party') or {}).get('role') or '').replace('_', ' ')}"
        " recorded"
    ),
    "mediation.ground_rules_proposed": lambda p: (
        f"ground rules {p.get('ground_rules_id')} proposed ({len(p.get('rules') or [])} rules)"
    ),
    "mediation.ground_rules_accepted": lambda p: (
        f"ground rules {p.get('ground_rules_id')} accepted by the"
        f" {str(p.get('party_role')).replace('_', ' ')}"
    ),
    "mediation.meeting_scheduled": lambda p: (
        f"meeting {p.get('meeting_id')} scheduled for {p.get('scheduled_for')}"
    ),
    "mediation.meeting_held": lambda p: (
        f"meeting {p.get('meeting_id')} held at {p.get('held_at')},"
        f" {len(p.get('proposals') or [])} proposals"
    ),
    "agreement.drafted": lambda p: (
        f"agreement {p.get('agreement_id')} version {p.get('version')} drafted"
        f" ({len(p.get('terms') or [])} terms)"
    ),
    "agreement.accepted": lambda p: (
        f"agreement version {p.get('version')} accepted by the"
        f" {str(p.get('party_role')).replace('_', ' ')}"
    ),
    "agreement.in_force": lambda p: (
        f"agreement version {p.get('version')} in force:"
        f" {len(p.get('obligations') or [])} obligations,"
        f" {len(p.get('follow_ups_at') or [])} check-ins"
    ),
    "agreement.obligation_due_soon": lambda p: (
        f"obligation {p.get('term_id')} of the {str(p.get('owner_role')).replace('_', ' ')}"
        f" due soon ({p.get('due_at')})"
    ),
    "agreement.obligation_overdue": lambda p: (
        f"obligation {p.get('term_id')} of the {str(p.get('owner_role')).replace('_', ' ')}"
        f" overdue (due {p.get('due_at')}); escalated to {_person(p.get('escalated_to'))}"
    ),
    "agreement.obligation_met": lambda p: f"obligation {p.get('term_id')} met on {p.get('met_on')}",
    "case.follow_up_due": lambda p: (
        f"follow-up check-in {p.get('check_in')} due ({p.get('due_at')})"
    ),
}


def _role(p: dict[str, Any]) -> str:
    return str(p.get("role")).replace("_", " ")


def _person(p: Any) -> str:
    if not isinstance(p, dict):
        return "nobody"
    return f"{p.get('name')} ({p.get('id')})" if p.get("name") else str(p.get("id"))


def summarise(event_type: str, payload: dict[str, Any]) -> str:
    summary = SUMMARIES.get(event_type)
    if summary is not None:
        try:
            return summary(payload)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # a payload of another schema version: fall through to the generic line
    keys = ", ".join(sorted(payload)) if payload else "no details"
    return f"{event_type} ({keys})"


def _diff(before: CaseState, after: CaseState) -> dict[str, dict[str, Any]]:
    old, new = before.summary_fields(), after.summary_fields()
    return {k: {"from": old[k], "to": new[k]} for k in new if old[k] != new[k]}


def current_payload(entry: ChainEntry, payload: dict[str, Any]) -> dict[str, Any]:
    """A stored entry's (readable) payload in its event type's current shape: the stored
    bytes stay as hashed, older schema versions are upcast for reading (shared.events)."""
    return upcast_payload(
        entry.event_type,
        entry.schema_version,
        payload,
        case_id=entry.case_id,
        occurred_at=entry.occurred_at,
    )


def timeline(case_id: UUID, entries: Iterable[ChainEntry]) -> list[dict[str, Any]]:
    """One item per entry (ascending seq)."""
    items: list[dict[str, Any]] = []
    state = CaseState(case_id=case_id)
    for entry in entries:
        payload, payload_problem = stored_object(entry.payload)
        actor, actor_problem = stored_object(entry.actor)
        problems = [*entry.problems]
        problems += [f"payload {payload_problem}"] if payload_problem else []
        problems += [f"actor {actor_problem}"] if actor_problem else []
        after = apply(state, entry)
        summary = (
            summarise(entry.event_type, current_payload(entry, payload))
            if payload is not None
            else f"{entry.event_type} (payload unreadable)"
        )
        items.append(
            {
                "seq": entry.seq,
                "event_id": str(entry.event_id),
                "event_type": entry.event_type,
                "occurred_at": format_timestamp(entry.occurred_at),
                "recorded_at": format_timestamp(entry.recorded_at),
                "producer": entry.producer,
                "actor": actor,
                "summary": summary,
                "changes": _diff(state, after),
                "entry_hash": entry.entry_hash,
                # Stored values that could not be read (README "Timestamp bounds").
                "problems": problems,
            }
        )
        state = after
    return items
