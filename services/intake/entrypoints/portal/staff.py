"""Agent actions from the case page (staff): notes and status, category, owner requests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

from fastapi import HTTPException, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from services.intake.application import agent_actions, documents
from services.intake.application.cases import NewAttachment
from services.intake.domain.case import (
    AgentNote,
    AssignmentChange,
    Recategorisation,
    StatusChange,
)
from services.intake.domain.refusals import Refused
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
    uploads,
)
from services.intake.entrypoints.web import (
    as_http_error,
    runtime_of,
)
from shared.auth import Principal
from shared.service import Runtime

router = portal_router()


# --- Agent actions (staff) ----------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)
Run = Callable[[Runtime, Principal, UUID, M], Awaitable[agent_actions.ActionAccepted]]


async def _agent_action(
    request: Request,
    case_id: UUID,
    name: str,
    model: type[M],
    read: Callable[[FormData], dict[str, Any]],
    run: Run[M],
    *,
    files: str | None = None,
) -> Response:
    """One action form: fields are named `<name>_<field>` so the forms share one page.
    With `files` (a file field's name) the uploads go along: a refused file is shown on
    the form under that field (413/422)."""
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        form = await csrf_form(request)
        values = {k: v for k, v in form.items() if k.startswith(f"{name}_") and isinstance(v, str)}
        try:
            parsed = model.model_validate(read(form))
        except ValidationError as exc:
            errors = {f"{name}_{field}": msg for field, msg in field_errors(exc).items()}
            return await render_case(
                request, principal, case_id, errors=errors, values=values, status_code=422
            )
        act = run
        if files is not None:
            try:
                attached = await uploads(form, files)
            except Refused as refused:
                return await render_case(
                    request,
                    principal,
                    case_id,
                    errors={files: refused.detail},
                    values=values,
                    status_code=as_http_error(refused).status_code,
                )
            act = _with_files(run, attached)
        try:
            await act(runtime_of(request), principal, case_id, parsed)
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
        return see_other(f"/portal/cases/{case_id}?done={name}#case-actions")

    return await guarded(request, page)


def _with_files(run: Run[M], attached: tuple[NewAttachment, ...]) -> Run[M]:
    async def with_files(
        runtime: Runtime, principal: Principal, case_id: UUID, parsed: M
    ) -> agent_actions.ActionAccepted:
        assert isinstance(parsed, AgentNote)
        return await documents.add_note_with_files(runtime, principal, case_id, parsed, attached)

    return with_files if attached else run


@router.post("/portal/cases/{case_id}/notes")
async def add_note(case_id: UUID, request: Request) -> Response:
    return await _agent_action(
        request,
        case_id,
        "note",
        AgentNote,
        # A checkbox sends nothing when unticked: unticked means internal (the safe default).
        lambda form: {
            "body": text(form, "note_body"),
            "internal": text(form, "note_shared") != "yes",
        },
        agent_actions.add_note,
        files="note_files",
    )


@router.post("/portal/cases/{case_id}/status")
async def request_status(case_id: UUID, request: Request) -> Response:
    return await _agent_action(
        request,
        case_id,
        "status",
        StatusChange,
        lambda form: {
            "to_status": text(form, "status_to_status"),
            "reason": text(form, "status_reason"),
        },
        agent_actions.request_status,
    )


@router.post("/portal/cases/{case_id}/category")
async def request_category(case_id: UUID, request: Request) -> Response:
    return await _agent_action(
        request,
        case_id,
        "category",
        Recategorisation,
        lambda form: {
            "category": text(form, "category_category"),
            "reason": text(form, "category_reason"),
        },
        agent_actions.request_category,
    )


@router.post("/portal/cases/{case_id}/assignment")
async def request_assignment(case_id: UUID, request: Request) -> Response:
    return await _agent_action(
        request,
        case_id,
        "assignment",
        AssignmentChange,
        lambda form: {
            "owner_id": text(form, "assignment_owner_id"),
            "reason": text(form, "assignment_reason"),
        },
        agent_actions.request_assignment,
    )
