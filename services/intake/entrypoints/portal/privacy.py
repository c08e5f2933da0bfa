"""The privacy officers' door in the portal: `/portal/privacy` (README "Data-subject rights").

Plain server-rendered forms (CSRF-protected, no JavaScript) over the same use cases as the
JSON API (`application.privacy_rights`, `application.legal_holds`), so the rules are the
API's: only a privacy officer places and decides requests, the officer who placed an
erasure request cannot decide it (four-eyes), a hold blocks an erasure. HR managers may
use the legal holds part only. Anyone else gets 403 (and no link in the navigation).

- GET  /portal/privacy: erasure requests, access requests, legal holds, and their forms.
- POST /portal/privacy/access-requests {employee_id | email}
- GET  /portal/privacy/access-requests/{id}/export.json | export.html: the export download.
- POST /portal/privacy/erasure-requests {employee_id | email, reason}
- POST /portal/privacy/erasure-requests/{id}/decision {decision, reason, keep: references}
- POST /portal/privacy/legal-holds {target: case|subject|matter, ...; reason}
- POST /portal/privacy/legal-holds/{id}/release {reason}
A refusal a person can fix (a field, the four-eyes rule, a decided request, a released
hold) re-renders the page with the message next to the form; others are the error page.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal
from uuid import UUID

from fastapi import HTTPException, Request, status
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from services.intake.adapters import privacy_portal_sql
from services.intake.application import legal_holds, privacy_rights
from services.intake.domain.legal_holds import HOLD_ROLES, HoldRelease, NewLegalHold
from services.intake.domain.privacy_rights import (
    PRIVACY_ROLES,
    AccessRequestInput,
    ErasureDecisionInput,
    ErasureRequestInput,
    decision_refusal,
)
from services.intake.domain.refusals import Refused
from services.intake.entrypoints.http_privacy import export_download
from services.intake.entrypoints.portal import session
from services.intake.entrypoints.portal.pages import (
    csrf_form,
    field_errors,
    guarded,
    portal_router,
    render,
    see_other,
    sign_in_redirect,
    text,
)
from services.intake.entrypoints.web import as_http_error, client_of, runtime_of
from shared.auth import Principal

router = portal_router()

PAGE = "/portal/privacy"
DONE = {
    "access": "Access request placed: its export is ready to download below.",
    "erasure": "Erasure request placed. A second privacy officer decides it.",
    "decided": "Decision recorded.",
    "hold": "Legal hold placed.",
    "released": "Legal hold released.",
}
# Where each form sits on the page (the refusal is shown there).
Form = Literal["access", "erasure", "decision", "hold", "release"]
ANCHORS: dict[Form, str] = {
    "access": "access-requests",
    "erasure": "erasure-requests",
    "decision": "erasure-requests",
    "hold": "legal-holds",
    "release": "legal-holds",
}
# A model field named differently on the form.
RENAMED = {"name": "matter_name", "case_ids": "matter_cases", "keep": "keep"}
REFERENCE_SPLIT = re.compile(r"[\s,;]+")


def _officer(principal: Principal) -> bool:
    return principal.has_any(*PRIVACY_ROLES)


def _allowed(principal: Principal) -> None:
    if not principal.has_any(*HOLD_ROLES):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "The privacy pages are for privacy officers (and legal holds for HR managers).",
        )


async def _render(
    request: Request,
    principal: Principal,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    refusal: tuple[Form, str] | None = None,
    status_code: int = 200,
) -> Response:
    runtime, client = runtime_of(request), client_of(request)
    officer = _officer(principal)
    erasures = (
        await privacy_rights.read_erasure_requests(runtime, principal, client) if officer else []
    )
    accesses = (
        await privacy_rights.read_access_requests(runtime, principal, client) if officer else []
    )
    holds = await legal_holds.list_holds(runtime, principal)
    case_ids = {c for row in holds for c in [row["case_id"], *row["case_ids"]] if c}
    case_ids |= {c for row in erasures for c in [*row["kept_case_ids"], *row["erased_case_ids"]]}
    references = await privacy_portal_sql.references_of(runtime.pool, sorted(case_ids))
    return render(
        request,
        "privacy.html.j2",
        status_code,
        principal=principal,
        officer=officer,
        erasures=erasures,
        # Why this officer may not decide a pending request (the four-eyes rule), by id.
        cannot_decide={
            row["request_id"]: refused.detail
            for row in erasures
            if row["status"] == "pending"
            and (refused := decision_refusal(row, principal)) is not None
        },
        accesses=accesses,
        holds=holds,
        references=references,
        done=DONE.get(request.query_params.get("done", "")),
        errors=errors or {},
        values=values or {},
        refusal=refusal,
    )


@router.get(PAGE)
async def privacy_page(request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        _allowed(principal)
        return await _render(request, principal)

    return await guarded(request, page)


Action = Callable[[Principal, FormData], Awaitable[str]]


async def _post(request: Request, form_name: Form, act: Action) -> Response:
    """One form: check sign-in, role and CSRF; run `act` (returns the `done` key); a
    field error re-renders 422, a refusal the person can act on re-renders with it."""
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        _allowed(principal)
        form = await csrf_form(request)
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != session.CSRF_FIELD}
        try:
            done = await act(principal, form)
        except ValidationError as exc:
            errors = {f"{form_name}_{RENAMED.get(k, k)}": v for k, v in field_errors(exc).items()}
            return await _render(request, principal, errors=errors, values=values, status_code=422)
        except FieldError as exc:
            return await _render(
                request,
                principal,
                errors={f"{form_name}_{exc.field}": exc.message},
                values=values,
                status_code=422,
            )
        except (HTTPException, Refused) as caught:
            refusal = as_http_error(caught)
            if refusal.status_code == status.HTTP_404_NOT_FOUND:
                raise refusal from None
            return await _render(
                request,
                principal,
                values=values,
                refusal=(form_name, str(refusal.detail)),
                status_code=refusal.status_code,
            )
        return see_other(f"{PAGE}?done={done}#{ANCHORS[form_name]}")

    return await guarded(request, page)


class FieldError(Exception):
    """A form field the page reports itself (e.g. a case reference that names no case)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _subject(form: FormData, prefix: str) -> dict[str, str | None]:
    return {
        "employee_id": text(form, f"{prefix}_employee_id").strip() or None,
        "email": text(form, f"{prefix}_email").strip() or None,
    }


