"""Case conferences for staff, for the JSON API and the portal: staff ask, routing decides.

Each request goes through the agent actions' one path (`agent_actions._act`): a staff role
(403), a case the caller may read (404, as for a missing case), not their own case (403),
not closed (409). Intake records the request and its command event in one transaction (a
planning also writes the conference row, status `requested`); routing answers with its
decision or case.request_refused, which conference_projection.py applies. Consents are
also recorded by the worker (the case's reporter) for themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.intake.adapters import conference_sql, sql
from services.intake.application import agent_actions
from services.intake.domain.conference_state import participants_from
from services.intake.domain.conferences import (
    CONFERENCE_ROLES,
    ActionCompletion,
    ActionReplanning,
    ConferenceCancellation,
    ConferenceChange,
    ConferencePlanInput,
    HoldRecording,
    SummaryRecording,
    action_conflict,
    change_conflict,
    default_outcomes,
    hold_conflict,
    summary_conflict,
)
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.envelope import Envelope
from shared.events import (
    ConferenceActionCompletionRequested,
    ConferenceActionReplanningRequested,
    ConferenceActionRequest,
    ConferenceAttendance,
    ConferenceCancellationRequested,
    ConferenceChangeRequested,
    ConferenceHoldRecordingRequested,
    ConferenceObjection,
    ConferenceParticipant,
    ConferencePlan,
    ConferencePlanningRequested,
    ConferenceSummaryRecordingRequested,
    EventPayload,
)
from shared.service import Runtime

Case = dict[str, Any]
Conference = dict[str, Any]
DEFAULT_TIME_ZONE = "UTC"


def invalid(detail: str) -> Refused:
    return Refused("invalid", detail)


async def default_time_zone(runtime: Runtime, case_id: UUID) -> str:
    """The owning team's calendar zone (routing's roster), else UTC."""
    case = await sql.get_case(runtime.pool, case_id)
    team = case.get("team") if case else None
    return await conference_sql.team_time_zone(runtime.pool, team) or DEFAULT_TIME_ZONE


def _plan(body: ConferencePlanInput, zone: str) -> ConferencePlan:
    return ConferencePlan(
        purpose=body.purpose,
        scheduled_for=body.scheduled_for,
        duration_minutes=body.duration_minutes,
        time_zone=body.time_zone or zone,
        mode=body.resolved_mode(),
        venue=body.resolved_venue(),
        venue_reason=body.venue_reason if body.resolved_venue() == "other_venue" else None,
        location=body.location,
        video_link=body.video_link,
        agenda=body.agenda,
        desired_outcomes=body.desired_outcomes or default_outcomes(),
    )


def _participants(body: ConferencePlanInput) -> list[ConferenceParticipant]:
    """Intake gives each new participant an id; a change keeps the ids it names."""
    return [
        ConferenceParticipant(
            participant_id=p.participant_id or uuid4(),
            role=p.role,
            name=p.name,
            email=str(p.email),
            organisation=p.organisation,
            employee_id=p.employee_id,
        )
        for p in body.participants
    ]


def _dumped(models: list[ConferenceParticipant]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in models]


async def plan_conference(
    runtime: Runtime, principal: Principal, case_id: UUID, body: ConferencePlanInput
) -> tuple[agent_actions.ActionAccepted, UUID]:
    """Record the conference (status requested) and publish conference.planning_requested;
    returns the accepted request and the conference's id."""
    conference_id = uuid4()
    plan = _plan(body, await default_time_zone(runtime, case_id))
    people = _participants(body)

    async def record(conn: asyncpg.Connection, case: Case, event: Envelope) -> None:
        await conference_sql.insert_conference(
            conn,
            conference_id=conference_id,
            case_id=case_id,
            plan=plan.model_dump(mode="json"),
            participants=participants_from(_dumped(people), [], decided=False),
            requested_by=principal.subject,
            request_event_id=event.event_id,
            created_at=event.occurred_at,
        )

    accepted = await agent_actions._act(
        runtime,
        principal,
        case_id,
        roles=CONFERENCE_ROLES,
        action="planning a case conference",
        build=lambda case: ConferencePlanningRequested(
            reference=case["reference"],
            conference_id=conference_id,
            plan=plan,
            participants=people,
        ),
        record=record,
        kind="conference_requested",
        summary=lambda _case: {
            "conference_id": str(conference_id),
            "scheduled_for": plan.scheduled_for.isoformat(),
            "time_zone": plan.time_zone,
        },
    )
    return accepted, conference_id


Check = Callable[[Conference], None]


async def _on_conference(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    conference_id: UUID,
    *,
    action: str,
    build: Callable[[str], EventPayload],
    check: Check,
) -> agent_actions.ActionAccepted:
    """A request about an existing conference of the case (404 for one not on it);
    `check` refuses (409/422) what the conference as intake knows it does not allow."""

    async def record(conn: asyncpg.Connection, case: Case, event: Envelope) -> None:
        conference = await conference_sql.lock_conference(conn, case_id, conference_id)
        if conference is None:
            raise Refused("not_found", "no such conference on this case")
        check(conference)
        await conference_sql.insert_request(
            conn, event.event_id, conference_id, event.event_type, event.occurred_at
        )

    return await agent_actions._act(
        runtime,
        principal,
        case_id,
        roles=CONFERENCE_ROLES,
        action=action,
        build=lambda case: build(case["reference"]),
        record=record,
        kind="conference_update_requested",
        summary=lambda _case: {"conference_id": str(conference_id), "action": action},
    )


def _conflict_check(rule: Callable[[str], str | None]) -> Check:
    def check(conference: Conference) -> None:
        reason = rule(conference["status"])
        if reason:
            raise agent_actions.conflict(reason)

    return check


