"""The case page, as the reporter and as staff see it (and the agent action forms on it)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import Request
from fastapi.responses import Response

from services.intake.adapters import sql
from services.intake.application import (
    actions,
    case_page,
    conference_views,
    erased_cases,
    investigation_parties,
    mediation,
    processes,
    statutory_clocks,
    tasks,
    work_queue,
)
from services.intake.domain.case import (
    ASSIGNMENT_ROLES,
    CATEGORY_ROLES,
    CLOSED_STATUSES,
    NOTE_ROLES,
    STATUS_ROLES,
    status_options,
)
from services.intake.domain.conferences import STATUS_LABELS as CONFERENCE_STATUS_LABELS
from services.intake.entrypoints.portal.case_facts import case_page_facts
from services.intake.entrypoints.portal.conference_section import worker_conference_context
from services.intake.entrypoints.portal.document_list import documents_context
from services.intake.entrypoints.portal.pages import render
from services.intake.entrypoints.web import (
    client_of,
    runtime_of,
)
from shared.auth import Principal

ACTION_DONE = {
    "note": "Your note was added to the case.",
    "status": "Status change requested. The status above updates once routing applies it.",
    "category": "Re-categorisation requested. Category, priority and deadlines update once"
    " routing applies it.",
    "assignment": "Reassignment requested. The case handler updates once routing applies it.",
    "injury": "Injury decision recorded. Routing requires a case conference if it calls for one.",
    "task": "Task request sent. The task list updates once routing applies it.",
    "statutory_clock": "Recorded as done. The clock shows as met once routing applies it.",
    "stage": "Stage move requested. The process shows the new stage once routing applies it.",
    "process": "Process change requested. The process updates once routing applies it.",
    "process_role": "Role assignment requested. The role holders update once routing applies it.",
    "conflict": "Conflict of interest declared. Routing will not give that person a process"
    " role on this case.",
}
STAFF_STATUS_LABELS = {
    "in_progress": "In progress",
    "waiting_on_employee": "Waiting on the employee (pauses the SLA clocks)",
    "resolved": "Resolved",
    "closed": "Closed",
    "reopened": "Reopen",
}


def _agent_forms(
    principal: Principal, case: dict[str, Any], staff_view: bool, *, erased: bool = False
) -> dict[str, Any]:
    """Which action forms the page offers (the actions check again when posted). An erased
    case takes no note (new personal data, application/erased_cases.py)."""
    current = case["status"]
    open_case = current not in CLOSED_STATUSES
    return {
        "note": staff_view and open_case and not erased and principal.has_any(*NOTE_ROLES),
        "status": staff_view and principal.has_any(*STATUS_ROLES),
        "category": staff_view and open_case and principal.has_any(*CATEGORY_ROLES),
        "assignment": staff_view and open_case and principal.has_any(*ASSIGNMENT_ROLES),
        "status_options": [(s, STAFF_STATUS_LABELS[s]) for s in status_options(current)],
    }


async def render_case(
    request: Request,
    principal: Principal,
    case_id: UUID,
    *,
    errors: dict[str, str] | None = None,
    draft: str = "",
    values: dict[str, str] | None = None,
    action_error: str | None = None,
    status_code: int = 200,
) -> Response:
    runtime = runtime_of(request)
    row = await actions.readable_case(
        runtime, principal, case_id, client_of(request), view="portal"
    )
    found = await actions.details(runtime.pool, row, principal)
    erased = await erased_cases.erased_how(runtime.pool, case_id)
    # Who raised it, the history and the reporter's other cases: staff with need-to-know.
    docs = await documents_context(request, principal, found.case)
    if erased is not None:  # files are new personal data: no upload form on an erased case
        docs["documents_form"] = False
    extras = None
    if found.staff_view:
        extras = await case_page.staff_extras(runtime.pool, found, principal)
    return render(
        request,
        "case.html.j2",
        status_code,
        principal=principal,
        case=found.case,
        messages=found.messages,
        attachments=found.attachments,
        phone_call=found.phone_call,
        notes=found.notes,
        staff_view=found.staff_view,
        agent=_agent_forms(principal, found.case, found.staff_view, erased=erased is not None),
        # The reporter may still write to a closed case: routing reopens it or opens a
        # follow-up case. Staff reopen it first.
        # An erased case takes no new personal data (application/erased_cases.py).
        open_for_messages=erased is None
        and (found.case["status"] not in CLOSED_STATUSES or not found.staff_view),
        erased_sentence=erased_cases.sentence(erased) if erased else None,
        linked_cases=found.linked_cases,
        clocks=await work_queue.clocks_of_case(runtime.pool, found.case)
        if found.staff_view
        else (),
        task_section=await tasks.task_section(runtime.pool, principal, found.staff_view, row),
        statutory_clock_section=await statutory_clocks.clock_section(
            runtime.pool, principal, found.staff_view, found.case
        ),
        process_section=await processes.process_section(
            runtime.pool, principal, found.staff_view, row
        ),
        conference_section={
            **await conference_views.conference_section(
                runtime.pool, principal, found.staff_view, row
            ),
            "labels": CONFERENCE_STATUS_LABELS,
        },
        status_updates=await sql.list_reporter_status_updates(runtime.pool, case_id),
        mediation_link=await mediation.case_link(runtime.pool, principal, found.staff_view, row),
        raised=request.query_params.get("raised") == "1",
        logged=request.query_params.get("logged") == "1",
        sent=request.query_params.get("sent") == "1",
        done=ACTION_DONE.get(request.query_params.get("done", "")),
        action_error=action_error,
        errors=errors or {},
        draft=draft,
        values=values or {},
        **case_page_facts(found, principal),
        reporter=extras.reporter if extras else None,
        history=extras.history if extras else [],
        related_cases=extras.related if extras else [],
        staff_names=extras.names if extras else {},
        **docs,
        message_senders=case_page.message_senders(extras.history) if extras else {},
        **await worker_conference_context(request, principal, found.case),
        investigation_link=await investigation_parties.case_page_link(
            runtime.pool, found.case, staff_view=found.staff_view
        ),
    )
