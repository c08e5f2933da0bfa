"""Staff resolve a flagged respondent from the case page (one form per unresolved one)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Path, Request
from fastapi.responses import Response

from services.intake.application import agent_actions, respondent_resolution
from services.intake.domain.case import RespondentResolutionChange
from services.intake.entrypoints.portal import staff
from services.intake.entrypoints.portal.pages import portal_router, text
from shared.auth import Principal
from shared.service import Runtime

router = portal_router()


@router.post("/portal/cases/{case_id}/respondents/{position}/resolution")
async def resolve_respondent(
    case_id: UUID, position: Annotated[int, Path(ge=0, le=1000)], request: Request
) -> Response:
    name = f"respondent{position}"  # fields `respondent<position>_employee_id`, ...

    async def run(
        runtime: Runtime, principal: Principal, case_id: UUID, change: RespondentResolutionChange
    ) -> agent_actions.ActionAccepted:
        return await respondent_resolution.request_resolution(
            runtime, principal, case_id, position, change
        )

    return await staff._agent_action(
        request,
        case_id,
        name,
        RespondentResolutionChange,
        lambda form: {
            "employee_id": text(form, f"{name}_employee_id"),
            "reason": text(form, f"{name}_reason"),
        },
        run,
    )
