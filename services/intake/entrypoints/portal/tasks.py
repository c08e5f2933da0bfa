"""Tasks from the case page (staff): add, complete, reassign, cancel. Plain forms, no JS.

Each form posts on its own with the page's CSRF token; a refusal the person can fix (bad
input 422, a task already ended 409) re-renders the case page with the message, other
refusals become the error page. Routing decides on every request: the page says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from fastapi import HTTPException, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from services.intake.application import tasks
from services.intake.domain.refusals import Refused
from services.intake.domain.tasks import NewTask, TaskCancellation, TaskReassignment
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
Run = Callable[[Runtime, Principal, BaseModel | None], Awaitable[object]]


def _due_at(value: str) -> str | None:
    """A `datetime-local` field has no zone: the form says it is UTC."""
    if not value:
        return None
    return value if value.endswith("Z") or "+" in value[10:] else f"{value}+00:00"


def _new_task(form: FormData) -> dict[str, Any]:
    hours = text(form, "task_due_in_working_hours").strip()
    return {
        "title": text(form, "task_title"),
        "assignee_id": text(form, "task_assignee_id").strip(),
        "description": text(form, "task_description") or None,
        "due_in_working_hours": hours or None,
        "due_at": _due_at(text(form, "task_due_at").strip()),
    }


async def _task_form(
    request: Request,
    case_id: UUID,
    prefix: str,
    model: type[BaseModel] | None,
    read: Callable[[FormData], dict[str, Any]],
    run: Run,
) -> Response:
    """One task form: its fields are named `<prefix>_<field>` (prefix unique on the page)."""
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        form = await csrf_form(request)
        values = {
            k: v for k, v in form.items() if k.startswith(f"{prefix}_") and isinstance(v, str)
        }
        parsed: BaseModel | None = None
        if model is not None:
            try:
                parsed = model.model_validate(read(form))
            except ValidationError as exc:
                errors = {f"{prefix}_{field}": msg for field, msg in field_errors(exc).items()}
                return await render_case(
                    request, principal, case_id, errors=errors, values=values, status_code=422
                )
        try:
            await run(runtime_of(request), principal, parsed)
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
        return see_other(f"/portal/cases/{case_id}?done=task#tasks")

    return await guarded(request, page)


@router.post("/portal/cases/{case_id}/tasks")
async def add_task(case_id: UUID, request: Request) -> Response:
    async def run(runtime: Runtime, principal: Principal, parsed: BaseModel | None) -> object:
        assert isinstance(parsed, NewTask)
        return await tasks.add_task(runtime, principal, case_id, parsed)

    return await _task_form(request, case_id, "task", NewTask, _new_task, run)


@router.post("/portal/cases/{case_id}/tasks/{task_id}/complete")
async def complete_task(case_id: UUID, task_id: UUID, request: Request) -> Response:
    async def run(runtime: Runtime, principal: Principal, _: BaseModel | None) -> object:
        return await tasks.complete_task(runtime, principal, case_id, task_id)

    return await _task_form(request, case_id, f"complete-{task_id}", None, lambda f: {}, run)


@router.post("/portal/cases/{case_id}/tasks/{task_id}/reassign")
async def reassign_task(case_id: UUID, task_id: UUID, request: Request) -> Response:
    prefix = f"reassign-{task_id}"

    async def run(runtime: Runtime, principal: Principal, parsed: BaseModel | None) -> object:
        assert isinstance(parsed, TaskReassignment)
        return await tasks.reassign_task(runtime, principal, case_id, task_id, parsed)

    return await _task_form(
        request,
        case_id,
        prefix,
        TaskReassignment,
        lambda form: {
            "assignee_id": text(form, f"{prefix}_assignee_id").strip(),
            "reason": text(form, f"{prefix}_reason") or None,
        },
        run,
    )


@router.post("/portal/cases/{case_id}/tasks/{task_id}/cancel")
async def cancel_task(case_id: UUID, task_id: UUID, request: Request) -> Response:
    prefix = f"cancel-{task_id}"

    async def run(runtime: Runtime, principal: Principal, parsed: BaseModel | None) -> object:
        assert isinstance(parsed, TaskCancellation)
        return await tasks.cancel_task(runtime, principal, case_id, task_id, parsed)

    return await _task_form(
        request,
        case_id,
        prefix,
        TaskCancellation,
        lambda form: {"reason": text(form, f"{prefix}_reason")},
        run,
    )
