"""Staff resolve a respondent routing could not match (flagged "needs a person").

Intake checks what its read model can tell (the case names a respondent at that position,
flagged as unresolved) and records the request; routing, which owns the employee directory
and the conflict-of-interest rule, decides: `case.respondents_resolved` with the new state
(and a reassignment when the owner is now conflicted), or `case.request_refused`.
"""

from __future__ import annotations

from uuid import UUID

from services.intake.adapters import case_facts
from services.intake.application import agent_actions
from services.intake.domain.case import RESPONDENT_ROLES, RespondentResolutionChange
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.events import CaseRespondentResolutionRequested
from shared.service import Runtime


async def request_resolution(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    position: int,
    change: RespondentResolutionChange,
) -> agent_actions.ActionAccepted:
    """Publish `case.respondent_resolution_requested` (202: routing decides).

    Refused: 403 without a staff role, 404 for a case the caller may not read or a
    position the case names nobody at, 409 for a closed case or a respondent that is
    not flagged (already resolved, or not matched by routing yet)."""
    found: list[dict[str, object]] = []

    def build(case: agent_actions.Case) -> CaseRespondentResolutionRequested:
        respondent = found[0] if found else None
        if respondent is None:
            raise Refused("not_found", f"the case names no respondent at position {position}")
        if respondent["resolved_at"] is None:
            raise agent_actions.conflict(
                "routing has not matched this respondent against the directory yet"
            )
        if respondent["resolved_employee_id"] is not None:
            raise agent_actions.conflict(
                f"this respondent is already resolved to {respondent['resolved_employee_id']}"
            )
        return CaseRespondentResolutionRequested(
            reference=case["reference"],
            position=position,
            employee_id=change.employee_id,
            reason=change.reason,
        )

    # Read before the action's transaction locks the case: the row only changes on
    # routing's answer, and routing re-checks everything under its own lock.
    named = await case_facts.list_respondents(runtime.pool, case_id)
    found.extend(r for r in named if r["position"] == position)
    return await agent_actions._act(
        runtime,
        principal,
        case_id,
        roles=RESPONDENT_ROLES,
        action="resolving a respondent",
        build=build,
        kind="respondent_resolution_requested",
        summary=lambda _case: {
            "position": position,
            "employee_id": change.employee_id,
            "reason": change.reason,
        },
    )
