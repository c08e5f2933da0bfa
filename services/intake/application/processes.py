"""The process on a case, for the JSON API and the staff case page: staff ask, routing
decides.

Reads: `process_view` (staff who may read the case, 404 otherwise; the reporter is
refused, 403: a party's own view is another door). Requests: each goes through the agent
actions' one path (`agent_actions._act`): a staff role (403), a case the caller may read
(404, as for a missing case; holders of a process role on the case may), not their own
case (403), not closed (409), then an early 409 when intake's projection already shows the
request cannot apply (domain/processes.py); the command event and the history entry are
written in one transaction under the case's row lock. Routing answers with its decision
(case.process_assigned, case.stage_entered, case.process_role_assigned) or
case.request_refused, whose reason the view shows as `last_refusal`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from services.intake.adapters import conference_sql, process_sql, roster
from services.intake.application import actions, agent_actions
from services.intake.application.actions import Client
from services.intake.domain.case import CLOSED_STATUSES, is_reporter
from services.intake.domain.processes import (
    PROCESS_REQUEST_TYPES,
    PROCESS_ROLES,
    REQUEST_LABELS,
    ROLE_LABELS,
    SHIPPED_PROCESSES,
    STAFF_ID_PATTERN,
    STATE_LABELS,
    ConflictDeclaration,
    ProcessChange,
    ProcessRoleAssignment,
    StageChange,
    final_stage,
    has_ended,
    process_conflict,
    role_conflict,
    stage_conflict,
    stage_trail,
)
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.envelope import Envelope
from shared.events import (
    CaseConflictDeclared,
    CaseProcessChangeRequested,
    CaseProcessRoleAssignmentRequested,
    CaseStageChangeRequested,
)
from shared.service import Runtime

Case = dict[str, Any]
DEFAULT_TIME_ZONE = "UTC"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONE)


def local(value: datetime | None, zone: str) -> str | None:
    """`value` as an ISO 8601 instant with the offset of `zone` (None stays None)."""
    return value.astimezone(_zone(zone)).isoformat() if value is not None else None


def _refusal(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    label = REQUEST_LABELS.get(str(row["request_type"]), str(row["request_type"]))
    return {**row, "request": label}


async def process_details(conn: asyncpg.Pool | asyncpg.Connection, case: Case) -> dict[str, Any]:
    """What staff see of the case's process (no access check: the caller made it).

    {process: None | {process, label, stage, stage_label, stage_entered_at, ended, ending,
    ending_reason, assigned_by, reason}, stages: [{name, label, target_working_days,
    position: done|current|next}], endings: [name], final_stage, clock: None | {target_at,
    due_soon_at, state, state_label, time_zone, target_at_local, due_soon_at_local},
    roles: [{role, role_label, staff_id, name, email, assigned_at}], conflicts: [{staff_id,
    staff_name, reason, declared_by, declared_at}], last_refusal: None | {request_type,
    request, reason, refused_at}, time_zone}. Instants are UTC; *_local in the owning
    team's calendar zone (UTC before routing's roster names it).
    """
    case_id = case["case_id"]
    zone = await conference_sql.team_time_zone(conn, case.get("team")) or DEFAULT_TIME_ZONE
    row = await process_sql.case_process(conn, case_id)
    holders = await process_sql.role_holders(conn, case_id)
    roles = [
        {**holder, "role": role, "role_label": ROLE_LABELS.get(role, role)}
        for role, holder in sorted(holders.items())
    ]
    refusal = _refusal(await process_sql.last_refusal(conn, case_id, PROCESS_REQUEST_TYPES))
    conflicts = await process_sql.declared_conflicts(conn, case_id)
    if row is None:
        return {
            "process": None,
            "stages": [],
            "endings": [],
            "final_stage": None,
            "clock": None,
            "roles": roles,
            "conflicts": conflicts,
            "last_refusal": refusal,
            "time_zone": zone,
        }
    clock = None
    if row.get("target_at") is not None or has_ended(row):
        state = str(row["stage_state"])
        clock = {
            "target_at": row.get("target_at"),
            "due_soon_at": row.get("due_soon_at"),
            "state": state,
            "state_label": STATE_LABELS.get(state, state),
            "time_zone": zone,
            "target_at_local": local(row.get("target_at"), zone),
            "due_soon_at_local": local(row.get("due_soon_at"), zone),
        }
    return {
        "process": {
            "process": row["process"],
            "label": row["label"],
            "stage": row.get("stage"),
            "stage_label": row.get("stage_label"),
            "stage_entered_at": row.get("stage_entered_at"),
            "ended": has_ended(row),
            "ending": row.get("ending"),
            "ending_reason": row.get("ending_reason"),
            "assigned_by": row.get("assigned_by"),
            "reason": row.get("reason"),
        },
        "stages": stage_trail(row),
        "endings": [str(e) for e in row.get("endings") or []],
        "final_stage": final_stage(row),
        "clock": clock,
        "roles": roles,
        "conflicts": conflicts,
        "last_refusal": refusal,
        "time_zone": zone,
    }


async def staff_case(
    runtime: Runtime, principal: Principal, case_id: UUID, client: Client, view: str
) -> Case:
    """The case for staff who may read it: 403 without a staff role or for its reporter,
    404 when they may not read it (the read of a sensitive case is audited)."""
    agent_actions.require_role(principal, PROCESS_ROLES, "reading a case's process")
    row = await actions.readable_case(runtime, principal, case_id, client, view=view)
    if is_reporter(principal, actions.facts(row)):
        raise Refused("forbidden", "this view is for the HR staff working the case")
    return row


async def process_view(
    runtime: Runtime, principal: Principal, case_id: UUID, client: Client, *, view: str
) -> tuple[Case, dict[str, Any]]:
    """(case, process_details) for staff who may read the case (see staff_case)."""
    case = await staff_case(runtime, principal, case_id, client, view)
    return case, await process_details(runtime.pool, case)


async def process_section(
    pool: asyncpg.Pool, principal: Principal, staff_view: bool, case: Case
) -> dict[str, Any]:
    """The case page's process section: staff working the case only, with the roster's
    staff for the role form and whether the forms are offered (an open case)."""
    shown = staff_view and principal.has_any(*PROCESS_ROLES)
    if not shown:
        return {"shown": False}
    details = await process_details(pool, case)
    staff = sorted((await roster.staff_names(pool)).items(), key=lambda item: item[1])
    process = details["process"]
    known = {**SHIPPED_PROCESSES, **await process_sql.known_processes(pool)}
    current = process["process"] if process else None
    return {
        "shown": True,
        **details,
        "staff": staff,
        "role_choices": list(ROLE_LABELS.items()),
        "process_choices": sorted(
            ((name, label) for name, label in known.items() if name != current),
            key=lambda item: item[1],
        ),
        # Declaring a conflict: any open case. Switching the process and naming a role:
        # unless its process has ended. Moving the stage: a case in a running process.
        "can_act": case["status"] not in CLOSED_STATUSES,
        "can_change": case["status"] not in CLOSED_STATUSES
        and (process is None or not process["ended"]),
        "can_move": case["status"] not in CLOSED_STATUSES
        and process is not None
        and not process["ended"],
    }


async def _process_of(conn: asyncpg.Connection, case_id: UUID) -> dict[str, Any] | None:
    # Read under the case's row lock (taken by _act): the projection's handlers take the
    # same lock, so the check sees the stage routing last announced.
    return await process_sql.case_process(conn, case_id)


async def request_process_change(
    runtime: Runtime, principal: Principal, case_id: UUID, change: ProcessChange
) -> agent_actions.ActionAccepted:
    """case.process_change_requested; 409 when the process has ended or is already the
    case's. Routing answers case.process_assigned (+ the first stage) or refuses."""
    before: dict[str, Any] = {}

    async def check(conn: asyncpg.Connection, case: Case, _event: Envelope) -> None:
        process = await _process_of(conn, case_id)
        reason = process_conflict(process, change)
        if reason:
            raise agent_actions.conflict(reason)
        before["from_process"] = process["process"] if process else None

    return await agent_actions._act(
        runtime,
        principal,
        case_id,
        roles=PROCESS_ROLES,
        action="changing the case's process",
        build=lambda case: CaseProcessChangeRequested(
            reference=case["reference"], process=change.process, reason=change.reason
        ),
        record=check,
        kind="process_change_requested",
        summary=lambda _case: {**before, "process": change.process, "reason": change.reason},
    )


