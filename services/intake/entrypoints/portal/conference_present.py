"""A participant's view of a conference, in the words and time zone a person reads.

Used by the page behind a participant's signed link and by the worker's "Case conference"
section on their case page. Times are shown in the plan's time zone (the IANA name and its
abbreviation), never the server's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.intake.domain.participant_views import (
    ACTION_STATUS_LABELS,
    ROLE_LABELS,
    STATUS_LABELS,
)

MODE_LABELS = {"in_person": "In person", "telephone": "By telephone", "video": "By video"}
VENUE_LABELS = {
    "workplace": "At the worker's workplace",
    "other_venue": "At another venue",
    "medical_consultation": "In the worker's medical consultation",
}


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def local_time(value: Any, zone: ZoneInfo) -> str:
    """`Tuesday 15 December 2026, 10:00 AEDT` for an instant (ISO text or datetime)."""
    instant = _instant(value)
    if instant is None:
        return str(value or "")
    local = instant.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} {local.tzname()}"


def _date(value: Any) -> str:
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return f"{day:%A} {day.day} {day:%B %Y}"


def _when(plan: Mapping[str, Any], zone: ZoneInfo) -> str:
    start = _instant(plan.get("scheduled_for"))
    if start is None:
        return ""
    end = (start + timedelta(minutes=int(plan.get("duration_minutes") or 0))).astimezone(zone)
    return f"{local_time(start, zone)} to {end:%H:%M} ({plan.get('time_zone')})"


def present(view: Mapping[str, Any]) -> dict[str, Any]:
    """The template's values for one participant's view row."""
    plan: Mapping[str, Any] = view.get("plan") or {}
    zone = _zone(plan.get("time_zone"))
    summary: Mapping[str, Any] | None = view.get("summary")
    return {
        "conference_id": str(view["conference_id"]),
        "reference": view["reference"],
        "you": {"name": view["name"], "role": ROLE_LABELS.get(view["role"], view["role"])},
        "status": view["status"],
        "status_label": STATUS_LABELS.get(view["status"], view["status"]),
        "purpose": plan.get("purpose", ""),
        "when": _when(plan, zone),
        "duration_minutes": plan.get("duration_minutes"),
        "mode": MODE_LABELS.get(str(plan.get("mode")), plan.get("mode")),
        "venue": VENUE_LABELS.get(str(plan.get("venue"))),
        "location": plan.get("location"),
        # Only an https link is shown as a link (the contract says https; be sure).
        "video_link": plan.get("video_link")
        if str(plan.get("video_link") or "").startswith("https://")
        else None,
        "video_text": plan.get("video_link"),
        "agenda": list(plan.get("agenda") or []),
        "desired_outcomes": [
            {
                "topic": outcome.get("topic"),
                "agreed": outcome.get("agreed"),
                "proposals": [
                    {"by": ROLE_LABELS.get(p.get("by"), p.get("by")), "text": p.get("text")}
                    for p in outcome.get("proposals") or []
                ],
            }
            for outcome in plan.get("desired_outcomes") or []
        ],
        "participants": [
            {"name": p.get("name"), "role": ROLE_LABELS.get(p.get("role"), p.get("role"))}
            for p in view.get("participants") or []
        ],
        "summary": None
        if summary is None
        else {
            "agreed_points": list(summary.get("agreed_points") or []),
            "actions": [
                {
                    "description": a.get("description"),
                    "owner_name": a.get("owner_name"),
                    "due": _date(a.get("due_on")),
                    "status": ACTION_STATUS_LABELS.get(a.get("status"), a.get("status")),
                }
                for a in summary.get("actions") or []
            ],
            "objections": [
                {"by": o.get("by"), "text": o.get("text")} for o in summary.get("objections") or []
            ],
        },
        "may_respond": view["status"] in ("summarised", "completed") and summary is not None,
        "acknowledged_at": local_time(view["acknowledged_at"], zone)
        if view.get("acknowledged_at")
        else None,
        "objection": view.get("objection"),
        "objection_at": local_time(view["objection_at"], zone)
        if view.get("objection_at")
        else None,
    }
