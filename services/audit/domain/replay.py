"""Replay: the state of a case at any instant, folded from its log entries alone.

A pure left fold over the case's entries in chain (seq) order. "At instant t" means the
entries whose occurred_at <= t: what had happened by then, as the log records it. Event
types the fold does not know leave the state as it was (they still appear in the
timeline); so do audit-only records (a read changes nothing).

Status follows the same rule as intake's read model: `case.submitted` opens it "new",
routing's events move it forward ("routed", "assigned"), and `case.status_changed` sets
whatever routing decided.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from services.audit.domain.chain import ChainEntry, format_timestamp, stored_object
from services.audit.domain.process_replay import (
    PROCESS_EVENT_TYPES,
    ProcessState,
    apply_process,
    findings_summary,
)

# Only these may be raised by routing events that precede the lifecycle's own status event.
_STATUS_RANK = {"new": 0, "routed": 1, "assigned": 2}


@dataclass(frozen=True)
class Note:
    note_id: str
    body: str
    internal: bool
    author: str | None
    added_at: str
    seq: int


@dataclass(frozen=True)
class Document:
    attachment_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    source: str  # event type that carried it
    seq: int


@dataclass(frozen=True)
class CaseState:
    case_id: UUID
    exists: bool = False
    reference: str | None = None
    channel: str | None = None
    subject: str | None = None
    anonymous: bool | None = None
    reporter_employee_id: str | None = None
    submitted_at: str | None = None
    status: str | None = None
    category: str | None = None
    sensitivity: str | None = None
    priority: str | None = None
    team: str | None = None
    owner_id: str | None = None
    owner_name: str | None = None
    first_response_due: str | None = None
    resolution_due: str | None = None
    escalation_level: int = 0
    sla_breaches: tuple[str, ...] = ()
    conference_required: bool = False
    notes: tuple[Note, ...] = ()
    messages: int = 0
    documents: tuple[Document, ...] = field(default=(), repr=False)
    # The investigation or case management the case is worked through (process_replay).
    process: ProcessState | None = field(default=None, repr=False)
    last_seq: int = 0
    last_event_at: str | None = None
    # Entries that could not be applied (an odd stored value), each with why: reported,
    # never a crash of the whole replay.
    anomalies: tuple[str, ...] = ()

    def summary_fields(self) -> dict[str, Any]:
        """The fields a reader compares between two states (what an event changed)."""
        return {
            "status": self.status,
            "category": self.category,
            "sensitivity": self.sensitivity,
            "priority": self.priority,
            "team": self.team,
            "owner_id": self.owner_id,
            "first_response_due": self.first_response_due,
            "resolution_due": self.resolution_due,
            "escalation_level": self.escalation_level,
            "notes": len(self.notes),
            "messages": self.messages,
            "documents": len(self.documents),
            "stage": self.process["stage"] if self.process else None,
            "findings": findings_summary(self.process),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_id": str(self.case_id),
            "exists": self.exists,
            "reference": self.reference,
            "channel": self.channel,
            "subject": self.subject,
            "anonymous": self.anonymous,
            "reporter_employee_id": self.reporter_employee_id,
            "submitted_at": self.submitted_at,
            "status": self.status,
            "category": self.category,
            "sensitivity": self.sensitivity,
            "priority": self.priority,
            "assignment": {
                "team": self.team,
                "owner_id": self.owner_id,
                "owner_name": self.owner_name,
            },
            "sla": {
                "first_response_due": self.first_response_due,
                "resolution_due": self.resolution_due,
                "breaches": list(self.sla_breaches),
            },
            "escalation_level": self.escalation_level,
            "conference_required": self.conference_required,
            "notes": [n.__dict__ for n in self.notes],
            "messages": self.messages,
            "documents": [d.__dict__ for d in self.documents],
            "process": self.process,
            "as_of_seq": self.last_seq,
            "last_event_at": self.last_event_at,
            "anomalies": list(self.anomalies),
        }


def _ts(value: Any) -> str | None:
    """Timestamps in payloads as the one canonical spelling (so states compare as text)."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return format_timestamp(parsed)


def _documents(payload: dict[str, Any], source: str, seq: int) -> tuple[Document, ...]:
    """The files an entry carries: `attachments` (submission, message) or the one
    `document` a member of staff added (case.document_added)."""
    docs = []
    carried = [*(payload.get("attachments") or []), payload.get("document")]
    for a in carried:
        if isinstance(a, dict) and "sha256" in a:
            docs.append(
                Document(
                    attachment_id=str(a.get("attachment_id")),
                    filename=str(a.get("filename", "")),
                    content_type=str(a.get("content_type", "")),
                    size=int(a.get("size", 0)),
                    sha256=str(a["sha256"]),
                    source=source,
                    seq=seq,
                )
            )
    return tuple(docs)


