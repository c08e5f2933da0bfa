"""When and in which zone a meeting is set: the rules every meeting form shares (a case
conference, an investigation interview, a facilitated discussion)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Meetings are planned at most this far ahead.
MAX_AHEAD = timedelta(days=366)


def future_instant(value: datetime, *, now: datetime | None = None) -> datetime:
    """`value` in UTC if it lies after now and within MAX_AHEAD; raises ValueError saying
    why (pydantic reports it against the field)."""
    now = now or datetime.now(UTC)
    try:
        value = value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError("is out of range") from exc
    if value <= now:
        raise ValueError("must be in the future")
    if value > now + MAX_AHEAD:
        raise ValueError("must be within a year")
    return value


def iana_zone(value: str | None, *, example: str = "Europe/London") -> str | None:
    """An IANA time zone name, or None when blank; raises ValueError naming an example."""
    if not value:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"must be an IANA time zone, e.g. {example}") from exc
    return value
