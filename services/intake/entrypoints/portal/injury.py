"""Staff record a later decision on a workplace injury's facts from the case page."""

from __future__ import annotations

from uuid import UUID

from fastapi import Request
from fastapi.responses import Response

from services.intake.application import injury_facts
from services.intake.domain.case import InjuryFactsChange
from services.intake.entrypoints.portal import staff
from services.intake.entrypoints.portal.case_facts import injury_from
from services.intake.entrypoints.portal.pages import portal_router

router = portal_router()


@router.post("/portal/cases/{case_id}/injury")
async def record_injury(case_id: UUID, request: Request) -> Response:
    return await staff._agent_action(
        request,
        case_id,
        "injury",
        InjuryFactsChange,
        lambda form: injury_from(form, partial=True) or {},
        injury_facts.record_injury_facts,
    )
