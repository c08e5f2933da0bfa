"""The values of the worker's "Case conference" section on their case page
(`_worker_conferences.html.j2`); its forms post to conference_worker.py."""

from __future__ import annotations

from typing import Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request

from services.intake.adapters import conference_sql
from services.intake.application import participant_doors
from services.intake.domain.participant_views import CONSENT_LABELS, OBJECTION_MAX_LENGTH
from services.intake.entrypoints.portal.conference_present import local_time, present
from services.intake.entrypoints.web import runtime_of
from shared.auth import Principal
from shared.events import ConsentKind

CONFERENCE_DONE = {
    "acknowledged": "Your receipt of the conference summary is recorded.",
    "objection": "Your objection to the conference summary is recorded.",
    "consent_given": "Your consent is recorded.",
    "consent_withdrawn": "Your consent is withdrawn.",
}


async def worker_conference_context(
    request: Request, principal: Principal, case: dict[str, Any]
) -> dict[str, Any]:
    """The case page's values for the worker's section (`worker_conferences` is None for
    anyone but the case's reporter, and the section is then not shown)."""
    found = await participant_doors.worker_conferences(runtime_of(request).pool, principal, case)
    if found is None:
        return {"worker_conferences": None}
    # The worker reads times in the zone the team and the conferences use, not UTC.
    zone_name = await conference_sql.team_time_zone(runtime_of(request).pool, case.get("team"))
    if found.conferences:
        zone_name = (found.conferences[0]["plan"] or {}).get("time_zone") or zone_name
    try:
        zone = ZoneInfo(zone_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    consents = []
    for kind in get_args(ConsentKind):
        state = found.consents.get(kind)
        consents.append(
            {
                "kind": kind,
                "label": CONSENT_LABELS[kind],
                "granted": bool(state and state["granted"]),
                "recorded_at": local_time(state["recorded_at"], zone) if state else None,
            }
        )
    return {
        "worker_conferences": [present(view) for view in found.conferences],
        "worker_consents": consents,
        "objection_max": OBJECTION_MAX_LENGTH,
        "conference_done": CONFERENCE_DONE.get(request.query_params.get("conference", "")),
    }
