"""The case page's "Process" section's forms (staff): move the stage, switch the process,
assign a process role, declare a conflict of interest. Plain forms, no JavaScript.

Bad input (422) and what intake already knows cannot apply (409: no such stage, the
process has ended, a closed case) re-render the case page with the message beside the
field; other refusals (403, 404) become the error page. Routing decides the rest, and
its refusal shows in the section (`last_refusal`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from fastapi import HTTPException, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from services.intake.application import agent_actions, processes
from services.intake.domain.processes import (
    ConflictDeclaration,
    ProcessChange,
    ProcessRoleAssignment,
    StageChange,
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
)
from services.intake.entrypoints.web import as_http_error, runtime_of
from shared.auth import Principal
from shared.service import Runtime

router = portal_router()

Submit = Callable[[Runtime, Principal, UUID, Any], Awaitable[agent_actions.ActionAccepted]]


async def _handle(
    request: Request,
    case_id: UUID,
    *,
    prefix: str,
    fields: dict[str, str],
    model: type[BaseModel],
    submit: Submit,
    main_field: str,
    done: str,
) -> Response:
    """Read `fields` (model field -> form field), validate, submit; errors beside the
    form's fields (a 409 beside `main_field`)."""
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        form: FormData = await csrf_form(request)
        values = {name: text(form, name) for name in fields.values()}
        body = {field: values[name].strip() for field, name in fields.items() if values[name]}
        try:
            parsed = model.model_validate(body)
        except ValidationError as exc:
            errors = {fields.get(k, f"{prefix}_{k}"): v for k, v in field_errors(exc).items()}
            return await render_case(
                request, principal, case_id, errors=errors, values=values, status_code=422
            )
        try:
            await submit(runtime_of(request), principal, case_id, parsed)
        except (HTTPException, Refused) as caught:
            refusal = as_http_error(caught)
            if refusal.status_code != status.HTTP_409_CONFLICT:
                raise refusal from None
            return await render_case(
                request,
                principal,
                case_id,
                errors={fields[main_field]: str(refusal.detail)},
                values=values,
                status_code=409,
            )
        return see_other(f"/portal/cases/{case_id}?done={done}#process")

    return await guarded(request, page)


@router.post("/portal/cases/{case_id}/process/stage")
async def move_stage(case_id: UUID, request: Request) -> Response:
    return await _handle(
        request,
        case_id,
        prefix="stage",
        fields={"stage": "stage_stage", "ending": "stage_ending", "reason": "stage_reason"},
        model=StageChange,
        submit=processes.request_stage_change,
        main_field="stage",
        done="stage",
    )


@router.post("/portal/cases/{case_id}/process/switch")
async def switch_process(case_id: UUID, request: Request) -> Response:
    return await _handle(
        request,
        case_id,
        prefix="switch",
        fields={"process": "switch_process", "reason": "switch_reason"},
        model=ProcessChange,
        submit=processes.request_process_change,
        main_field="process",
        done="process",
    )


@router.post("/portal/cases/{case_id}/process/roles")
async def assign_role(case_id: UUID, request: Request) -> Response:
    return await _handle(
        request,
        case_id,
        prefix="role",
        fields={"role": "role_role", "staff_id": "role_staff_id", "reason": "role_reason"},
        model=ProcessRoleAssignment,
        submit=processes.request_role_assignment,
        main_field="role",
        done="process_role",
    )


@router.post("/portal/cases/{case_id}/process/conflicts")
async def declare_conflict(case_id: UUID, request: Request) -> Response:
    return await _handle(
        request,
        case_id,
        prefix="conflict",
        fields={"staff_id": "conflict_staff_id", "reason": "conflict_reason"},
        model=ConflictDeclaration,
        submit=processes.declare_conflict,
        main_field="reason",
        done="conflict",
    )
