"""Intake's projections: routing events update the read model people see."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from services.intake.adapters import sql, task_sql
from services.intake.application import clocks
from services.intake.application.analytics_projection import on_employee_updated, with_analytics
from services.intake.application.case_scrub import on_retention_erased
from services.intake.application.cases import NewAttachment, NewCase, open_case
from services.intake.application.conference_projection import (
    CONFERENCE_HANDLERS,
)
from services.intake.application.conference_projection import (
    refuse_request as refuse_conference_request,
)
from services.intake.application.fact_projections import (
    on_conference_required,
    on_respondents_resolved,
)
from services.intake.application.history import history_only, with_history
from services.intake.application.investigation_projection import (
    APPROVAL_REQUEST,
    INVESTIGATION_HANDLERS,
    refuse_approval_request,
)
from services.intake.application.mediation import MEDIATION_HANDLERS
from services.intake.application.participant_views import PARTICIPANT_VIEW_HANDLERS
from services.intake.application.privacy_rights import on_notification_sent
from services.intake.application.process_projection import PROCESS_HANDLERS
from services.intake.application.roster import on_roster_published
from services.intake.application.statutory_clocks import CLOCK_HANDLERS
from services.intake.application.task_projection import TASK_HANDLERS
from services.intake.domain.case import advance_status
from services.intake.domain.reporter_updates import reporter_status_update
from shared.consumer import Handler, HandlerContext
from shared.envelope import Actor
from shared.events import (
    CaseAssigned,
    CaseAssignmentNeeded,
    CaseFollowUpCaseRequested,
    CaseReopened,
    CaseRequestRefused,
    CaseRouted,
    CaseStatusChanged,
    Reporter,
    payload_as,
)


async def _locked_status(ctx: HandlerContext) -> tuple[UUID, str]:
    case_id = ctx.envelope.case_id
    if case_id is None:
        raise ValueError(f"{ctx.envelope.event_type} without case_id")
    status = await sql.lock_case_status(ctx.conn, case_id)
    if status is None:
        # Intake commits a case before publishing it, so this is a foreign or early event:
        # failing lets it retry and, if it never resolves, lands it in the DLQ with this reason.
        raise LookupError(f"case {case_id} is not known to intake")
    return case_id, status


async def on_case_routed(ctx: HandlerContext) -> None:
    routed = payload_as(ctx.envelope, CaseRouted)
    case_id, status = await _locked_status(ctx)
    await clocks.follow_deadlines(
        ctx.conn,
        case_id,
        ctx.envelope.occurred_at,
        first_response_due=routed.first_response_due,
        resolution_due=routed.resolution_due,
    )
    await sql.update_case(
        ctx.conn,
        case_id,
        category=routed.category,
        sensitivity=routed.sensitivity,
        priority=routed.priority,
        first_response_due=routed.first_response_due,
        resolution_due=routed.resolution_due,
        routed_at=ctx.envelope.occurred_at,
        status=advance_status(status, "routed"),
    )


async def on_case_assigned(ctx: HandlerContext) -> None:
    assigned = payload_as(ctx.envelope, CaseAssigned)
    case_id, status = await _locked_status(ctx)
    await clocks.follow_deadlines(
        ctx.conn,
        case_id,
        ctx.envelope.occurred_at,
        first_response_due=assigned.first_response_due,
        team=assigned.team,
    )
    await sql.update_case(
        ctx.conn,
        case_id,
        team=assigned.team,
        owner_id=assigned.owner.id,
        owner_name=assigned.owner.name,
        assigned_at=ctx.envelope.occurred_at,
        status=advance_status(status, "assigned"),
        assignment_needed=None,
    )


async def on_case_assignment_needed(ctx: HandlerContext) -> None:
    """Routing found nobody eligible: the case shows as unassigned, needing a person."""
    needed = payload_as(ctx.envelope, CaseAssignmentNeeded)
    case_id, status = await _locked_status(ctx)
    await clocks.follow_deadlines(
        ctx.conn,
        case_id,
        ctx.envelope.occurred_at,
        first_response_due=needed.first_response_due,
        team=needed.team,
    )
    await sql.update_case(
        ctx.conn,
        case_id,
        team=needed.team,
        assignment_needed=needed.reason,
        status=advance_status(status, "routed"),
    )


async def on_case_status_changed(ctx: HandlerContext) -> None:
    changed = payload_as(ctx.envelope, CaseStatusChanged)
    case_id, _ = await _locked_status(ctx)
    await clocks.follow_status(ctx.conn, case_id, changed.to_status, ctx.envelope.occurred_at)
    # Routing owns the lifecycle: its latest word applies in any direction (a reopened case
    # goes back to in_progress). Safe because one consumer sees a case's events in order.
    await sql.update_case(ctx.conn, case_id, status=changed.to_status)
    # What the reporter sees of it (their case page, an anonymous reporter's follow-up page).
    update = reporter_status_update(changed.from_status, changed.to_status, changed.reason)
    if update is not None:
        await sql.insert_reporter_status_update(
            ctx.conn,
            event_id=ctx.envelope.event_id,
            case_id=case_id,
            kind=update.kind,
            reason=update.reason,
            occurred_at=ctx.envelope.occurred_at,
        )


REQUEST_LABELS = {
    "case.status_change_requested": "status change",
    "case.recategorisation_requested": "re-categorisation",
    "case.assignment_requested": "assignment",
    "task.creation_requested": "task",
    "task.completion_requested": "task completion",
    "task.reassignment_requested": "task reassignment",
    "task.cancellation_requested": "task cancellation",
    "statutory_clock.completion_requested": "statutory clock completion",
    "conference.planning_requested": "case conference",
    "case.outcome_approval_requested": "outcome approval",
    "conference.change_requested": "conference change",
    "conference.cancellation_requested": "conference cancellation",
    "conference.hold_recording_requested": "conference attendance",
    "conference.summary_recording_requested": "conference summary",
    "conference.action_completion_requested": "conference action completion",
    "conference.action_replanning_requested": "conference action re-planning",
    "case.process_change_requested": "process change",
    "case.stage_change_requested": "stage change",
    "case.process_role_assignment_requested": "process role assignment",
}


async def on_request_refused(ctx: HandlerContext) -> None:
    """Routing refused a staff request: say so on the case, for staff only."""
    refused = payload_as(ctx.envelope, CaseRequestRefused)
    case_id, _ = await _locked_status(ctx)
    label = REQUEST_LABELS.get(refused.request_type, refused.request_type)
    if refused.request_type == "task.creation_requested":
        # The task the request wrote shows as refused, with routing's reason.
        await task_sql.refuse_request(ctx.conn, refused.request_event_id, refused.reason)
    if refused.request_type.startswith("conference."):
        # The conference shows as refused (a planning) or with its last refusal.
        await refuse_conference_request(ctx.conn, refused.request_event_id, refused.reason)
    if refused.request_type == APPROVAL_REQUEST:
        # The investigation's outcome shows routing's reason (e.g. not a permitted approver).
        await refuse_approval_request(ctx.conn, refused.request_event_id, refused.reason)
    await sql.insert_note(
        ctx.conn,
        note_id=ctx.envelope.event_id,  # one note per refusal, whatever the redeliveries
        case_id=case_id,
        author_id="routing",
        author_name="Routing",
        body=f"Requested {label} was not applied: {refused.reason}",
        internal=True,
        created_at=ctx.envelope.occurred_at,
    )


async def on_case_reopened(ctx: HandlerContext) -> None:
    """The resolution clock runs again: show its new deadline (the status comes with
    routing's case.status_changed)."""
    reopened = payload_as(ctx.envelope, CaseReopened)
    case_id, _ = await _locked_status(ctx)
    if reopened.resolution_due is not None:
        await clocks.follow_reopened(ctx.conn, case_id, reopened.resolution_due)


FOLLOW_UP_SUBJECT_MAX = 200


async def on_follow_up_case_requested(ctx: HandlerContext) -> None:
    """Routing decided a reply to an old, closed case starts a new case: open it here,
    through the one `open_case` path, linked to the old case (acknowledged like any case)."""
    request = payload_as(ctx.envelope, CaseFollowUpCaseRequested)
    old_id, _ = await _locked_status(ctx)
    old = await sql.get_case(ctx.conn, old_id)
    assert old is not None  # locked above
    attachments = []
    for ref in request.attachments:  # the reply's files, copied onto the new case
        stored = await sql.get_attachment(ctx.conn, old_id, ref.attachment_id)
        if stored is not None:
            attachments.append(
                NewAttachment(stored["filename"], stored["content_type"], stored["content"])
            )
    reporter = (
        None
        if old["anonymous"]
        else Reporter(
            employee_id=old["reporter_employee_id"],
            name=old["reporter_name"],
            email=old["reporter_email"],
        )
    )
    subject = f"Follow-up to {old['reference']}: {old['subject']}"
    opened = await open_case(
        ctx.conn,
        NewCase(
            channel=request.channel,
            subject=subject[:FOLLOW_UP_SUBJECT_MAX],
            description=request.body,
            actor=(
                Actor(type="employee", id=old["reporter_employee_id"])
                if reporter
                else Actor(type="anonymous")
            ),
            reporter=reporter,
            category=old["requested_category"],
            attachments=tuple(attachments),
            anonymous_key_hash=old["anonymous_key_hash"],
            follows_up_case_id=old_id,
            follow_up_of_event_id=request.message_event_id,
        ),
    )
    await sql.insert_note(
        ctx.conn,
        note_id=ctx.envelope.event_id,
        case_id=old_id,
        author_id="routing",
        author_name="Routing",
        body=f"The reporter wrote again after closure; follow-up case {opened.reference} opened.",
        internal=True,
        created_at=ctx.envelope.occurred_at,
    )


def chained(*maps: Mapping[str, Handler]) -> dict[str, Handler]:
    """One handler per event type that runs each map's handler for it, in the order given,
    in the event's one transaction."""
    merged: dict[str, list[Handler]] = {}
    for handlers in maps:
        for event_type, handler in handlers.items():
            merged.setdefault(event_type, []).append(handler)

    def run_all(steps: list[Handler]) -> Handler:
        if len(steps) == 1:
            return steps[0]

        async def handler(ctx: HandlerContext) -> None:
            for step in steps:
                await step(ctx)

        handler.__name__ = "_then_".join(getattr(s, "__name__", "handler") for s in steps)
        return handler

    return {event_type: run_all(steps) for event_type, steps in merged.items()}


# Every event intake consumes is also kept in its case's history (application/history.py).
# Every event about a case also refreshes its analytics fact row, after its projection.
HANDLERS: Mapping[str, Handler] = with_history(
    with_analytics(
        {
            "case.routed": on_case_routed,
            "case.assigned": on_case_assigned,
            "case.status_changed": on_case_status_changed,
            "case.request_refused": on_request_refused,
            "case.follow_up_case_requested": on_follow_up_case_requested,
            "case.reopened": on_case_reopened,
            "case.assignment_needed": on_case_assignment_needed,
            "case.sla_warning": history_only,
            "case.sla_breached": history_only,
            "case.escalated": history_only,
            "case.respondents_resolved": on_respondents_resolved,
            "conference.required": on_conference_required,
            "routing.roster_published": on_roster_published,
            **TASK_HANDLERS,
            **CLOCK_HANDLERS,
            **PROCESS_HANDLERS,
            **INVESTIGATION_HANDLERS,
            **MEDIATION_HANDLERS,
            # Conference decisions feed two read models: the staff projection and each
            # participant's own view (which holds nothing else of the case).
            **chained(CONFERENCE_HANDLERS, PARTICIPANT_VIEW_HANDLERS),
            # Employees' departments, for the dashboard's recurring figures.
            "directory.employee_updated": on_employee_updated,
            # Retention carried out by routing: the case keeps its anonymous skeleton.
            "privacy.retention_erased": on_retention_erased,
        }
    )
)
# Data-subject rights: what notifications sent to whom (ids only), for access requests. Not
# a case-history event, so outside with_history.
HANDLERS = {**HANDLERS, "notification.sent": on_notification_sent}
