"""The case file for legal proceedings: timeline, documents' hashes, verification block.

The file is JSON; `export_sha256` is the SHA-256 (hex) of the canonical JSON
(chain.canonical_json) of the whole document without the `export_sha256` member, so
anyone can recompute it. The same hash is recorded in the chain as `audit.export_created`:
the log proves which file was handed out, by whom and when.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from services.audit.domain.chain import (
    ChainEntry,
    canonical_json,
    format_timestamp,
    stored_object,
)
from services.audit.domain.replay import replay
from services.audit.domain.timeline import timeline

FORMAT = "hrcase.case-file/1"


def entry_record(entry: ChainEntry) -> dict[str, Any]:
    """An entry with every hashed field, so each can be rehashed from the file alone.

    A stored value that cannot be read is given as null (actor, payload) or its
    stand-in (timestamps), with the reason in `problems`; such an entry does not verify.
    """
    actor, actor_problem = stored_object(entry.actor)
    payload, payload_problem = stored_object(entry.payload)
    problems = [*entry.problems]
    problems += [f"actor {actor_problem}"] if actor_problem else []
    problems += [f"payload {payload_problem}"] if payload_problem else []
    return {
        "seq": entry.seq,
        "event_id": str(entry.event_id),
        "event_type": entry.event_type,
        "schema_version": entry.schema_version,
        "occurred_at": format_timestamp(entry.occurred_at),
        "recorded_at": format_timestamp(entry.recorded_at),
        "producer": entry.producer,
        "correlation_id": str(entry.correlation_id),
        "causation_id": str(entry.causation_id) if entry.causation_id else None,
        "case_id": str(entry.case_id) if entry.case_id else None,
        "actor": actor,
        "payload": payload,
        "prev_hash": entry.prev_hash,
        "entry_hash": entry.entry_hash,
        # Hashed only in version 2 entries (services/audit/domain/chain.py).
        "entry_version": entry.entry_version,
        "producer_user": entry.producer_user,
        "problems": problems,
    }


def export_hash(document: dict[str, Any]) -> str:
    body = {k: v for k, v in document.items() if k != "export_sha256"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def build_case_file(
    case_id: UUID,
    entries: Sequence[ChainEntry],
    *,
    verification: dict[str, Any],
    generated_at: datetime,
    generated_by: str,
    shown: Sequence[ChainEntry] | None = None,
) -> dict[str, Any]:
    """The case file document. `entries` are recorded as stored (rehashable); `shown`
    (default: `entries`), the same entries with personal data opened, feed the state and
    the timeline."""
    shown = entries if shown is None else shown
    state = replay(case_id, shown)
    document: dict[str, Any] = {
        "format": FORMAT,
        "case_id": str(case_id),
        "reference": state.reference,
        "generated_at": format_timestamp(generated_at),
        "generated_by": generated_by,
        "state": state.as_dict(),
        "timeline": timeline(case_id, shown),
        "documents": [d.__dict__ for d in state.documents],
        "entries": [entry_record(e) for e in entries],
        "verification": verification,
    }
    document["export_sha256"] = export_hash(document)
    return document


# What people wrote, in chain order: the texts the events carry (the description of the
# submission, each message, each note), for the HTML case file and the console.
_TEXT_FIELDS = {
    "case.submitted": "description",
    "case.message_received": "body",
    "case.note_added": "body",
    "case.follow_up_case_requested": "body",
}


def case_texts(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """From entry records (`entry_record`): {"subject", "description", "messages": [...],
    "notes": [...]}; each message/note is {seq, at, author, body, ...}. An unreadable
    payload contributes nothing (the entry's problems say why elsewhere)."""
    texts: dict[str, Any] = {"subject": None, "description": None, "messages": [], "notes": []}
    for record in records:
        payload, kind = record.get("payload"), record.get("event_type")
        if not isinstance(payload, dict) or kind not in _TEXT_FIELDS:
            continue
        actor = record.get("actor") if isinstance(record.get("actor"), dict) else {}
        body = payload.get(_TEXT_FIELDS[kind])
        item = {
            "seq": record["seq"],
            "at": record["occurred_at"],
            "author": (actor or {}).get("id"),
            "body": body if isinstance(body, str) else "",
        }
        if kind == "case.submitted" and texts["description"] is None:
            texts["subject"] = payload.get("subject")
            texts["description"] = item["body"]
        elif kind == "case.note_added":
            texts["notes"].append({**item, "internal": bool(payload.get("internal", True))})
        elif kind != "case.submitted":
            sender = payload.get("sender_role") or "follow-up request"
            texts["messages"].append({**item, "sender": sender, "channel": payload.get("channel")})
    return texts
