"""Statutory clocks from the case page (staff): "Record as done". A plain form, no JS.

A refusal the person can fix (a note too long 422, a clock met already 409) re-renders the
case page with the message; other refusals become the error page. Routing decides.
"""

from __future__ import annotations

import re
from uuid import UUID

from fastapi import HTTPException, Request, status
from fastapi.responses import Response
from pydantic import ValidationError

from services.intake.application import statutory_clocks
from services.intake.domain.refusals import Refused
from services.intake.domain.statutory_clocks import KEY_PATTERN, ClockCompletion
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.portal.case_view import render_case
from services.intake.entrypoints.portal.pages import (
    csrf_form,
    field_errors,
    guarded,
    portal_router,
    see_other,
    sign_in_redirect,
    text,
)
from services.intake.entrypoints.web import as_http_error, runtime_of

router = portal_router()


@router.post("/portal/cases/{case_id}/statutory-clocks/{pack}/{clock}/completion")
async def record_clock_completion(
    case_id: UUID, pack: str, clock: str, request: Request
) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        form = await csrf_form(request)
        if not (re.fullmatch(KEY_PATTERN, pack) and re.fullmatch(KEY_PATTERN, clock)):
            raise Refused("not_found", "no such statutory clock on this case")
        prefix = f"clock-{pack}-{clock}"
        values = {k: v for k, v in form.items() if k.startswith(prefix) and isinstance(v, str)}
        try:
            completion = ClockCompletion(note=text(form, f"{prefix}_note").strip() or None)
        except ValidationError as exc:
            errors = {f"{prefix}_{field}": msg for field, msg in field_errors(exc).items()}
            return await render_case(
                request, principal, case_id, errors=errors, values=values, status_code=422
            )
        try:
            await statutory_clocks.request_completion(
                runtime_of(request), principal, case_id, pack, clock, completion
            )
        except (HTTPException, Refused) as caught:
            refusal = as_http_error(caught)
            if refusal.status_code != status.HTTP_409_CONFLICT:
                raise refusal from None
            return await render_case(
                request,
                principal,
                case_id,
                values=values,
                action_error=refusal.detail,
                status_code=409,
            )
        return see_other(f"/portal/cases/{case_id}?done=statutory_clock#statutory-clocks")

    return await guarded(request, page)
