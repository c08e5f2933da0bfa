"""The anonymous reporter's follow-up: status and replies by reference and key."""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError

from services.intake.adapters import sql
from services.intake.application import actions
from services.intake.domain.case import (
    CLOSED_STATUSES,
    NewMessage,
)
from services.intake.domain.refusals import Refused
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.portal.document_list import anonymous_documents_context
from services.intake.entrypoints.portal.pages import (
    csrf_form,
    error_page,
    field_errors,
    guarded,
    portal_router,
    read_form,
    render,
    text,
    uploads,
)
from services.intake.entrypoints.web import (
    as_http_error,
    client_of,
    runtime_of,
)

router = portal_router()


# --- Anonymous follow-up -----------------------------------------------------------------


@router.get("/portal/anonymous/follow-up")
async def follow_up_page(request: Request) -> Response:
    return render(request, "follow_up.html.j2", principal=None, values={}, error=None)


async def _anonymous_status(
    request: Request, reference: str, key: str, *, sent: bool = False, error: str | None = None
) -> Response:
    runtime = runtime_of(request)
    case = await actions.anonymous_case(runtime, reference, key, client_of(request))
    messages = await sql.list_messages(runtime.pool, case["case_id"])
    notes = await sql.list_notes(runtime.pool, case["case_id"], include_internal=False)
    status_updates = await sql.list_reporter_status_updates(runtime.pool, case["case_id"])
    return render(
        request,
        "anonymous_case.html.j2",
        422 if error else 200,
        principal=None,
        case=case,
        messages=messages,
        notes=notes,
        status_updates=status_updates,
        secret_key=key,
        sent=sent,
        error=error,
        open_for_messages=case["status"] not in CLOSED_STATUSES,
        anonymous_key=key,
        **await anonymous_documents_context(request, case),
    )


@router.post("/portal/anonymous/follow-up")
async def follow_up(request: Request) -> Response:
    form = await read_form(request)
    reference, key = text(form, "reference").strip(), text(form, "secret_key").strip()
    try:
        session.check_csrf(request, text(form, session.CSRF_FIELD))
        return await _anonymous_status(request, reference, key)
    except (HTTPException, Refused) as caught:
        exc = as_http_error(caught)
        if exc.status_code == 403:
            return error_page(request, exc)
        return render(
            request,
            "follow_up.html.j2",
            exc.status_code,
            principal=None,
            values={"reference": reference},
            error=exc.detail,
        )


@router.post("/portal/anonymous/reply")
async def anonymous_reply(request: Request) -> Response:
    async def page() -> Response:
        form = await csrf_form(request)
        reference, key = text(form, "reference"), text(form, "secret_key")
        try:
            message = NewMessage(body=text(form, "body"))
        except ValidationError as exc:
            error = field_errors(exc).get("body", "write a message")
            return await _anonymous_status(request, reference, key, error=error)
        runtime = runtime_of(request)
        case = await actions.anonymous_case(runtime, reference, key, client_of(request))
        await actions.anonymous_reply(
            runtime, case, body=message.body, channel="portal", attachments=await uploads(form)
        )
        return await _anonymous_status(request, reference, key, sent=True)

    return await guarded(request, page)
