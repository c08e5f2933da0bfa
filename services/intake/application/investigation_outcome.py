"""An investigation's outcome and appeal, at the staff doors (JSON API, portal): the
decided outcome (stage outcome, a finding on every allegation), the request for its
approval (routing judges the approver) and the appeal hearer's decision. The same write
path as the other facts (`investigations.record_fact`).
"""

from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg

from services.intake.adapters import investigation_sql as store
from services.intake.adapters import process_sql
from services.intake.application import agent_actions, investigations
from services.intake.application.investigations import Case, FactAccepted, Store
from services.intake.domain.investigations import (
    OUTCOME_STAGE,
    AppealDecisionInput,
    OutcomeInput,
    outcome_conflict,
)
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.envelope import Envelope
from shared.events import (
    CaseAppealDecided,
    CaseOutcomeApprovalRequested,
    CaseOutcomeDecided,
    EventPayload,
    OutcomeAction,
)
from shared.service import Runtime


async def decide_outcome(
    runtime: Runtime, principal: Principal, case_id: UUID, body: OutcomeInput
) -> FactAccepted:
    """case.outcome_decided (stage outcome, a finding on every allegation); intake gives
    each action its id. A new decision supersedes one not yet approved."""
    outcome_id = uuid4()
    actions = [OutcomeAction(action_id=uuid4(), **action.model_dump()) for action in body.actions]

    async def prepare(conn: asyncpg.Connection, case: Case) -> tuple[EventPayload, Store]:
        reason = outcome_conflict(
            await store.list_allegations(conn, case_id), await store.list_findings(conn, case_id)
        )
        if reason:
            raise agent_actions.conflict(reason)
        current = await store.current_outcome(conn, case_id, lock=True)
        if current is not None and current["approval_state"] == "approved":
            raise agent_actions.conflict("the outcome is already approved")

        async def save(conn: asyncpg.Connection, event: Envelope) -> None:
            await store.insert_outcome(
                conn,
                outcome_id=outcome_id,
                case_id=case_id,
                summary=body.summary,
                actions=[a.model_dump(mode="json") for a in actions],
                decided_by=principal.subject,
                decided_at=event.occurred_at,
            )

        payload = CaseOutcomeDecided(
            reference=case["reference"],
            outcome_id=outcome_id,
            summary=body.summary,
            actions=actions,
            decided_by=principal.subject,
        )
        return payload, save

    accepted = await investigations.record_fact(
        runtime,
        principal,
        case_id,
        action="deciding the outcome",
        kind="outcome_decided",
        prepare=prepare,
        stages=(OUTCOME_STAGE,),
    )
    return FactAccepted(accepted, outcome_id)


async def request_outcome_approval(
    runtime: Runtime, principal: Principal, case_id: UUID
) -> FactAccepted:
    """case.outcome_approval_requested with the caller as approver: routing judges whether
    they may approve (policy `approval_by`, not the decider nor the investigator) and
    answers case.outcome_approved or case.request_refused (shown on the outcome)."""
    holder: dict[str, UUID] = {}

    async def prepare(conn: asyncpg.Connection, case: Case) -> tuple[EventPayload, Store]:
        outcome = await store.current_outcome(conn, case_id, lock=True)
        if outcome is None:
            raise agent_actions.conflict("no outcome has been decided yet")
        if outcome["approval_state"] == "approved":
            raise agent_actions.conflict("the outcome is already approved")
        holder["outcome_id"] = outcome["outcome_id"]

        async def save(conn: asyncpg.Connection, event: Envelope) -> None:
            await store.request_approval(
                conn, outcome["outcome_id"], event_id=event.event_id, requested_by=principal.subject
            )

        payload = CaseOutcomeApprovalRequested(
            reference=case["reference"],
            outcome_id=outcome["outcome_id"],
            approver_id=principal.subject,
        )
        return payload, save

    accepted = await investigations.record_fact(
        runtime,
        principal,
        case_id,
        action="approving the outcome",
        kind="outcome_approval_requested",
        prepare=prepare,
        stages=(OUTCOME_STAGE,),
    )
    return FactAccepted(accepted, holder["outcome_id"])


async def decide_appeal(
    runtime: Runtime, principal: Principal, case_id: UUID, body: AppealDecisionInput
) -> FactAccepted:
    """case.appeal_decided: only the case's appeal hearer (403), on an appeal not yet
    decided (409)."""
    holder: dict[str, UUID] = {}

    async def prepare(conn: asyncpg.Connection, case: Case) -> tuple[EventPayload, Store]:
        roles = await process_sql.role_holders(conn, case_id)
        hearer = roles.get("appeal_hearer")
        if hearer is None or hearer["staff_id"] != principal.subject:
            raise Refused("forbidden", "only the case's appeal hearer decides an appeal")
        pending = [a for a in await store.list_appeals(conn, case_id) if a["decision"] is None]
        if not pending:
            raise agent_actions.conflict("no appeal is waiting for a decision")
        appeal = pending[0]
        holder["appeal_id"] = appeal["appeal_id"]

        async def save(conn: asyncpg.Connection, event: Envelope) -> None:
            for waiting in pending:  # one decision settles every appeal lodged
                await store.decide_appeal(
                    conn,
                    waiting["appeal_id"],
                    decision=body.decision,
                    reasoning=body.reasoning,
                    decided_by=principal.subject,
                    decided_at=event.occurred_at,
                )

        payload = CaseAppealDecided(
            reference=case["reference"],
            appeal_id=appeal["appeal_id"],
            decision=body.decision,
            reasoning=body.reasoning,
            decided_by=principal.subject,
        )
        return payload, save

    accepted = await investigations.record_fact(
        runtime,
        principal,
        case_id,
        action="deciding an appeal",
        kind="appeal_decided",
        prepare=prepare,
    )
    return FactAccepted(accepted, holder["appeal_id"])
