"""The event envelope every message on the bus carries (ARCHITECTURE.md, 'Event envelope')."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

ActorType = Literal["employee", "agent", "service", "system", "anonymous"]


class Actor(BaseModel):
    """Who caused an event: ids only, never personal data."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: ActorType
    id: str | None = Field(default=None, max_length=128)


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID
    event_type: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", max_length=100)
    schema_version: int = Field(ge=1)
    occurred_at: AwareDatetime
    producer: str = Field(min_length=1, max_length=64)
    correlation_id: UUID
    causation_id: UUID | None = None
    case_id: UUID | None = None
    actor: Actor
    payload: dict[str, Any]

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_json_bytes(cls, body: bytes) -> Envelope:
        return cls.model_validate_json(body)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_envelope(
    *,
    event_type: str,
    schema_version: int,
    payload: dict[str, Any],
    producer: str,
    actor: Actor,
    case_id: UUID | None,
    caused_by: Envelope | None = None,
    event_id: UUID | None = None,
    occurred_at: datetime | None = None,
    payload_is_json: bool = False,
) -> Envelope:
    """Build an envelope; correlation and causation follow the event that caused it.

    A payload holding dates, UUIDs and the like is normalised to plain JSON values;
    `payload_is_json` skips that when the caller already has them (typed payloads).
    """
    event_id = event_id or uuid4()
    if not payload_is_json:
        payload = json.loads(json.dumps(payload, default=str)) if payload else {}
    return Envelope(
        event_id=event_id,
        event_type=event_type,
        schema_version=schema_version,
        occurred_at=occurred_at or utcnow(),
        producer=producer,
        correlation_id=caused_by.correlation_id if caused_by else event_id,
        causation_id=caused_by.event_id if caused_by else None,
        case_id=case_id,
        actor=actor,
        payload=payload,
    )
