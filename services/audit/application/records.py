"""Audit-only records the audit service writes itself (a read, an export), into the chain.

They go through the same append_batch as the bus's events: one chain, one writer lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from services.audit.adapters.sql import append_batch
from services.audit.domain.chain import ChainEntry, pending_from_envelope
from shared.envelope import Actor, new_envelope, utcnow
from shared.events import CaseViewed

PRODUCER = "audit"


@dataclass(frozen=True)
class Reader:
    """Who reads the record and from where (what the access log shows)."""

    subject: str
    roles: tuple[str, ...]
    client_ip: str | None = None
    user_agent: str | None = None
    forwarded_for: str | None = None  # as claimed by the client or a proxy; not verified

    def as_payload(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "roles": list(self.roles),
            "client_ip": self.client_ip,
            "user_agent": self.user_agent,
            "forwarded_for": self.forwarded_for,
        }

    @property
    def actor(self) -> Actor:
        # Staff reading the record: "agent" is the envelope's type for a person at work.
        return Actor(type="system" if self.subject.startswith("cli:") else "agent", id=self.subject)


async def record(
    conn: asyncpg.Connection,
    *,
    event_type: str,
    case_id: UUID,
    reader: Reader,
    payload: dict[str, Any],
) -> ChainEntry:
    """An audit-only record with the reader's details merged into `payload` (version 1)."""
    return await _append(
        conn,
        event_type=event_type,
        schema_version=1,
        case_id=case_id,
        reader=reader,
        payload={**reader.as_payload(), **payload},
    )


async def _append(
    conn: asyncpg.Connection,
    *,
    event_type: str,
    schema_version: int,
    case_id: UUID,
    reader: Reader,
    payload: dict[str, Any],
) -> ChainEntry:
    envelope = new_envelope(
        event_type=event_type,
        schema_version=schema_version,
        payload=payload,
        producer=PRODUCER,
        actor=reader.actor,
        case_id=case_id,
    )
    result = await append_batch(conn, [pending_from_envelope(envelope)], utcnow())
    return result.appended[0]


async def record_view(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    reader: Reader,
    view: str,
    as_of: str | None = None,
) -> ChainEntry:
    """A read of the case's record, in the one `audit.case_viewed` shape (CaseViewed v2,
    the same intake publishes for its staff reads). `as_of`: the replayed instant shown."""
    viewed = CaseViewed(
        viewer=reader.subject,
        roles=list(reader.roles),
        case_id=case_id,
        client_ip=reader.client_ip,
        user_agent=(reader.user_agent or "")[:512] or None,
        forwarded_for=(reader.forwarded_for or "")[:512] or None,
        view=view,
        at=utcnow(),
        as_of=as_of,
    )
    return await _append(
        conn,
        event_type=CaseViewed.event_type,
        schema_version=CaseViewed.schema_version,
        case_id=case_id,
        reader=reader,
        payload=viewed.model_dump(mode="json"),
    )
