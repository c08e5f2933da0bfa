"""Staff record a later decision on a workplace injury's facts (date, serious, suitable
employment). Intake keeps the facts and the record of who changed them; routing decides
whether a case conference becomes mandatory (`conference.required`, once per case)."""

from __future__ import annotations

from uuid import UUID

import asyncpg
from pydantic import ValidationError

from services.intake.adapters import case_facts
from services.intake.application import agent_actions
from services.intake.domain.case import INJURY_ROLES, InjuryFactsChange
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.envelope import Envelope
from shared.events import CaseInjuryFactsRecorded, EventPayload, InjuryDetails
from shared.service import Runtime


async def record_injury_facts(
    runtime: Runtime, principal: Principal, case_id: UUID, change: InjuryFactsChange
) -> agent_actions.ActionAccepted:
    """Merge `change` onto the case's injury facts and publish them (202: routing decides).

    Refused: 403 without a staff role, 404 for a case the caller may not read, 409 for a
    closed case, 422 when the merged facts are invalid."""
    merged: list[InjuryDetails] = []

    def build(case: agent_actions.Case) -> EventPayload:
        try:
            facts = change.applied_to(case["injury"])
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"]) or "injury"
            raise Refused("invalid", f"{field}: {error['msg']}") from exc
        merged.append(InjuryDetails.model_validate(facts.model_dump()))
        return CaseInjuryFactsRecorded(reference=case["reference"], injury=merged[0])

    async def record(conn: asyncpg.Connection, case: agent_actions.Case, event: Envelope) -> None:
        await case_facts.record_injury(
            conn,
            event_id=event.event_id,
            case_id=case_id,
            recorded_by=principal.subject,
            recorded_at=event.occurred_at,
            injury=merged[0],
        )

    return await agent_actions._act(
        runtime,
        principal,
        case_id,
        roles=INJURY_ROLES,
        action="recording injury facts",
        build=build,
        record=record,
        kind="injury_facts_recorded",
        # The decision's facts, not the injury's description (staff-only history).
        summary=lambda _case: {
            "serious": merged[0].serious,
            "suitable_employment_available": merged[0].suitable_employment_available,
        },
    )
