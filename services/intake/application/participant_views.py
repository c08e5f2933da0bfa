"""Each conference participant's view, projected from routing's conference decisions.

One row per (conference, participant) in intake.conference_participant_views: the plan,
the invited participants' names and roles, the status and, once recorded, the summary with
each action's status. Participants taken off the conference (conference.rescheduled's
`removed_participants`) keep their row, marked removed, so their link says so instead of
showing the conference. Only conference facts are copied: the page behind a participant's
signed link reads nothing else of the case.

PARTICIPANT_VIEW_HANDLERS is merged into intake's HANDLERS (handlers.py), which records
every consumed event in the case's history first. Redeliveries are harmless: every write
states the decision's values (upserts, idempotent updates).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.intake.adapters import participant_views as views
from services.intake.domain.participant_views import (
    ActionStatus,
    invited_people,
    summary_view,
    with_action_status,
)
from shared.consumer import Handler, HandlerContext
from shared.events import (
    ConferenceActionCompleted,
    ConferenceActionReplanned,
    ConferenceCancelled,
    ConferenceCompleted,
    ConferenceHeld,
    ConferenceParticipantInvited,
    ConferencePlanned,
    ConferenceRescheduled,
    ConferenceSummaryRecorded,
    payload_as,
)

Decision = (
    ConferencePlanned
    | ConferenceRescheduled
    | ConferenceCancelled
    | ConferenceParticipantInvited
    | ConferenceSummaryRecorded
)


def _case_id(ctx: HandlerContext) -> UUID:
    if ctx.envelope.case_id is None:
        raise ValueError(f"{ctx.envelope.event_type} without case_id")
    return ctx.envelope.case_id


async def _write_participants(ctx: HandlerContext, decision: Decision, status: str) -> None:
    """Every participant's row as the decision states the conference."""
    case_id = _case_id(ctx)
    waiting = set(decision.awaiting_consent)
    people = invited_people(decision.participants, waiting)
    plan = decision.plan.model_dump(mode="json")
    for participant in decision.participants:
        await views.upsert_participant(
            ctx.conn,
            conference_id=decision.conference_id,
            participant_id=participant.participant_id,
            case_id=case_id,
            reference=decision.reference,
            role=participant.role,
            name=participant.name,
            email=str(participant.email),
            employee_id=participant.employee_id,
            status=status,
            plan=plan,
            participants=people,
            invited=participant.participant_id not in waiting,
            updated_at=ctx.envelope.occurred_at,
        )


async def on_planned(ctx: HandlerContext) -> None:
    await _write_participants(ctx, payload_as(ctx.envelope, ConferencePlanned), "planned")


async def on_rescheduled(ctx: HandlerContext) -> None:
    """The new plan for everyone still on it; those taken off are marked removed."""
    rescheduled = payload_as(ctx.envelope, ConferenceRescheduled)
    status = await views.conference_status(ctx.conn, rescheduled.conference_id)
    # A change after the meeting (e.g. a participant taken off) never moves it back.
    kept_status = status if status in ("held", "summarised", "completed") else "planned"
    await _write_participants(ctx, rescheduled, kept_status)
    kept = {p.participant_id for p in rescheduled.participants}
    removed = [
        p.participant_id for p in rescheduled.removed_participants if p.participant_id not in kept
    ]
    await views.mark_removed(ctx.conn, rescheduled.conference_id, removed, ctx.envelope.occurred_at)


async def on_cancelled(ctx: HandlerContext) -> None:
    await _write_participants(ctx, payload_as(ctx.envelope, ConferenceCancelled), "cancelled")


async def on_participant_invited(ctx: HandlerContext) -> None:
    """A practitioner held back for consent is invited: the status stays as it is."""
    invited = payload_as(ctx.envelope, ConferenceParticipantInvited)
    status = await views.conference_status(ctx.conn, invited.conference_id) or "planned"
    await _write_participants(ctx, invited, status)


async def on_held(ctx: HandlerContext) -> None:
    held = payload_as(ctx.envelope, ConferenceHeld)
    status = await views.conference_status(ctx.conn, held.conference_id)
    if status in (None, "summarised", "completed"):
        return  # unknown here, or already further along (never moved back)
    await views.set_status(ctx.conn, held.conference_id, "held", ctx.envelope.occurred_at)


async def on_summary_recorded(ctx: HandlerContext) -> None:
    recorded = payload_as(ctx.envelope, ConferenceSummaryRecorded)
    await _write_participants(ctx, recorded, "summarised")
    summary = summary_view(
        recorded.agreed_points, recorded.actions, recorded.objections, recorded.participants
    )
    await views.set_summary(ctx.conn, recorded.conference_id, summary, ctx.envelope.occurred_at)


async def _action_status(
    ctx: HandlerContext,
    conference_id: UUID,
    action_id: UUID,
    status: ActionStatus,
    *,
    due_at: str | None = None,
    due_on: str | None = None,
) -> None:
    summary = await views.summary_of(ctx.conn, conference_id)
    if summary is None:
        return  # no summary known here: nothing to show the status on
    changed = with_action_status(summary, action_id, status, due_at=due_at, due_on=due_on)
    await views.set_summary(ctx.conn, conference_id, changed, ctx.envelope.occurred_at)


async def on_action_completed(ctx: HandlerContext) -> None:
    completed = payload_as(ctx.envelope, ConferenceActionCompleted)
    await _action_status(ctx, completed.conference_id, completed.action_id, "done")


async def on_action_replanned(ctx: HandlerContext) -> None:
    """A new due date (shown as the date in the conference's time zone), or ended here."""
    replanned = payload_as(ctx.envelope, ConferenceActionReplanned)
    if replanned.ended:
        await _action_status(ctx, replanned.conference_id, replanned.action_id, "ended")
        return
    row_zone = await _plan_zone(ctx, replanned.conference_id)
    # `due_at` is the end of the due day (or of its working hours): the instant just
    # before it falls on the due date.
    due_on = (replanned.due_at.astimezone(row_zone) - timedelta(seconds=1)).date()
    await _action_status(
        ctx,
        replanned.conference_id,
        replanned.action_id,
        "replanned",
        due_at=replanned.due_at.isoformat(),
        due_on=due_on.isoformat(),
    )


async def _plan_zone(ctx: HandlerContext, conference_id: UUID) -> ZoneInfo:
    zone = await views.plan_time_zone(ctx.conn, conference_id)
    try:
        return ZoneInfo(str(zone)) if zone else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


async def on_completed(ctx: HandlerContext) -> None:
    completed = payload_as(ctx.envelope, ConferenceCompleted)
    await views.set_status(ctx.conn, completed.conference_id, "completed", ctx.envelope.occurred_at)


PARTICIPANT_VIEW_HANDLERS: Mapping[str, Handler] = {
    "conference.planned": on_planned,
    "conference.rescheduled": on_rescheduled,
    "conference.cancelled": on_cancelled,
    "conference.participant_invited": on_participant_invited,
    "conference.held": on_held,
    "conference.summary_recorded": on_summary_recorded,
    "conference.action_completed": on_action_completed,
    "conference.action_replanned": on_action_replanned,
    "conference.completed": on_completed,
}
"""routing's conference decisions -> each participant's view (chained at merge with
intake-staff's CONFERENCE_HANDLERS for the same event types)."""
