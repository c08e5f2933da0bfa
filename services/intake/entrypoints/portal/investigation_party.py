"""A party's own investigation page: /portal/cases/{id}/investigation/mine, for the
complainant (the case's reporter) and each respondent, signed in as employees. It shows
only what concerns them (application/investigation_parties.py): their interviews, their
own statements with confirm / correct forms, the allegations concerning them, the outcome
letter's parts for them once approved, and the appeal form while the window is open.

- POST /portal/cases/{id}/investigation/mine/statements/{statement_id}/review
  (fields `choice` confirm|correct, `corrections`)
- POST /portal/cases/{id}/investigation/mine/appeal (field `grounds`)
Anyone else gets the 404 page, as for a missing case.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError

from services.intake.application import investigation_parties
from services.intake.domain.investigations import (
    ALLEGATION_LABELS,
    FINDING_LABELS,
    REVIEW_LABELS,
    AppealInput,
    StatementReviewInput,
)
from services.intake.domain.refusals import Refused
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.portal.pages import (
    csrf_form,
    guarded,
    portal_router,
    render,
    see_other,
    sign_in_redirect,
    text,
)
from services.intake.entrypoints.web import runtime_of
from shared.auth import Principal

router = portal_router()
DONE = {
    "confirmed": "Thank you: your statement is confirmed.",
    "corrected": "Thank you: your corrections were sent to the investigator.",
    "appeal": "Your appeal was lodged. Someone not yet involved in the case will hear it.",
}


def _page(case_id: UUID) -> str:
    return f"/portal/cases/{case_id}/investigation/mine"


async def render_mine(
    request: Request,
    principal: Principal,
    case_id: UUID,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    action_error: str | None = None,
    status_code: int = 200,
) -> Response:
    mine = await investigation_parties.my_investigation(runtime_of(request), principal, case_id)
    return render(
        request,
        "investigation_mine.html.j2",
        status_code,
        principal=principal,
        mine=mine,
        allegation_labels=ALLEGATION_LABELS,
        finding_labels=FINDING_LABELS,
        review_labels=REVIEW_LABELS,
        done=DONE.get(request.query_params.get("done", "")),
        errors=errors or {},
        values=values or {},
        action_error=action_error,
    )


@router.get("/portal/cases/{case_id}/investigation/mine")
async def my_investigation_page(case_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        return await render_mine(request, principal, case_id)

    return await guarded(request, page)


@router.post("/portal/cases/{case_id}/investigation/mine/statements/{statement_id}/review")
async def review_statement(case_id: UUID, statement_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        form = await csrf_form(request)
        confirmed = text(form, "choice") == "confirm"
        corrections = text(form, "corrections")
        try:
            body = StatementReviewInput(
                confirmed=confirmed, corrections=None if confirmed else corrections
            )
        except ValidationError:
            key = f"corrections-{statement_id}"
            return await render_mine(
                request,
                principal,
                case_id,
                errors={key: "Write your corrections (up to 20000 characters), or confirm."},
                values={key: corrections[:20000]},
                status_code=422,
            )
        await investigation_parties.review_statement(
            runtime_of(request), principal, case_id, statement_id, body
        )
        done = "confirmed" if confirmed else "corrected"
        return see_other(f"{_page(case_id)}?done={done}#statement-{statement_id}")

    return await guarded(request, page)


@router.post("/portal/cases/{case_id}/investigation/mine/appeal")
async def lodge_appeal(case_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        form = await csrf_form(request)
        grounds = text(form, "grounds")
        try:
            body = AppealInput(grounds=grounds)
        except ValidationError:
            return await render_mine(
                request,
                principal,
                case_id,
                errors={"grounds": "Write the grounds of your appeal (up to 20000 characters)."},
                values={"grounds": grounds[:20000]},
                status_code=422,
            )
        try:
            await investigation_parties.lodge_appeal(runtime_of(request), principal, case_id, body)
        except Refused as refused:
            if refused.kind != "conflict":
                raise
            return await render_mine(
                request, principal, case_id, action_error=refused.detail, status_code=409
            )
        return see_other(f"{_page(case_id)}?done=appeal#appeal")

    return await guarded(request, page)
