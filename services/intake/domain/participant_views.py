"""What one conference participant may see of a conference, and what they may do. No I/O.

A participant's view is built only from routing's conference decisions: the plan, the
names and roles of the participants invited (never their addresses), the status and, once
recorded, the written summary. It never holds anything else of the case: the page behind a
participant's signed link reads nothing but this view.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal
from uuid import UUID

from shared.events import ConferenceAction, ConferenceObjection, ConferenceParticipant

ViewStatus = Literal["planned", "cancelled", "held", "summarised", "completed"]
ActionStatus = Literal["open", "done", "replanned", "ended"]

# Words a participant reads for a role and a status.
ROLE_LABELS: Mapping[str, str] = {
    "worker": "Worker",
    "employer_representative": "Employer representative",
    "case_manager": "Case manager",
    "treating_doctor": "Treating doctor",
    "psychologist": "Psychologist",
    "rehabilitation_provider": "Rehabilitation provider",
    "union_representative": "Union representative",
    "support_person": "Support person",
}
STATUS_LABELS: Mapping[str, str] = {
    "planned": "Planned",
    "cancelled": "Cancelled",
    "held": "Held; the written summary will follow",
    "summarised": "Summary recorded",
    "completed": "Completed: every agreed action is done or re-planned",
}
ACTION_STATUS_LABELS: Mapping[str, str] = {
    "open": "Open",
    "done": "Done",
    "replanned": "Re-planned",
    "ended": "Carried out of this conference",
}
CONSENT_LABELS: Mapping[str, str] = {
    "practitioner_involvement": (
        "My treating doctor or psychologist may be invited, and my medical information"
        " shared with the conference"
    ),
    "medical_consultation": "The conference may be held in my medical consultation",
}

# A link token longer than this is refused before any verification (a real one is ~330).
MAX_TOKEN_LENGTH = 1024
OBJECTION_MAX_LENGTH = 5000


def invited_people(
    participants: Sequence[ConferenceParticipant], awaiting_consent: Iterable[UUID]
) -> list[dict[str, str]]:
    """Names and roles of the participants invited (not those waiting for consent): what
    every participant may see of the others. No address, organisation or employee id."""
    waiting = set(awaiting_consent)
    return [
        {"participant_id": str(p.participant_id), "name": p.name, "role": p.role}
        for p in participants
        if p.participant_id not in waiting
    ]


def summary_view(
    agreed_points: Sequence[str],
    actions: Sequence[ConferenceAction],
    objections: Sequence[ConferenceObjection],
    participants: Sequence[ConferenceParticipant],
) -> dict[str, Any]:
    """The written summary as participants read it: agreed points, each action with its
    owner's name (not address), due date and status (`open` when recorded), and the
    objections recorded with the name of who raised them when known."""
    names = {p.participant_id: p.name for p in participants}
    return {
        "agreed_points": list(agreed_points),
        "actions": [
            {
                "action_id": str(a.action_id),
                "description": a.description,
                "owner_name": a.owner_name,
                "due_on": a.due_on.isoformat(),
                "due_at": a.due_at.isoformat(),
                "status": "open",
            }
            for a in actions
        ],
        "objections": [
            {
                "by": names.get(o.participant_id) if o.participant_id else None,
                "text": o.text,
            }
            for o in objections
        ],
    }


def with_action_status(
    summary: Mapping[str, Any],
    action_id: UUID,
    status: ActionStatus,
    *,
    due_at: str | None = None,
    due_on: str | None = None,
) -> dict[str, Any]:
    """The summary with one action's status (and, when re-planned to a date, its new due
    date) changed; an unknown action leaves it as it was."""
    actions = []
    for action in summary.get("actions") or []:
        if action.get("action_id") == str(action_id):
            action = {**action, "status": status}
            if due_at is not None:
                action["due_at"] = due_at
            if due_on is not None:
                action["due_on"] = due_on
        actions.append(action)
    return {**summary, "actions": actions}


def worker_participant(
    participants: Sequence[Mapping[str, Any]], employee_id: str | None, email: str | None
) -> Mapping[str, Any] | None:
    """The worker among a conference's participant rows: the `worker` role whose employee
    id matches, else whose address matches (case-insensitively); None when neither does."""
    workers = [p for p in participants if p.get("role") == "worker"]
    if employee_id:
        for row in workers:
            if row.get("employee_id") == employee_id:
                return row
    if email:
        wanted = email.strip().casefold()
        for row in workers:
            if str(row.get("email") or "").strip().casefold() == wanted:
                return row
    return None


def acknowledgement_refusal(status: str, removed: bool) -> str | None:
    """Why a participant cannot acknowledge or object now (None: they can): only a
    recorded summary can be acknowledged or objected to."""
    if removed:
        return "you are no longer a participant of this conference"
    if status not in ("summarised", "completed"):
        return "there is no written summary to acknowledge or object to yet"
    return None