def _participant_ids(conference: Conference) -> set[str]:
    return {str(p["participant_id"]) for p in conference["participants"]}


async def change_conference(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    conference_id: UUID,
    body: ConferenceChange,
) -> agent_actions.ActionAccepted:
    """Publish conference.change_requested with the complete new plan and participants."""
    plan = _plan(body, await default_time_zone(runtime, case_id))
    people = _participants(body)
    kept = {str(p.participant_id) for p in body.participants if p.participant_id}

    def check(conference: Conference) -> None:
        _conflict_check(change_conflict)(conference)
        unknown = kept - _participant_ids(conference)
        if unknown:
            first = sorted(unknown)[0]
            raise invalid(f"participants: participant_id {first} is not on this conference")

    return await _on_conference(
        runtime,
        principal,
        case_id,
        conference_id,
        action="changing a case conference",
        build=lambda reference: ConferenceChangeRequested(
            reference=reference,
            conference_id=conference_id,
            plan=plan,
            participants=people,
            reason=body.reason,
        ),
        check=check,
    )


async def cancel_conference(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    conference_id: UUID,
    body: ConferenceCancellation,
) -> agent_actions.ActionAccepted:
    return await _on_conference(
        runtime,
        principal,
        case_id,
        conference_id,
        action="cancelling a case conference",
        build=lambda reference: ConferenceCancellationRequested(
            reference=reference, conference_id=conference_id, reason=body.reason
        ),
        check=_conflict_check(change_conflict),
    )


async def record_attendance(
    runtime: Runtime, principal: Principal, case_id: UUID, conference_id: UUID, body: HoldRecording
) -> agent_actions.ActionAccepted:
    """Publish conference.hold_recording_requested: when it was held and who attended; the
    turn to state one's view is kept for telephone and video conferences only."""
    named = [str(a.participant_id) for a in body.attendance]

    def check(conference: Conference) -> None:
        _conflict_check(hold_conflict)(conference)
        unknown = set(named) - _participant_ids(conference)
        if unknown:
            first = sorted(unknown)[0]
            raise invalid(f"attendance: participant_id {first} is not on this conference")
        if len(named) != len(set(named)):
            raise invalid("attendance: a participant is listed twice")

    def build(reference: str) -> EventPayload:
        return ConferenceHoldRecordingRequested(
            reference=reference,
            conference_id=conference_id,
            held_at=body.held_at,
            attendance=[
                ConferenceAttendance(
                    participant_id=a.participant_id,
                    attended=a.attended,
                    view_stated=a.view_stated if a.attended else None,
                )
                for a in body.attendance
            ],
        )

    return await _on_conference(
        runtime,
        principal,
        case_id,
        conference_id,
        action="recording a conference's attendance",
        build=build,
        check=check,
    )


async def record_summary(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    conference_id: UUID,
    body: SummaryRecording,
) -> tuple[agent_actions.ActionAccepted, list[UUID]]:
    """Publish conference.summary_recording_requested; intake gives each action its id
    (returned in the order given)."""
    action_ids = [uuid4() for _ in body.actions]
    owners = {str(a.owner_participant_id) for a in body.actions if a.owner_participant_id}
    objectors = {str(o.participant_id) for o in body.objections if o.participant_id}

    def check(conference: Conference) -> None:
        _conflict_check(summary_conflict)(conference)
        on_it = _participant_ids(conference)
        if owners - on_it:
            raise invalid("actions: owner_participant_id is not a participant of this conference")
        if objectors - on_it:
            raise invalid("objections: participant_id is not a participant of this conference")

    accepted = await _on_conference(
        runtime,
        principal,
        case_id,
        conference_id,
        action="writing a conference's summary",
        build=lambda reference: ConferenceSummaryRecordingRequested(
            reference=reference,
            conference_id=conference_id,
            agreed_points=body.agreed_points,
            actions=[
                ConferenceActionRequest(
                    action_id=action_id,
                    description=a.description,
                    owner_participant_id=a.owner_participant_id,
                    owner_staff_id=a.owner_staff_id,
                    due_on=a.due_on,
                )
                for action_id, a in zip(action_ids, body.actions, strict=True)
            ],
            objections=[
                ConferenceObjection(participant_id=o.participant_id, text=o.text)
                for o in body.objections
            ],
        ),
        check=check,
    )
    return accepted, action_ids


def _action_check(action_id: UUID) -> Check:
    def check(conference: Conference) -> None:
        action = next(
            (a for a in conference["actions"] or [] if a["action_id"] == str(action_id)), None
        )
        if action is None:
            raise Refused("not_found", "no such action on this conference")
        reason = action_conflict(conference["status"], action)
        if reason:
            raise agent_actions.conflict(reason)

    return check


async def complete_action(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    conference_id: UUID,
    action_id: UUID,
    body: ActionCompletion,
) -> agent_actions.ActionAccepted:
    return await _on_conference(
        runtime,
        principal,
        case_id,
        conference_id,
        action="completing a conference action",
        build=lambda reference: ConferenceActionCompletionRequested(
            reference=reference, conference_id=conference_id, action_id=action_id, note=body.note
        ),
        check=_action_check(action_id),
    )


async def replan_action(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    conference_id: UUID,
    action_id: UUID,
    body: ActionReplanning,
) -> agent_actions.ActionAccepted:
    return await _on_conference(
        runtime,
        principal,
        case_id,
        conference_id,
        action="re-planning a conference action",
        build=lambda reference: ConferenceActionReplanningRequested(
            reference=reference,
            conference_id=conference_id,
            action_id=action_id,
            reason=body.reason,
            due_on=body.due_on,
        ),
        check=_action_check(action_id),
    )
