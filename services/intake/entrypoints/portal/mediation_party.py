"""A party's own page of independent case management: /portal/cases/{id}/mediation/mine.

The employee and the employer's representative (signed in as employees whose
employee_id is a party's) read their own assessment, the ground rules (Accept), meeting
dates and shared summaries, the agreement (Accept this version) and their own
obligations. Never the other party's account, never the case manager's privileged notes.
Anyone else: 404, as for a missing case.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from fastapi import HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError

from services.intake.application import mediation
from services.intake.domain.mediation import (
    OBLIGATION_LABELS,
    PARTY_LABELS,
    AgreementAcceptanceInput,
)
from services.intake.domain.refusals import Refused
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.portal.mediation import AGREEMENT_STATES
from services.intake.entrypoints.portal.pages import (
    csrf_form,
    guarded,
    portal_router,
    render,
    see_other,
    sign_in_redirect,
    text,
)
from services.intake.entrypoints.web import as_http_error, runtime_of
from shared.auth import Principal

router = portal_router()
DONE = {
    "ground_rules": "You accepted the ground rules.",
    "agreement": "You accepted this version of the agreement.",
}


async def _render(
    request: Request,
    principal: Principal,
    case_id: UUID,
    *,
    action_error: str | None = None,
    status_code: int = 200,
) -> Response:
    shown = await mediation.party_view(runtime_of(request), principal, case_id)
    return render(
        request,
        "mediation_mine.html.j2",
        status_code,
        principal=principal,
        m=shown,
        party_labels=PARTY_LABELS,
        obligation_labels=OBLIGATION_LABELS,
        agreement_states=AGREEMENT_STATES,
        action_error=action_error,
        done=DONE.get(request.query_params.get("done", "")),
    )


@router.get("/portal/cases/{case_id}/mediation/mine")
async def my_mediation(case_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)
    return await guarded(request, lambda: _render(request, principal, case_id))


async def _accept(
    request: Request, case_id: UUID, key: str, run: Callable[[Principal, str], Awaitable[object]]
) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        form = await csrf_form(request)
        try:
            await run(principal, text(form, "version"))
        except (HTTPException, Refused) as caught:
            refusal = as_http_error(caught)
            if refusal.status_code not in (409, 422):
                raise refusal from None
            return await _render(
                request, principal, case_id, action_error=str(refusal.detail),
                status_code=refusal.status_code,
            )  # fmt: skip
        return see_other(f"/portal/cases/{case_id}/mediation/mine?done={key}#{key}")

    return await guarded(request, page)


@router.post("/portal/cases/{case_id}/mediation/ground-rules/{ground_rules_id}/accept")
async def accept_ground_rules(case_id: UUID, ground_rules_id: UUID, request: Request) -> Response:
    async def run(principal: Principal, _: str) -> object:
        return await mediation.accept_ground_rules(
            runtime_of(request), principal, case_id, ground_rules_id
        )

    return await _accept(request, case_id, "ground_rules", run)


@router.post("/portal/cases/{case_id}/mediation/agreement/{agreement_id}/accept")
async def accept_agreement(case_id: UUID, agreement_id: UUID, request: Request) -> Response:
    async def run(principal: Principal, version: str) -> object:
        try:
            body = AgreementAcceptanceInput.model_validate({"version": version or None})
        except ValidationError as exc:
            raise Refused("invalid", "version: the version you read is missing") from exc
        return await mediation.accept_agreement(
            runtime_of(request), principal, case_id, agreement_id, body
        )

    return await _accept(request, case_id, "agreement", run)
