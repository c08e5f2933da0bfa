"""A case's history entries for its process: routing's decisions and stage clock, and the
requests staff made at intake's doors. No I/O; domain/history.py calls in here.

Summaries keep names, stages, instants and the reason staff typed; nothing a party said.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

# routing's events -> the entry kind intake keeps for them
PROCESS_EVENT_KINDS: dict[str, str] = {
    "case.process_assigned": "process_assigned",
    "case.stage_entered": "stage_entered",
    "case.stage_due_soon": "stage_due_soon",
    "case.stage_overdue": "stage_overdue",
    "case.process_role_assigned": "process_role_assigned",
}
# Decisions shown as the doing of whoever asked for them (looked up by causation_id).
PROCESS_DECISION_KINDS = frozenset({"process_assigned", "stage_entered", "process_role_assigned"})
# The entries intake writes for staff's requests and declarations.
PROCESS_REQUEST_KINDS = frozenset(
    {
        "process_change_requested",
        "stage_change_requested",
        "process_role_assignment_requested",
        "conflict_declared",
    }
)
ROLE_WORDS = {
    "investigator": "investigator",
    "case_manager": "case manager",
    "appeal_hearer": "appeal hearer",
}


def _pick(payload: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {name: payload.get(name) for name in names}


def process_summary(event_type: str, payload: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(kind, summary) of one of routing's process events (PROCESS_EVENT_KINDS)."""
    kind = PROCESS_EVENT_KINDS[event_type]
    match kind:
        case "process_assigned":
            return kind, _pick(
                payload, "process", "label", "previous_process", "assigned_by", "reason"
            )
        case "stage_entered":
            return kind, _pick(
                payload,
                "process",
                "stage",
                "label",
                "previous_stage",
                "direction",
                "target_at",
                "ending",
                "reason",
            )
        case "process_role_assigned":
            person = payload.get("person") or {}
            return kind, {
                **_pick(payload, "process", "role", "previous_id", "reason"),
                "staff_id": person.get("id"),
                "staff_name": person.get("name"),
            }
    target = payload.get("escalated_to") or {}
    owner = payload.get("owner") or {}
    return kind, {
        **_pick(payload, "process", "stage", "label", "target_at"),
        "owner_id": owner.get("id"),
        "escalated_to_id": target.get("id"),
        "escalated_to_name": target.get("name"),
    }


def _when(value: Any) -> str:
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        return str(value)


def _words(value: Any) -> str:
    return str(value).replace("_", " ")


def _person(s: Mapping[str, Any], id_key: str, name_key: str, names: Mapping[str, str]) -> str:
    ident = s.get(id_key)
    return str(s.get(name_key) or names.get(str(ident)) or ident or "nobody")


def describe_process(kind: str, s: Mapping[str, Any], reason: str, names: Mapping[str, str]) -> str:
    """The line staff read for a process entry (decisions, clock, requests)."""
    label = s.get("label") or _words(s.get("stage") or s.get("process"))
    match kind:
        case "process_assigned":
            how = "by the policy for the category" if s.get("assigned_by") == "policy" else ""
            if s.get("previous_process"):
                return (
                    f"Process changed from {_words(s.get('previous_process'))} to {label}{reason}"
                )
            return f"Process: {label}" + (f" ({how})" if how else "") + reason
        case "stage_entered":
            match s.get("direction"):
                case "final":
                    ending = f" ({_words(s.get('ending'))})" if s.get("ending") else ""
                    return f"Process ended: {label}{ending}{reason}"
                case "back":
                    text = f"Stage moved back to {label}"
                case "forward":
                    text = f"Stage moved on to {label}"
                case _:
                    text = f"Stage: {label}"
            if s.get("target_at"):
                text += f", target {_when(s.get('target_at'))}"
            return text + reason
        case "stage_due_soon":
            return f"Stage due soon: {label}, target {_when(s.get('target_at'))}"
        case "stage_overdue":
            text = f"Stage overdue: {label}, target was {_when(s.get('target_at'))}"
            if s.get("escalated_to_id"):
                text += (
                    f", escalated to {_person(s, 'escalated_to_id', 'escalated_to_name', names)}"
                )
            return text
        case "process_role_assigned":
            role = ROLE_WORDS.get(str(s.get("role")), _words(s.get("role")))
            who = _person(s, "staff_id", "staff_name", names)
            text = f"{who} is the {role}"
            if s.get("previous_id"):
                text += f", previously {names.get(str(s.get('previous_id')), s.get('previous_id'))}"
            return text + reason
        case "process_change_requested":
            return f"Requested a switch to the {_words(s.get('process'))} process{reason}"
        case "stage_change_requested":
            stage = s.get("stage_label") or _words(s.get("stage"))
            ending = f" (ending: {_words(s.get('ending'))})" if s.get("ending") else ""
            return f"Requested a move to the {stage} stage{ending}{reason}"
        case "process_role_assignment_requested":
            role = ROLE_WORDS.get(str(s.get("role")), _words(s.get("role")))
            who = _person(s, "staff_id", "staff_name", names)
            return f"Requested {who} as {role}{reason}"
        case "conflict_declared":
            who = _person(s, "staff_id", "staff_name", names)
            return f"Conflict of interest declared for {who}{reason}"
    return _words(kind)
