"""Typed payloads per event type: the contract between services.

Each payload class names its `event_type` (the routing key) and `schema_version`.
A consumer parses `envelope.payload` with `parse_payload`, which refuses an
unknown type or a payload that does not match its schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field

from shared.envelope import Actor, Envelope, new_envelope

Channel = Literal["api", "portal", "email", "phone"]
Sensitivity = Literal["normal", "confidential", "restricted"]
Priority = Literal["P1", "P2", "P3", "P4"]


class EventPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1


class Reporter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    employee_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr


class Person(BaseModel):
    """A member of staff the system addresses (an HR agent or manager)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr


class CaseSubmitted(EventPayload):
    event_type: ClassVar[str] = "case.submitted"
    reference: str
    channel: Channel
    subject: str
    description: str
    reporter: Reporter
    category: str | None = None
    submitted_at: AwareDatetime


class CaseRouted(EventPayload):
    event_type: ClassVar[str] = "case.routed"
    reference: str
    category: str
    category_source: Literal["reporter", "rules", "default"]
    matched_terms: list[str]
    sensitivity: Sensitivity
    priority: Priority
    priority_reasons: list[str]
    first_response_due: AwareDatetime
    resolution_due: AwareDatetime
    policy_hash: str


class CaseAssigned(EventPayload):
    event_type: ClassVar[str] = "case.assigned"
    reference: str
    team: str
    owner: Person
    strategy: str
    priority: Priority
    sensitivity: Sensitivity
    category: str
    first_response_due: AwareDatetime
    previous_owner_id: str | None = None


class CaseStatusChanged(EventPayload):
    event_type: ClassVar[str] = "case.status_changed"
    reference: str
    from_status: str
    to_status: str
    reason: str | None = None


class NotificationSent(EventPayload):
    event_type: ClassVar[str] = "notification.sent"
    notification_id: UUID
    source_event_id: UUID
    channel: Literal["email", "webhook"]
    template: str
    audience: str
    recipient_id: str | None
    message_id: str


class NotificationFailed(EventPayload):
    event_type: ClassVar[str] = "notification.failed"
    notification_id: UUID
    source_event_id: UUID
    channel: Literal["email", "webhook"]
    template: str
    audience: str
    recipient_id: str | None
    attempts: int
    error: str


EVENT_TYPES: dict[str, type[EventPayload]] = {
    cls.event_type: cls
    for cls in (
        CaseSubmitted,
        CaseRouted,
        CaseAssigned,
        CaseStatusChanged,
        NotificationSent,
        NotificationFailed,
    )
}

P = TypeVar("P", bound=EventPayload)


class UnknownEventType(ValueError):
    pass


def parse_payload(envelope: Envelope) -> EventPayload:
    """Validate an envelope's payload against the model of its event type."""
    cls = EVENT_TYPES.get(envelope.event_type)
    if cls is None:
        raise UnknownEventType(f"unknown event type {envelope.event_type!r}")
    if envelope.schema_version != cls.schema_version:
        raise UnknownEventType(
            f"{envelope.event_type} schema_version {envelope.schema_version} not supported"
        )
    return cls.model_validate(envelope.payload)


def payload_as(envelope: Envelope, cls: type[P]) -> P:
    if envelope.event_type != cls.event_type:
        raise UnknownEventType(f"expected {cls.event_type}, got {envelope.event_type}")
    return cls.model_validate(envelope.payload)


def make_event(
    payload: EventPayload,
    *,
    producer: str,
    actor: Actor,
    case_id: UUID | None,
    caused_by: Envelope | None = None,
    event_id: UUID | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    data: dict[str, Any] = payload.model_dump(mode="json")
    return new_envelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        payload=data,
        producer=producer,
        actor=actor,
        case_id=case_id,
        caused_by=caused_by,
        event_id=event_id,
        occurred_at=occurred_at,
    )
