"""The employee and agent portal: server-rendered pages, plain HTML forms, no JavaScript.

Pages call the same use cases as the JSON API, so the rules are the API's rules; the
portal modules only turn forms into calls and refusals into pages. This module holds
home, sign-in, my cases, raising a case and the case page's messages and files, and
assembles the portal's router (staff actions, anonymous follow-up, phone logging).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from services.intake.application import actions, investigation_parties
from services.intake.application import mediation as mediation_app
from services.intake.domain.case import (
    AnonymousReport,
    NewMessage,
    SubmitCase,
)
from services.intake.entrypoints.portal import (
    anonymous,
    audit_console,
    conferences,
    dashboard,
    documents,
    injury,
    investigation_party,
    investigations,
    mediation,
    mediation_party,
    phone,
    privacy,
    processes,
    respondents,
    session,
    sso,
    staff,
    statutory_clocks,
    tasks,
    work_queue,
)
from services.intake.entrypoints.portal.case_facts import (
    fact_values,
    form_errors,
    injury_from,
    respondents_from,
)
from services.intake.entrypoints.portal.case_view import render_case
from services.intake.entrypoints.portal.pages import (
    csrf_form,
    error_page,
    field_errors,
    guarded,
    portal_router,
    render,
    see_other,
    sign_in_redirect,
    text,
    uploads,
)
from services.intake.entrypoints.web import (
    client_of,
    runtime_of,
)
from shared.auth import Principal
from shared.uow import unit_of_work

router = portal_router()


# --- Home and sign-in --------------------------------------------------------------------


@router.get("/")
async def root() -> RedirectResponse:
    return see_other("/portal/")


@router.get("/favicon.ico")
async def favicon() -> Response:
    """Browsers ask for it on every site: "no icon" (204), not a 404 in the console."""
    return Response(
        status_code=status.HTTP_204_NO_CONTENT, headers={"Cache-Control": "max-age=86400"}
    )


@router.get("/portal/")
async def home(request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is not None:
        return see_other(session.landing_page(principal.roles))
    return render(request, "home.html.j2")


@router.get("/portal/sign-in")
async def sign_in_page(request: Request) -> Response:
    if not session.dev_sign_in_enabled() and session.sso_client(request) is None:
        return error_page(request, HTTPException(404, "sign-in is provided by single sign-on"))
    return render(
        request,
        "sign_in.html.j2",
        # Only offered when the development sign-in is on (the template asks dev_sign_in).
        identities=session.DEMO_IDENTITIES,
        next=session.safe_next(request.query_params.get("next")),
    )


@router.post("/portal/sign-in")
async def sign_in(request: Request) -> Response:
    async def page() -> Response:
        if not session.dev_sign_in_enabled():
            raise HTTPException(404, "sign-in is provided by single sign-on")
        form = await csrf_form(request)
        identity = session.DEMO_BY_KEY.get(text(form, "identity"))
        # Back to the page that asked for sign-in; a foreign or odd `next` is ignored.
        next_page = session.safe_next(text(form, "next"))
        if identity is None:
            return render(
                request,
                "sign_in.html.j2",
                400,
                identities=session.DEMO_IDENTITIES,
                error="Choose one of the demo identities.",
                next=next_page,
            )
        response = see_other(next_page or session.landing_page(identity.roles))
        await session.start_session(
            request,
            response,
            identity.subject,
            identity.roles,
            employee_id=identity.employee_id,
            name=identity.name,
            # The address on the HR record (single sign-on supplies it as a claim too):
            # an employee's own cases are raised with it, never with a typed one.
            email=identity.email,
            # The development directory is the record: its addresses are the people's.
            email_verified=True,
        )
        return response

    return await guarded(request, page)


@router.post("/portal/sign-out")
async def sign_out(request: Request) -> Response:
    async def page() -> Response:
        await csrf_form(request)
        # Signed in by the provider: its session ends too (RP-initiated logout), which
        # comes back to the portal's home page.
        at_provider = await sso.provider_sign_out_url(request)
        response = see_other("/portal/")
        await session.end_session(request, response)
        if at_provider:
            response.headers["location"] = at_provider
        return response

    return await guarded(request, page)


# --- My cases ----------------------------------------------------------------------------


@router.get("/portal/cases")
async def my_cases(request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)
    rows = await actions.my_cases(runtime_of(request), principal)
    concerning = await investigation_parties.investigations_concerning(
        runtime_of(request), principal
    )
    return render(
        request,
        "cases.html.j2",
        principal=principal,
        cases=rows,
        investigations=concerning,
        # "Case management you are part of": the cases where they are a party.
        mediation_cases=await mediation_app.cases_of_party(runtime_of(request), principal),
    )


def _raise_form(
    request: Request,
    principal: Principal | None,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    anonymous_only: bool = False,
) -> HTMLResponse:
    # A session whose identity carries name and address (every portal sign-in does) shows
    # them read-only; the typed fields are only for one without them.
    defaults = {
        "name": (principal.name if principal else None) or "",
        "email": (principal.email if principal else None) or "",
    }
    return render(
        request,
        "raise.html.j2",
        status_code,
        principal=principal,
        values={**defaults, **(values or {})},
        errors=errors or {},
        anonymous_only=anonymous_only or principal is None,
    )


@router.get("/portal/cases/new")
async def raise_page(request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)
    return _raise_form(request, principal)


@router.get("/portal/anonymous")
async def anonymous_page(request: Request) -> Response:
    """Reporting anonymously needs no sign-in at all."""
    return _raise_form(request, None, anonymous_only=True)


@router.post("/portal/cases")
async def raise_case(request: Request) -> Response:
    async def page() -> Response:
        form = await csrf_form(request)
        anonymous = text(form, "anonymous") == "yes"
        principal = None if anonymous else session.session_principal(request)
        if not anonymous and principal is None:
            return sign_in_redirect(request)
        values = {k: text(form, k) for k in ("subject", "description", "category", "name", "email")}
        category = values["category"] or None
        facts = {"respondents": respondents_from(form), "injury": injury_from(form)}
        try:
            if anonymous:
                report = AnonymousReport.model_validate(
                    {
                        "subject": values["subject"],
                        "description": values["description"],
                        "category": category,
                        "urgent": text(form, "urgent") == "yes",
                        **facts,
                    }
                )
            else:
                assert principal is not None
                submission = SubmitCase.model_validate(
                    {
                        "subject": values["subject"],
                        "description": values["description"],
                        "category": category,
                        # Name and address on file win over anything posted: the form
                        # shows them read-only and has no field to type them.
                        "reporter": {
                            "employee_id": principal.employee_id or "",
                            "name": principal.name or values["name"],
                            "email": principal.email or values["email"],
                        },
                        **facts,
                    }
                )
        except ValidationError as exc:
            return _raise_form(
                request,
                principal,
                values={**values, **fact_values(form), "anonymous": anonymous},
                errors=form_errors(exc, "reporter"),
                status_code=422,
                anonymous_only=anonymous and session.session_principal(request) is None,
            )
        files = await uploads(form)
        runtime = runtime_of(request)
        if anonymous:
            opened, key = await actions.raise_anonymous(
                unit_of_work(runtime), report, channel="portal", attachments=files
            )
            # The key is on this page only: not in a URL, a cookie or a log.
            return render(
                request,
                "anonymous_created.html.j2",
                201,
                principal=None,
                reference=opened.reference,
                secret_key=key,
            )
        assert principal is not None
        opened = await actions.raise_case(
            unit_of_work(runtime),
            principal,
            channel="portal",
            subject=submission.subject,
            description=submission.description,
            reporter=submission.reporter,
            category=submission.category,
            urgent=text(form, "urgent") == "yes",
            attachments=files,
            respondents=submission.respondents,
            injury=submission.injury,
        )
        return see_other(f"/portal/cases/{opened.case_id}?raised=1")

    return await guarded(request, page)


@router.get("/portal/cases/{case_id}")
async def case_page(case_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        return await render_case(request, principal, case_id)

    return await guarded(request, page)


# Confirmation after an agent action (?done=...): requests take effect when routing applies
# them, so the message says so rather than pretending the case has already changed.


@router.post("/portal/cases/{case_id}/messages")
async def add_message(case_id: UUID, request: Request) -> Response:
    principal = session.session_principal(request)
    if principal is None:
        return sign_in_redirect(request)

    async def page() -> Response:
        form = await csrf_form(request)
        try:
            message = NewMessage(body=text(form, "body"))
        except ValidationError as exc:
            return await render_case(
                request, principal, case_id, errors=field_errors(exc), status_code=422
            )
        await actions.post_message(
            runtime_of(request),
            principal,
            case_id,
            client_of(request),
            body=message.body,
            channel="portal",
            attachments=await uploads(form),
            view="portal:message",
        )
        return see_other(f"/portal/cases/{case_id}?sent=1#messages")

    return await guarded(request, page)


# After this module's own routes, so /portal/cases/new stays ahead of /portal/cases/{case_id}.
for _pages in (
    staff,
    anonymous,
    phone,
    injury,
    respondents,
    work_queue,
    tasks,
    documents,
    audit_console,
    dashboard,
    statutory_clocks,
    conferences,
    investigations,
    investigation_party,
    processes,
    mediation,
    mediation_party,
    dashboard,
    privacy,
    sso,
):
    router.include_router(_pages.router)
