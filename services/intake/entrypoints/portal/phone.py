"""Logging a phone call (agents): the form and its case."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from services.intake.application import actions
from services.intake.domain.case import (
    PhoneCall,
)
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.portal.case_facts import (
    fact_values,
    form_errors,
    injury_from,
    respondents_from,
)
from services.intake.entrypoints.portal.pages import (
    csrf_form,
    error_page,
    guarded,
    portal_router,
    render,
    see_other,
    sign_in_redirect,
    text,
)
from services.intake.entrypoints.web import (
    runtime_of,
)
from shared.auth import Principal
from shared.uow import unit_of_work

router = portal_router()


# --- Phone logging (agents) --------------------------------------------------------------


def _phone_form(
    request: Request,
    principal: Principal,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")
    return render(
        request,
        "phone.html.j2",
        status_code,
        principal=principal,
        values={"called_at": now, **(values or {})},
        errors=errors or {},
    )


def _agent(request: Request) -> Principal | Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)
    if not principal.has_any("hr_agent", "hr_manager"):
        return error_page(
            request, HTTPException(403, "logging a call requires the hr_agent or hr_manager role")
        )
    return principal


@router.get("/portal/phone-calls/new")
async def phone_page(request: Request) -> Response:
    agent = _agent(request)
    if isinstance(agent, Response):
        return agent
    return _phone_form(request, agent)


PHONE_FIELDS = (
    "caller_employee_id",
    "caller_name",
    "caller_email",
    "caller_details",
    "called_at",
    "duration_minutes",
    "summary",
    "subject",
    "category",
    "callback_number",
)


# Anything beyond this cannot be a call's length (the model then says what the limit is);
# it also keeps float("inf") and "1e308" from overflowing the conversion to seconds.
MAX_CALL_MINUTES = 100_000


@router.post("/portal/phone-calls")
async def log_phone_call(request: Request) -> Response:
    agent = _agent(request)
    if isinstance(agent, Response):
        return agent

    async def page() -> Response:
        form = await csrf_form(request)
        values = {name: text(form, name).strip() for name in PHONE_FIELDS}
        values.update(fact_values(form))
        errors: dict[str, str] = {}
        try:
            minutes = float(values["duration_minutes"] or "0")
            if not math.isfinite(minutes) or abs(minutes) > MAX_CALL_MINUTES:
                raise ValueError(minutes)
        except ValueError:
            minutes, errors["duration_minutes"] = 0, "give the duration in minutes"
        try:
            # datetime-local has no zone: the form says the time is UTC.
            called_at = datetime.fromisoformat(values["called_at"]).replace(tzinfo=UTC)
        except ValueError:
            called_at, errors["called_at"] = None, "give the date and time of the call"
        try:
            call = PhoneCall.model_validate(
                {
                    "caller": {
                        "employee_id": values["caller_employee_id"] or None,
                        "name": values["caller_name"] or None,
                        "email": values["caller_email"] or None,
                        "details": values["caller_details"] or None,
                    },
                    "called_at": called_at,
                    "duration_seconds": round(minutes * 60),
                    "summary": values["summary"],
                    "subject": values["subject"] or None,
                    "category": values["category"] or None,
                    "callback_number": values["callback_number"] or None,
                    "urgent": text(form, "urgent") == "yes",
                    "respondents": respondents_from(form),
                    "injury": injury_from(form),
                }
            )
        except ValidationError as exc:
            found = form_errors(exc)
            if "caller" in found:  # the model-level rule about who called
                found["caller_employee_id"] = found.pop("caller")
            renames = {"duration_seconds": "duration_minutes", "employee_id": "caller_employee_id"}
            for old, new in renames.items():
                if old in found:
                    found[new] = found.pop(old)
            for name in ("name", "email", "details"):
                if name in found:
                    found[f"caller_{name}"] = found.pop(name)
            errors = {**found, **errors}
        if errors:
            return _phone_form(request, agent, values=values, errors=errors, status_code=422)
        runtime = runtime_of(request)
        opened = await actions.log_phone_call(unit_of_work(runtime), agent, call)
        return see_other(f"/portal/cases/{opened.case_id}?logged=1")

    return await guarded(request, page)
