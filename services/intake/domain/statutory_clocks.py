"""Statutory clocks as staff see them: the request body, states and their words. No I/O.

Routing starts, meets and fires the clocks (its policy's jurisdiction packs and conference
rules); intake shows what routing announced and lets staff record a clock's obligation as
fulfilled outside hrcase (`statutory_clock.completion_requested`; routing decides).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field

from services.intake.domain.case import IntakeInput
from shared.auth import Role

CLOCK_ROLES: tuple[Role, ...] = ("hr_agent", "hr_manager", "investigator")
# A pack or clock key as the policy writes them (lower case, digits, underscores).
KEY_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
ClockState = Literal["running", "due_soon", "breached", "met"]
STATE_WORDS: dict[str, str] = {
    "running": "Running",
    "due_soon": "Due soon",
    "breached": "Breached",
    "met": "Met",
}


class ClockCompletion(IntakeInput):
    """Recording a clock as done: an optional note (an empty object, or no body)."""

    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=2000)


def completion_conflict(states: list[str]) -> str | None:
    """Why a completion cannot be requested (None: it may), from intake's projection;
    routing still decides. `states`: the case's instances of the clock ([]: none)."""
    if not states:
        return "not_found"
    if all(state == "met" for state in states):
        return "the statutory clock is already met"
    return None


def local_time(moment: datetime | None, time_zone: str | None) -> str | None:
    """'Thu 08 Oct 2026 17:30 AEDT' in the team's zone (UTC when it is unknown)."""
    if moment is None:
        return None
    try:
        zone = ZoneInfo(time_zone) if time_zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    local = moment.astimezone(zone)
    return local.strftime("%a %d %b %Y %H:%M ") + (local.tzname() or "UTC")
