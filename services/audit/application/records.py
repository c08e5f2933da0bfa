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
    envelope = new_envelope(
        event_type=event_type,
        schema_version=1,
        payload={**reader.as_payload(), **payload},
        producer=PRODUCER,
        actor=reader.actor,
        case_id=case_id,
    )
    result = await append_batch(conn, [pending_from_envelope(envelope)], utcnow())
    return result.appended[0]


async def record_view(
    conn: asyncpg.Connection, *, case_id: UUID, reader: Reader, view: str, **details: Any
) -> ChainEntry:
    return await record(
        conn,
        event_type="audit.case_viewed",
        case_id=case_id,
        reader=reader,
        payload={"view": view, **details},
    )
