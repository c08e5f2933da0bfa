"""Case conferences as staff read them: the case's list, one conference, the case page's
section and what a new plan form starts with. A case the caller may not read is 404."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from services.intake.adapters import conference_sql
from services.intake.application import actions, agent_actions
from services.intake.application.actions import Client
from services.intake.domain.case import CLOSED_STATUSES, is_reporter
from services.intake.domain.conferences import CONFERENCE_ROLES
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.service import Runtime

Case = dict[str, Any]
Conference = dict[str, Any]
DEFAULT_TIME_ZONE = "UTC"


async def staff_case(
    runtime: Runtime, principal: Principal, case_id: UUID, client: Client, view: str
) -> Case:
    agent_actions.require_role(principal, CONFERENCE_ROLES, "reading a case's conferences")
    row = await actions.readable_case(runtime, principal, case_id, client, view=view)
    if is_reporter(principal, actions.facts(row)):
        raise Refused("forbidden", "this view is for the HR staff working the case")
    return row


async def list_conferences(
    runtime: Runtime, principal: Principal, case_id: UUID, client: Client, *, view: str
) -> list[Conference]:
    """The case's conferences for staff who may read it (404 otherwise)."""
    await staff_case(runtime, principal, case_id, client, view)
    return await conference_sql.list_conferences(runtime.pool, case_id)


async def get_conference(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    conference_id: UUID,
    client: Client,
    *,
    view: str,
) -> tuple[Case, Conference]:
    """One conference of the case for staff who may read it (404 otherwise)."""
    case = await staff_case(runtime, principal, case_id, client, view)
    conference = await conference_sql.get_conference(runtime.pool, case_id, conference_id)
    if conference is None:
        raise Refused("not_found", "no such conference on this case")
    return case, conference


async def conference_section(
    pool: asyncpg.Pool, principal: Principal, staff_view: bool, case: Case
) -> dict[str, Any]:
    """What the case page's conference section shows: staff working the case only (the
    worker's own view is another section); the plan link while the case is open."""
    shown = staff_view and principal.has_any(*CONFERENCE_ROLES)
    return {
        "shown": shown,
        "conferences": await conference_sql.list_conferences(pool, case["case_id"])
        if shown
        else [],
        "can_plan": shown and case["status"] not in CLOSED_STATUSES,
    }


async def planning_defaults(runtime: Runtime, case: Case) -> tuple[str, list[dict[str, Any]]]:
    """What a new plan form starts with: the owning team's zone, the worker (the case's
    reporter) and the case manager (the case owner) as participants."""
    zone = await conference_sql.team_time_zone(runtime.pool, case.get("team"))
    people: list[dict[str, Any]] = []
    if not case.get("anonymous") and case.get("reporter_email"):
        people.append(
            {
                "role": "worker",
                "name": case.get("reporter_name") or "",
                "email": case["reporter_email"],
                "employee_id": case.get("reporter_employee_id"),
            }
        )
    owner = await conference_sql.staff_contact(runtime.pool, case.get("owner_id"))
    if owner is not None:
        people.append(
            {
                "role": "case_manager",
                "name": owner["name"],
                "email": owner["email"],
                "employee_id": owner["staff_id"],
            }
        )
    people.append({"role": "employer_representative"})
    people.append({"role": "treating_doctor"})
    return zone or DEFAULT_TIME_ZONE, people
