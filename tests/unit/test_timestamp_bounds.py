"""Timestamp bounds on the bus (issue 8, item 11): properties of the one bounded type.

occurred_at lies in EVENT_TIME_NOT_BEFORE .. now + EVENT_TIME_MAX_FUTURE_SECONDS; a
payload instant or date in PAYLOAD_TIME_NOT_BEFORE .. now + PAYLOAD_TIME_MAX_FUTURE_DAYS.
Whatever the value and offset, the answer is "valid" or a ValidationError, never another
exception (an OverflowError once let a value through to the database).
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AfterValidator, BaseModel, ValidationError

from shared.envelope import Actor, Envelope, new_envelope
from shared.events import EVENT_TYPES, CaseSlaBreached, InjuryDetails
from shared.settings import get_settings

OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Anything Python can represent, at any offset, with extra weight near the edges.
INSTANTS = st.one_of(
    st.datetimes(timezones=OFFSETS),
    st.datetimes(
        min_value=datetime(1999, 12, 30), max_value=datetime(2000, 1, 2), timezones=OFFSETS
    ),
    st.integers(min_value=-600, max_value=600).map(
        lambda s: datetime.now(UTC) + timedelta(seconds=s)
    ),
    st.sampled_from(
        [
            datetime.max.replace(tzinfo=UTC),
            datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
            datetime.min.replace(tzinfo=UTC),
            datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
        ]
    ),
)


def _envelope_json(occurred_at: datetime | str) -> bytes:
    envelope = new_envelope(
        event_type="case.note_added",
        schema_version=1,
        payload={"reference": "HR-2026-000001", "note_id": str(uuid4()), "body": "b"},
        producer="intake",
        actor=Actor(type="agent", id="a-1"),
        case_id=uuid4(),
    )
    data = envelope.model_dump(mode="json")
    data["occurred_at"] = occurred_at if isinstance(occurred_at, str) else occurred_at.isoformat()
    return json.dumps(data).encode()


def _utc_or_none(value: datetime) -> datetime | None:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return None


@settings(max_examples=400, deadline=None)
@given(INSTANTS)
def test_occurred_at_is_accepted_exactly_within_its_window(value: datetime) -> None:
    bounds = get_settings()
    body = _envelope_json(value)
    before = datetime.now(UTC)
    try:
        envelope = Envelope.from_json_bytes(body)
    except ValidationError as exc:
        assert [e["loc"] for e in exc.errors()] == [("occurred_at",)]
        utc = _utc_or_none(value)
        earliest = bounds.event_time_not_before
        latest = before + timedelta(seconds=bounds.event_time_max_future_seconds)
        assert utc is None or utc < earliest or utc > latest, (value, exc)
        return
    after = datetime.now(UTC)
    assert envelope.occurred_at == value and envelope.occurred_at.tzinfo == UTC
    assert bounds.event_time_not_before <= envelope.occurred_at
    assert envelope.occurred_at <= after + timedelta(seconds=bounds.event_time_max_future_seconds)


@settings(max_examples=400, deadline=None)
@given(INSTANTS)
def test_payload_instants_are_accepted_exactly_within_their_window(value: datetime) -> None:
    bounds = get_settings()
    before = datetime.now(UTC)
    try:
        breached = CaseSlaBreached(
            reference="HR-2026-000001", clock="resolution", due_at=value, owner_id=None
        )
    except ValidationError as exc:
        assert [e["loc"] for e in exc.errors()] == [("due_at",)]
        utc = _utc_or_none(value)
        latest = before + timedelta(days=bounds.payload_time_max_future_days)
        assert utc is None or not (bounds.payload_time_not_before <= utc <= latest)
        return
    after = datetime.now(UTC)
    assert breached.due_at == value and breached.due_at.tzinfo == UTC
    assert bounds.payload_time_not_before <= breached.due_at
    assert breached.due_at <= after + timedelta(days=bounds.payload_time_max_future_days)


@given(st.dates())
def test_payload_dates_are_accepted_exactly_within_their_window(value: date) -> None:
    bounds = get_settings()
    earliest = bounds.payload_time_not_before.date()
    latest = (datetime.now(UTC) + timedelta(days=bounds.payload_time_max_future_days)).date()
    try:
        InjuryDetails(date_of_injury=value)
    except ValidationError:
        assert not earliest <= value <= latest
    else:
        assert earliest <= value <= latest


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59.999999Z",  # the field case
        "0001-01-01T00:00:00Z",
        "1999-12-31T23:59:59.999999Z",
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
    ],
)
def test_field_case_values_are_validation_errors(value: str) -> None:
    with pytest.raises(ValidationError, match="occurred_at"):
        Envelope.from_json_bytes(_envelope_json(value))


def test_the_window_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_TIME_NOT_BEFORE", "2026-01-01T00:00:00Z")
    monkeypatch.setenv("EVENT_TIME_MAX_FUTURE_SECONDS", "0")
    get_settings.cache_clear()
    try:
        with pytest.raises(ValidationError, match="outside the accepted window"):
            Envelope.from_json_bytes(_envelope_json(datetime(2025, 12, 31, tzinfo=UTC)))
        with pytest.raises(ValidationError, match="outside the accepted window"):
            Envelope.from_json_bytes(_envelope_json(datetime.now(UTC) + timedelta(seconds=30)))
    finally:
        get_settings.cache_clear()


_BOUNDED = {"_occurred_at", "_payload_time", "_payload_date"}


def _is_time(annotation: object) -> bool:
    """date, datetime, and pydantic's AwareDatetime, PastDate, ... (not date subclasses)."""
    if not isinstance(annotation, type):
        return False
    pydantic_time = annotation.__module__.startswith("pydantic") and (
        annotation.__name__.endswith(("Date", "Datetime"))
    )
    return issubclass(annotation, date) or pydantic_time


def _unbounded(annotation: object, where: str) -> Iterator[str]:
    """Every date/datetime inside `annotation` not wrapped in one of the bounded types."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *metadata = typing.get_args(annotation)
        if _is_time(inner):
            names = {
                getattr(m.func, "__name__", "") for m in metadata if isinstance(m, AfterValidator)
            }
            if not names & _BOUNDED:
                yield where
            return
        yield from _unbounded(inner, where)
        return
    if _is_time(annotation):
        yield where
        return
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            rebuilt = (
                typing.Annotated[(field.annotation, *field.metadata)]
                if field.metadata
                else field.annotation
            )
            yield from _unbounded(rebuilt, f"{where}.{name}")
        return
    if origin is not None or isinstance(annotation, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _unbounded(arg, where)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_payload_timestamp_is_bounded(event_type: str) -> None:
    """A new payload field typed plain `datetime`/`AwareDatetime`/`date` fails here."""
    assert list(_unbounded(EVENT_TYPES[event_type], event_type)) == []


def test_the_envelope_timestamp_is_bounded() -> None:
    assert list(_unbounded(Envelope, "Envelope")) == []
