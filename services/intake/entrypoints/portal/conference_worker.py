"""The worker's own "Case conference" section on their case page (the case's reporter,
signed in): their case's conferences as they take part in them, the written summary with
acknowledge / object buttons, and their consent controls.

- POST /portal/cases/{case_id}/my-conferences/{conference_id}/acknowledgement
- POST /portal/cases/{case_id}/my-conferences/{conference_id}/objection (field `objection`)
- POST /portal/cases/{case_id}/my-consents (fields `consent`, `choice` give|withdraw)

Each publishes the same event as the participant link (conference.acknowledged,
conference.objection_raised) with the worker's participant_id, or conference.consent_recorded
(given_by worker, recorded_via portal). Staff never get this section (they have their own).
"""

from __future__ import annotations

from typing import get_args
from uuid import UUID

from fastapi import HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError

from services.intake.application import participant_doors
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.portal.case_view import render_case
from services.intake.entrypoints.portal.conference_links import ObjectionForm
from services.intake.entrypoints.portal.pages import (
    csrf_form,
    guarded,
    portal_router,
    see_other,
    sign_in_redirect,
    text,
)
from services.intake.entrypoints.web import runtime_of
from shared.events import ConsentKind

router = portal_router()
OBJECTION_ERROR = "Write your objection (1 to 5000 characters)."


def _back(case_id: UUID, done: str) -> Response:
    return see_other(f"/portal/cases/{case_id}?conference={done}#case-conference")


@router.post("/portal/cases/{case_id}/my-conferences/{conference_id}/acknowledgement")
async def worker_acknowledges(case_id: UUID, conference_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        await csrf_form(request)
        await participant_doors.acknowledge_as_worker(
            runtime_of(request), principal, case_id, conference_id
        )
        return _back(case_id, "acknowledged")

    return await guarded(request, page)


@router.post("/portal/cases/{case_id}/my-conferences/{conference_id}/objection")
async def worker_objects(case_id: UUID, conference_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        form = await csrf_form(request)
        raw = text(form, "objection")
        try:
            objection = ObjectionForm(objection=raw).objection
        except ValidationError:
            return await render_case(
                request,
                principal,
                case_id,
                errors={
                    f"objection:{conference_id}": "Write your objection (1 to 5000 characters)."
                },
                values={f"objection:{conference_id}": raw[:5000]},
                status_code=422,
            )
        await participant_doors.object_as_worker(
            runtime_of(request), principal, case_id, conference_id, objection
        )
        return _back(case_id, "objection")

    return await guarded(request, page)


@router.post("/portal/cases/{case_id}/my-consents")
async def worker_consents(case_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        form = await csrf_form(request)
        consent = text(form, "consent")
        choice = text(form, "choice")
        if consent not in get_args(ConsentKind) or choice not in ("give", "withdraw"):
            raise HTTPException(422, "choose a consent and whether you give or withdraw it")
        await participant_doors.record_worker_consent(
            runtime_of(request),
            principal,
            case_id,
            consent,  # type: ignore[arg-type]  # checked against ConsentKind above
            granted=choice == "give",
        )
        return _back(case_id, "consent_given" if choice == "give" else "consent_withdrawn")

    return await guarded(request, page)