async def _case_ids(request: Request, raw: str, field: str) -> list[UUID]:
    """Case references (or ids) typed in a field, as case ids; FieldError naming the
    ones that are not cases."""
    wanted = [part for part in REFERENCE_SPLIT.split(raw.strip()) if part]
    found, unknown = await privacy_portal_sql.case_ids_of(runtime_of(request).pool, wanted)
    if unknown:
        raise FieldError(field, f"no case with the reference {', '.join(unknown)}")
    return found


@router.post(f"{PAGE}/access-requests")
async def place_access_request(request: Request) -> Response:
    async def act(principal: Principal, form: FormData) -> str:
        body = AccessRequestInput.model_validate(_subject(form, "access"))
        await privacy_rights.place_access_request(runtime_of(request), principal, body)
        return "access"

    return await _post(request, "access", act)


@router.get(f"{PAGE}/access-requests/{{request_id}}/export.{{fmt}}")
async def download_export(request_id: UUID, fmt: str, request: Request) -> Response:
    """The export as a download (JSON, or the readable HTML page); the read is audited."""
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        _allowed(principal)
        if fmt not in ("json", "html"):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such export format")
        row = await privacy_rights.read_export(
            runtime_of(request),
            principal,
            request_id,
            client_of(request),
            view=f"portal:access_export:{fmt}",
        )
        return export_download(row["export"], request_id, "html" if fmt == "html" else "json")

    return await guarded(request, page)


@router.post(f"{PAGE}/erasure-requests")
async def place_erasure_request(request: Request) -> Response:
    async def act(principal: Principal, form: FormData) -> str:
        body = ErasureRequestInput.model_validate(
            {**_subject(form, "erasure"), "reason": text(form, "erasure_reason").strip()}
        )
        await privacy_rights.place_erasure_request(runtime_of(request), principal, body)
        return "erasure"

    return await _post(request, "erasure", act)


@router.post(f"{PAGE}/erasure-requests/{{request_id}}/decision")
async def decide_erasure_request(request_id: UUID, request: Request) -> Response:
    async def act(principal: Principal, form: FormData) -> str:
        keep = await _case_ids(request, text(form, "decision_keep"), "keep")
        body = ErasureDecisionInput.model_validate(
            {
                "decision": text(form, "decision_decision"),
                "reason": text(form, "decision_reason").strip(),
                "keep": keep,
            }
        )
        await privacy_rights.decide_erasure(runtime_of(request), principal, request_id, body)
        return "decided"

    return await _post(request, "decision", act)


@router.post(f"{PAGE}/legal-holds")
async def place_hold(request: Request) -> Response:
    async def act(principal: Principal, form: FormData) -> str:
        target = text(form, "hold_target")
        fields: dict[str, Any] = {"reason": text(form, "hold_reason").strip()}
        if target == "case":
            found = await _case_ids(request, text(form, "hold_case_reference"), "case_reference")
            if len(found) != 1:
                raise FieldError("case_reference", "give one case reference")
            fields["case_id"] = found[0]
        elif target == "subject":
            fields["subject"] = _subject(form, "hold")
        elif target == "matter":
            fields["matter"] = {
                "name": text(form, "hold_matter_name").strip(),
                "case_ids": await _case_ids(
                    request, text(form, "hold_matter_cases"), "matter_cases"
                ),
            }
        else:
            raise FieldError("target", "choose what the hold covers")
        await legal_holds.place_hold(
            runtime_of(request), principal, NewLegalHold.model_validate(fields)
        )
        return "hold"

    return await _post(request, "hold", act)


@router.post(f"{PAGE}/legal-holds/{{hold_id}}/release")
async def release_hold(hold_id: UUID, request: Request) -> Response:
    async def act(principal: Principal, form: FormData) -> str:
        body = HoldRelease.model_validate({"reason": text(form, "release_reason").strip()})
        await legal_holds.release_hold(runtime_of(request), principal, hold_id, body)
        return "released"

    return await _post(request, "release", act)
