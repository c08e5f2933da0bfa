"""The auditors' console: what its pages show, read from the chain, each read recorded.

Every case page records `audit.case_viewed` (view "console", with the replayed instant
as `as_of`) before anything is read, as the JSON API does: if the read cannot be
recorded, nothing is shown. The log's verification status comes from a full walk of the
chain against the signed checkpoints, cached for `max_age` seconds per process so that
opening pages does not rehash the whole log each time.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.audit.adapters.sql import (
    ACCESS_EVENT_TYPES,
    access_entries,
    case_entries,
    case_ids_by_reference,
    case_known,
    recent_cases,
    session_ended,
)
from services.audit.adapters.verification import audit_connection
from services.audit.application.personal import opened_entries
from services.audit.application.records import Reader, record_view
from services.audit.domain.chain import format_timestamp, stored_object
from services.audit.domain.checkpoint import CheckedCheckpoints
from services.audit.domain.export import case_texts, entry_record
from services.audit.domain.people import known_names
from services.audit.domain.replay import CaseState, replay
from services.audit.domain.timeline import current_payload, summarise, timeline
from services.audit.domain.verification import AuditReport
from shared.privacy.keys import KeyStore


async def session_has_ended(pool: asyncpg.Pool, session_id: str) -> bool:
    """Intake announced (`portal.session_ended`) that this portal session is over."""
    async with pool.acquire() as conn:
        return await session_ended(conn, session_id)


@dataclass(frozen=True)
class LogStatus:
    """The last verification of the whole log, and when it ran (UTC)."""

    report: AuditReport
    checked_at: datetime

    def as_view(self) -> dict[str, Any]:
        block = self.report.verification_block()
        return {**block, "checked_at": format_timestamp(self.checked_at)}


class LogVerification:
    """The verification status, recomputed when older than `max_age` seconds. One walk at
    a time per process: concurrent pages wait for it and share its result."""

    def __init__(self, *, max_age: float) -> None:
        self.max_age = max_age
        self._last: LogStatus | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def status(
        self,
        conn: asyncpg.Connection,
        checkpoints: Callable[[], Awaitable[CheckedCheckpoints | None]],
        now: Callable[[], datetime],
    ) -> LogStatus:
        async with self._lock:
            if self._last is None or time.monotonic() - self._at > self.max_age:
                report = await audit_connection(conn, checkpoints=await checkpoints())
                self._last, self._at = LogStatus(report, now()), time.monotonic()
            return self._last


# References as people type them: HR-2026-000001, or an anonymous report's AR-XXXX-XXXX-XXXX.
_SPACES = re.compile(r"\s+")


def normalise_reference(text: str) -> str:
    return _SPACES.sub("", text).upper()


@dataclass(frozen=True)
class Found:
    case_ids: list[UUID]


async def find_cases(conn: asyncpg.Connection, query: str) -> Found:
    """Cases matching a case id or a reference the log knows (nothing recorded: a search
    shows no case content; opening the case is the recorded read)."""
    text = query.strip()
    try:
        case_id = UUID(text)
    except ValueError:
        return Found(await case_ids_by_reference(conn, normalise_reference(text)))
    return Found([case_id] if await case_known(conn, case_id) else [])


async def recent(conn: asyncpg.Connection, limit: int = 20) -> list[tuple[UUID, str]]:
    return await recent_cases(conn, limit)


@dataclass(frozen=True)
class CasePage:
    case_id: UUID
    state: CaseState  # now
    state_at: CaseState | None  # at the chosen instant
    at: str | None
    timeline: list[dict[str, Any]]
    access: list[dict[str, Any]]
    texts: dict[str, Any]
    names: dict[str, str]
    last_seq: int  # the case's newest event (reads of it, this one included, aside)

    @property
    def text_by_seq(self) -> dict[int, str]:
        """The text an entry carries (description, message, note), by seq."""
        items = [*self.texts["messages"], *self.texts["notes"]]
        found = {int(i["seq"]): str(i["body"]) for i in items}
        if self.texts["description"] is not None:
            first = next((t for t in self.timeline if t["event_type"] == "case.submitted"), None)
            if first is not None:
                found[int(first["seq"])] = str(self.texts["description"])
        return found


def access_item(entry: Any) -> dict[str, Any]:
    """One access-log line: who read (or exported) the record, when, how and from where."""
    payload = current_payload(entry, stored_object(entry.payload)[0] or {})
    actor = stored_object(entry.actor)[0] or {}
    return {
        "seq": entry.seq,
        "at": format_timestamp(entry.occurred_at),
        "event_type": entry.event_type,
        "producer": entry.producer,
        "subject": payload.get("viewer") or payload.get("subject") or actor.get("id"),
        "roles": payload.get("roles") or [],
        "view": payload.get("view"),
        "as_of": payload.get("as_of"),
        "client_ip": payload.get("client_ip"),
        "user_agent": payload.get("user_agent"),
        "forwarded_for": payload.get("forwarded_for"),
        "summary": summarise(entry.event_type, payload),
    }


async def case_page(
    conn: asyncpg.Connection,
    case_id: UUID,
    reader: Reader,
    *,
    at: datetime | None,
    keys: KeyStore | None = None,
) -> CasePage | None:
    """Record the read, then the page's content; None if the log knows no event of the
    case (the attempt stays recorded, as in the API: probing is worth knowing about).
    Personal data is shown opened with `keys` ("[erased]" once a key is destroyed)."""
    as_of = format_timestamp(at) if at is not None else None
    await record_view(conn, case_id=case_id, reader=reader, view="console", as_of=as_of)
    entries = await opened_entries(
        keys,
        await case_entries(conn, case_id),
        purpose=f"audit console read by {reader.subject}",
    )
    events = [e for e in entries if e.event_type not in ACCESS_EVENT_TYPES]
    if not events:
        return None
    reads = await access_entries(conn, case_id=case_id, limit=200)
    return CasePage(
        case_id=case_id,
        state=replay(case_id, entries),
        state_at=replay(case_id, entries, at=at) if at is not None else None,
        at=as_of,
        timeline=[
            item
            for item in timeline(case_id, entries)
            if item["event_type"] not in ACCESS_EVENT_TYPES
        ],
        access=[access_item(e) for e in reads],
        texts=case_texts([entry_record(e) for e in events]),
        names=known_names(events),
        last_seq=events[-1].seq,
    )
