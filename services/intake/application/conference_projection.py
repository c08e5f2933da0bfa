"""Intake's projection of routing's conference decisions and notifications' relayed mails
into `intake.conferences` (the staff pages and the JSON API read it).

Every handler locks the case row first (as the case projections do), so one case's events
apply in the order they were published. A decision about a conference intake never
recorded cannot be shown on any page: it is retried and then dead-lettered with the
reason. Events intake publishes itself (acknowledged, objection_raised, consent_recorded)
are not consumed: their doors update the projection directly (`record_acknowledgement`,
`record_objection`, conference_consents.record_consent).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.adapters import conference_sql, sql
from services.intake.domain.conference_state import (
    participants_from,
    tracked_actions,
    with_action,
    with_mail,
    with_participant,
)
from shared.consumer import Handler, HandlerContext
from shared.events import (
    ConferenceActionCompleted,
    ConferenceActionDueSoon,
    ConferenceActionOverdue,
    ConferenceActionReplanned,
    ConferenceAgendaSent,
    ConferenceCancelled,
    ConferenceCompleted,
    ConferenceHeld,
    ConferenceNoticeSent,
    ConferenceParticipantInvited,
    ConferencePlanned,
    ConferenceRescheduled,
    ConferenceSummaryRecorded,
    ConferenceSummarySent,
    payload_as,
)

Conference = dict[str, Any]


async def _conference(ctx: HandlerContext, conference_id: UUID) -> Conference:
    case_id = ctx.envelope.case_id
    if case_id is None:
        raise ValueError(f"{ctx.envelope.event_type} without case_id")
    if await sql.lock_case_status(ctx.conn, case_id) is None:
        raise LookupError(f"case {case_id} is not known to intake")
    conference = await conference_sql.lock_conference(ctx.conn, case_id, conference_id)
    if conference is None:
        raise LookupError(f"conference {conference_id} is not known to intake")
    return conference


def _json(model: Any) -> Any:
    return model.model_dump(mode="json")


async def _decided(
    ctx: HandlerContext,
    decision: ConferencePlanned
    | ConferenceRescheduled
    | ConferenceCancelled
    | ConferenceParticipantInvited
    | ConferenceSummaryRecorded,
    **fields: Any,
) -> Conference:
    """Apply what every decision carries: the plan and participants as they now stand."""
    conference = await _conference(ctx, decision.conference_id)
    people = participants_from(
        [_json(p) for p in decision.participants],
        conference["participants"],
        [str(i) for i in decision.awaiting_consent],
        decided=True,
    )
    await conference_sql.update_conference(
        ctx.conn,
        decision.conference_id,
        plan=_json(decision.plan),
        participants=people,
        sequence=decision.sequence,
        **fields,
    )
    return conference


async def on_planned(ctx: HandlerContext) -> None:
    planned = payload_as(ctx.envelope, ConferencePlanned)
    await _decided(ctx, planned, status="planned", notice_working_days=planned.notice_working_days)


async def on_rescheduled(ctx: HandlerContext) -> None:
    await _decided(ctx, payload_as(ctx.envelope, ConferenceRescheduled), status="planned")


async def on_cancelled(ctx: HandlerContext) -> None:
    cancelled = payload_as(ctx.envelope, ConferenceCancelled)
    await _decided(ctx, cancelled, status="cancelled", cancelled_reason=cancelled.reason)


async def on_participant_invited(ctx: HandlerContext) -> None:
    await _decided(ctx, payload_as(ctx.envelope, ConferenceParticipantInvited))


async def on_held(ctx: HandlerContext) -> None:
    held = payload_as(ctx.envelope, ConferenceHeld)
    await _conference(ctx, held.conference_id)
    await conference_sql.update_conference(
        ctx.conn,
        held.conference_id,
        status="held",
        held_at=held.held_at,
        attendance=[_json(a) for a in held.attendance],
        summary={"summary_due_at": held.summary_due_at.isoformat()},
    )


async def on_summary_recorded(ctx: HandlerContext) -> None:
    recorded = payload_as(ctx.envelope, ConferenceSummaryRecorded)
    await _decided(
        ctx,
        recorded,
        status="summarised",
        summary={
            "agreed_points": recorded.agreed_points,
            "objections": [_json(o) for o in recorded.objections],
            "summary_due_at": recorded.summary_due_at.isoformat(),
            "on_time": recorded.on_time,
            "recorded_at": ctx.envelope.occurred_at.isoformat(),
        },
        actions=tracked_actions([_json(a) for a in recorded.actions]),
    )


async def _on_action(
    ctx: HandlerContext, conference_id: UUID, action_id: UUID, **fields: Any
) -> None:
    conference = await _conference(ctx, conference_id)
    actions = with_action(conference["actions"] or [], str(action_id), **fields)
    if actions is None:
        raise LookupError(f"action {action_id} is not on conference {conference_id}")
    await conference_sql.update_conference(ctx.conn, conference_id, actions=actions)


async def on_action_due_soon(ctx: HandlerContext) -> None:
    due = payload_as(ctx.envelope, ConferenceActionDueSoon)
    await _on_action(ctx, due.conference_id, due.action_id, due_soon=True)


async def on_action_overdue(ctx: HandlerContext) -> None:
    overdue = payload_as(ctx.envelope, ConferenceActionOverdue)
    await _on_action(
        ctx,
        overdue.conference_id,
        overdue.action_id,
        overdue=True,
        escalated_to_name=overdue.escalated_to.name if overdue.escalated_to else None,
    )


async def on_action_completed(ctx: HandlerContext) -> None:
    done = payload_as(ctx.envelope, ConferenceActionCompleted)
    await _on_action(
        ctx, done.conference_id, done.action_id, status="done", note=done.note, on_time=done.on_time
    )


async def on_action_replanned(ctx: HandlerContext) -> None:
    moved = payload_as(ctx.envelope, ConferenceActionReplanned)
    await _on_action(
        ctx,
        moved.conference_id,
        moved.action_id,
        status="ended" if moved.ended else "replanned",
        reason=moved.reason,
        due_at=moved.due_at.isoformat(),
        due_soon=False,
        overdue=False,
    )


async def on_completed(ctx: HandlerContext) -> None:
    completed = payload_as(ctx.envelope, ConferenceCompleted)
    await _conference(ctx, completed.conference_id)
    await conference_sql.update_conference(ctx.conn, completed.conference_id, status="completed")


async def _on_mail(ctx: HandlerContext, sent: Any, kind: str, **extra: Any) -> None:
    conference = await _conference(ctx, sent.conference_id)
    mail = {
        "kind": kind,
        "notification_id": str(sent.notification_id),
        "sent_at": sent.sent_at.isoformat(),
        **extra,
    }
    people = with_mail(conference["participants"], str(sent.participant_id), mail)
    if people is None:
        # A participant removed by a later change: the mail still went out, nothing to show.
        return
    await conference_sql.update_conference(ctx.conn, sent.conference_id, participants=people)


async def on_notice_sent(ctx: HandlerContext) -> None:
    await _on_mail(ctx, payload_as(ctx.envelope, ConferenceNoticeSent), "notice")


async def on_agenda_sent(ctx: HandlerContext) -> None:
    sent = payload_as(ctx.envelope, ConferenceAgendaSent)
    kind = "cancellation" if sent.method == "CANCEL" else "agenda"
    await _on_mail(ctx, sent, kind, sequence=sent.sequence, method=sent.method)


async def on_summary_sent(ctx: HandlerContext) -> None:
    sent = payload_as(ctx.envelope, ConferenceSummarySent)
    await _on_mail(ctx, sent, "summary", link_expires_at=sent.link_expires_at.isoformat())


async def refuse_request(conn: asyncpg.Connection, request_event_id: UUID, reason: str) -> bool:
    """Routing refused a conference request (case.request_refused): a refused planning
    shows the conference as refused with the reason; any other refused request is shown
    on the conference as its last refusal. False when it was no conference request."""
    found = await conference_sql.refuse_request(conn, request_event_id, reason)
    if found is None:
        return False
    request_type, conference_id = found
    if request_type == "conference.planning_requested":
        await conference_sql.update_conference(
            conn, conference_id, status="refused", refused_reason=reason
        )
    else:
        label = request_type.removeprefix("conference.").removesuffix("_requested")
        await conference_sql.update_conference(
            conn, conference_id, last_refusal=f"{label.replace('_', ' ')}: {reason}"
        )
    return True


async def record_acknowledgement(
    conn: asyncpg.Connection, conference_id: UUID, participant_id: UUID, at: datetime
) -> bool:
    """A participant acknowledged the summary (intake's own door published
    conference.acknowledged): shown on the staff page. False when not on the conference."""
    conference = await conference_sql.lock_by_id(conn, conference_id)
    if conference is None:
        return False
    people = with_participant(
        conference["participants"], str(participant_id), acknowledged_at=at.isoformat()
    )
    if people is None:
        return False
    await conference_sql.update_conference(conn, conference_id, participants=people)
    return True


async def record_objection(
    conn: asyncpg.Connection, conference_id: UUID, participant_id: UUID, text: str, at: datetime
) -> bool:
    """A participant objected to the summary (conference.objection_raised, intake's own)."""
    conference = await conference_sql.lock_by_id(conn, conference_id)
    if conference is None:
        return False
    people = with_participant(
        conference["participants"],
        str(participant_id),
        objection=text,
        objection_at=at.isoformat(),
    )
    if people is None:
        return False
    await conference_sql.update_conference(conn, conference_id, participants=people)
    return True


CONFERENCE_HANDLERS: Mapping[str, Handler] = {
    "conference.planned": on_planned,
    "conference.rescheduled": on_rescheduled,
    "conference.cancelled": on_cancelled,
    "conference.participant_invited": on_participant_invited,
    "conference.held": on_held,
    "conference.summary_recorded": on_summary_recorded,
    "conference.action_due_soon": on_action_due_soon,
    "conference.action_overdue": on_action_overdue,
    "conference.action_completed": on_action_completed,
    "conference.action_replanned": on_action_replanned,
    "conference.completed": on_completed,
    "conference.notice_sent": on_notice_sent,
    "conference.agenda_sent": on_agenda_sent,
    "conference.summary_sent": on_summary_sent,
}