def _advance(current: str | None, proposed: str) -> str:
    """As intake's read model: routed/assigned move a case forward through new -> routed ->
    assigned only; a later lifecycle status (in_progress, ...) is kept, so a second
    case.routed after a re-categorisation does not undo it."""
    current = current or "new"
    if current not in _STATUS_RANK:
        return current
    if _STATUS_RANK.get(proposed, len(_STATUS_RANK)) >= _STATUS_RANK[current]:
        return proposed
    return current


def _object(text: str, what: str) -> dict[str, Any]:
    value, problem = stored_object(text)
    if value is None:
        raise ValueError(f"{what} {problem}")
    return value


def apply(state: CaseState, entry: ChainEntry) -> CaseState:
    """The state after one entry (entries of other cases are ignored). An entry whose
    stored values cannot be applied leaves the state as it was and is named in
    `anomalies`."""
    if entry.case_id != state.case_id:
        return state
    try:
        return _apply(state, entry)
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
        problem = f"seq {entry.seq} ({entry.event_type}) not applied: {str(exc)[:300]}"
        return replace(state, last_seq=entry.seq, anomalies=(*state.anomalies, problem))


def _apply(state: CaseState, entry: ChainEntry) -> CaseState:
    if entry.problems:
        raise ValueError("; ".join(entry.problems))
    p = _object(entry.payload, "payload")
    actor = _object(entry.actor, "actor")
    kind = entry.event_type
    s = replace(state, last_seq=entry.seq, last_event_at=format_timestamp(entry.occurred_at))
    if kind == "case.submitted":
        reporter = p.get("reporter") or {}
        return replace(
            s,
            exists=True,
            reference=p.get("reference"),
            channel=p.get("channel"),
            subject=p.get("subject"),
            anonymous=bool(p.get("anonymous", False)),
            reporter_employee_id=reporter.get("employee_id"),
            submitted_at=_ts(p.get("submitted_at")) or format_timestamp(entry.occurred_at),
            status=s.status or "new",
            category=s.category or p.get("category"),
            documents=s.documents + _documents(p, kind, entry.seq),
        )
    if kind == "case.routed":
        return replace(
            s,
            category=p.get("category", s.category),
            sensitivity=p.get("sensitivity", s.sensitivity),
            priority=p.get("priority", s.priority),
            first_response_due=_ts(p.get("first_response_due")) or s.first_response_due,
            resolution_due=_ts(p.get("resolution_due")) or s.resolution_due,
            status=_advance(s.status, "routed"),
        )
    if kind == "case.assigned":
        owner = p.get("owner") or {}
        return replace(
            s,
            team=p.get("team", s.team),
            owner_id=owner.get("id", s.owner_id),
            owner_name=owner.get("name", s.owner_name),
            priority=p.get("priority", s.priority),
            sensitivity=p.get("sensitivity", s.sensitivity),
            category=p.get("category", s.category),
            first_response_due=_ts(p.get("first_response_due")) or s.first_response_due,
            status=_advance(s.status, "assigned"),
        )
    if kind == "case.status_changed":
        return replace(s, status=p.get("to_status", s.status))
    if kind == "case.note_added":
        note = Note(
            note_id=str(p.get("note_id")),
            body=str(p.get("body", "")),
            internal=bool(p.get("internal", True)),
            author=actor.get("id"),
            added_at=format_timestamp(entry.occurred_at),
            seq=entry.seq,
        )
        return replace(s, notes=(*s.notes, note))
    if kind == "case.message_received":
        return replace(
            s, messages=s.messages + 1, documents=s.documents + _documents(p, kind, entry.seq)
        )
    if kind == "case.document_added":
        return replace(s, documents=s.documents + _documents(p, kind, entry.seq))
    if kind == "case.sla_breached":
        return replace(s, sla_breaches=(*s.sla_breaches, str(p.get("clock"))))
    if kind == "case.escalated":
        return replace(s, escalation_level=max(s.escalation_level, int(p.get("level", 1))))
    if kind == "conference.required":
        return replace(s, conference_required=True)
    if kind in PROCESS_EVENT_TYPES:
        process = apply_process(
            s.process,
            kind,
            p,
            at=format_timestamp(entry.occurred_at),
            seq=entry.seq,
            actor=actor.get("id"),
        )
        evidence = p.get("attachment") if kind == "investigation.evidence_added" else None
        carried = _documents({"document": evidence}, kind, entry.seq) if evidence else ()
        if kind == "mediation.assessment_recorded":
            carried = _documents({"attachments": p.get("documents")}, kind, entry.seq)
        return replace(s, process=process, documents=s.documents + carried)
    return state if kind.startswith("audit.") else s


def replay(case_id: UUID, entries: Iterable[ChainEntry], at: datetime | None = None) -> CaseState:
    """Fold the case's entries (ascending seq) that had occurred by `at` (all if None)."""
    state = CaseState(case_id=case_id)
    for entry in entries:
        if at is None or entry.occurred_at <= at:
            state = apply(state, entry)
    return state