async def request_stage_change(
    runtime: Runtime, principal: Principal, case_id: UUID, change: StageChange
) -> agent_actions.ActionAccepted:
    """case.stage_change_requested; 409 when the case has no process, the process has
    ended, or has no such stage or ending. Routing answers case.stage_entered or refuses
    (requirements unmet, a move back without a reason, ...)."""
    before: dict[str, Any] = {}

    async def check(conn: asyncpg.Connection, case: Case, _event: Envelope) -> None:
        process = await _process_of(conn, case_id)
        reason = stage_conflict(process, change)
        if reason:
            raise agent_actions.conflict(reason)
        assert process is not None
        labels = {s["name"]: s["label"] for s in process["stages"]}
        before.update(
            process=process["process"],
            from_stage=process.get("stage"),
            stage_label=labels.get(change.stage, change.stage),
        )

    return await agent_actions._act(
        runtime,
        principal,
        case_id,
        roles=PROCESS_ROLES,
        action="moving the case's stage",
        build=lambda case: CaseStageChangeRequested(
            reference=case["reference"],
            stage=change.stage,
            ending=change.ending,
            reason=change.reason,
        ),
        record=check,
        kind="stage_change_requested",
        summary=lambda _case: {
            **before,
            "stage": change.stage,
            "ending": change.ending,
            "reason": change.reason,
        },
    )


