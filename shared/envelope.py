"""The event envelope every message on the bus carries (ARCHITECTURE.md, 'Event envelope')."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from shared.settings import get_settings


def _as_utc(value: datetime) -> datetime:
    """`value` in UTC; ValueError (not OverflowError) when UTC cannot hold it, e.g. year
    9999 at a negative offset, so models report it as a validation error."""
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from exc


def _within(value: datetime, earliest: datetime, latest: datetime, what: str) -> datetime:
    if not earliest <= value <= latest:
        raise ValueError(
            f"{what} {value.isoformat()} is outside the accepted window"
            f" {earliest.isoformat()} .. {latest.isoformat()}"
        )
    return value


def _occurred_at(value: datetime) -> datetime:
    settings = get_settings()
    now = datetime.now(UTC)
    latest = now + timedelta(seconds=settings.event_time_max_future_seconds)
    return _within(_as_utc(value), settings.event_time_not_before, latest, "occurred_at")


def _payload_window() -> tuple[datetime, datetime]:
    settings = get_settings()
    latest = datetime.now(UTC) + timedelta(days=settings.payload_time_max_future_days)
    return settings.payload_time_not_before, latest


def _payload_time(value: datetime) -> datetime:
    earliest, latest = _payload_window()
    return _within(_as_utc(value), earliest, latest, "timestamp")


def _payload_date(value: date) -> date:
    earliest, latest = _payload_window()
    if not earliest.date() <= value <= latest.date():
        raise ValueError(
            f"date {value.isoformat()} is outside the accepted window"
            f" {earliest.date().isoformat()} .. {latest.date().isoformat()}"
        )
    return value


# The one bounded timestamp type of the bus (README "Timestamp bounds"): every consumer
# validates through these, so a hostile year 9999 or 0001 is a validation error wherever
# it arrives. `EventTime`: an envelope's occurred_at, EVENT_TIME_NOT_BEFORE ..
# now + EVENT_TIME_MAX_FUTURE_SECONDS. `PayloadTime`/`PayloadDate`: instants and dates in
# payloads (due times, call times), PAYLOAD_TIME_NOT_BEFORE .. now +
# PAYLOAD_TIME_MAX_FUTURE_DAYS. Both come back in UTC.
EventTime = Annotated[AwareDatetime, AfterValidator(_occurred_at)]
PayloadTime = Annotated[AwareDatetime, AfterValidator(_payload_time)]
PayloadDate = Annotated[date, AfterValidator(_payload_date)]

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
    occurred_at: EventTime
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