async def request_role_assignment(
    runtime: Runtime, principal: Principal, case_id: UUID, change: ProcessRoleAssignment
) -> agent_actions.ActionAccepted:
    """case.process_role_assignment_requested; 409 when the process has ended. Routing
    answers case.process_role_assigned or refuses (a respondent, someone in their
    management chain, a declared conflict, a role the process does not have)."""
    names = await roster.staff_names(runtime.pool)

    async def check(conn: asyncpg.Connection, case: Case, _event: Envelope) -> None:
        reason = role_conflict(await _process_of(conn, case_id))
        if reason:
            raise agent_actions.conflict(reason)

    return await agent_actions._act(
        runtime,
        principal,
        case_id,
        roles=PROCESS_ROLES,
        action="assigning a process role",
        build=lambda case: CaseProcessRoleAssignmentRequested(
            reference=case["reference"],
            role=change.role,
            staff_id=change.staff_id,
            reason=change.reason,
        ),
        record=check,
        kind="process_role_assignment_requested",
        summary=lambda _case: {
            "role": change.role,
            "staff_id": change.staff_id,
            "staff_name": names.get(change.staff_id),
            "reason": change.reason,
        },
    )


async def declare_conflict(
    runtime: Runtime, principal: Principal, case_id: UUID, declaration: ConflictDeclaration
) -> agent_actions.ActionAccepted:
    """case.conflict_declared for `declaration.staff_id` (the signed-in person when
    omitted): routing never gives them a process role on the case."""
    staff_id = declaration.staff_id or principal.subject
    if not re.fullmatch(STAFF_ID_PATTERN, staff_id):
        # A token whose subject is no staff id (an API client's): say whom.
        raise Refused("invalid", "staff_id: give the staff id of the person with the conflict")
    names = await roster.staff_names(runtime.pool)
    name = names.get(staff_id) or (principal.name if staff_id == principal.subject else None)
    return await agent_actions._act(
        runtime,
        principal,
        case_id,
        roles=PROCESS_ROLES,
        action="declaring a conflict of interest",
        build=lambda case: CaseConflictDeclared(
            reference=case["reference"], staff_id=staff_id, reason=declaration.reason
        ),
        kind="conflict_declared",
        summary=lambda _case: {
            "staff_id": staff_id,
            "staff_name": name,
            "reason": declaration.reason,
        },
    )
