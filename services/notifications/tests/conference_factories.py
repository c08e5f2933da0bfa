"""Conference events as routing publishes them, for the notifications tests (fresh ids and
addresses on every call: the database, vhost and mail sink are shared within a run)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from shared.envelope import Actor, Envelope
from shared.events import (
    ConferenceAction,
    ConferenceActionDueSoon,
    ConferenceActionOverdue,
    ConferenceCancelled,
    ConferenceParticipant,
    ConferenceParticipantInvited,
    ConferencePlan,
    ConferencePlanned,
    ConferenceRescheduled,
    ConferenceRole,
    ConferenceSummaryRecorded,
    DesiredOutcome,
    DesiredOutcomeProposal,
    EventPayload,
    Person,
    make_event,
)

ROUTING = Actor(type="service", id="routing")
ZONE = "Australia/Sydney"
# 10:00 in Sydney (AEDT, UTC+11) on Wed 9 Dec 2026.
START = datetime(2026, 12, 8, 23, 0, tzinfo=UTC)
# Text that must never appear in any conference mail.
SECRET_PROPOSAL = "PROPOSAL-MARKER-h8Qe reduced hours because of the shoulder fracture"
SECRET_AGREED = "AGREED-MARKER-p2Lx return on light duties, no lifting over 5 kg"
SECRET_ACTION = "ACTION-MARKER-z5Nc book the MRI for the shoulder"
SECRET_OBJECTION = "OBJECTION-MARKER-c1Vd the worker disputes the diagnosis"
SECRET_REASON = "REASON-MARKER-t6Jm the doctor is on sick leave"


def participant(role: ConferenceRole, name: str) -> ConferenceParticipant:
    return ConferenceParticipant(
        participant_id=uuid4(),
        role=role,
        name=name,
        email=f"{role.replace('_', '-')}-{uuid4().hex[:8]}@example.org",
        employee_id=f"E{uuid4().hex[:6]}" if role == "worker" else None,
    )


def plan(*, start: datetime = START, location: str = "Site office, 1 Harbour St") -> ConferencePlan:
    return ConferencePlan(
        purpose="Plan the return to work after the workplace injury",
        scheduled_for=start,
        duration_minutes=60,
        time_zone=ZONE,
        mode="in_person",
        venue="workplace",
        location=location,
        agenda=["Welcome and purpose", "Suitable duties on return", "Next steps"],
        desired_outcomes=[
            DesiredOutcome(
                topic="Future employment",
                proposals=[DesiredOutcomeProposal(by="worker", text=SECRET_PROPOSAL)],
            ),
            DesiredOutcome(topic="Ongoing treatment", agreed=SECRET_AGREED),
        ],
    )


def event(payload: EventPayload, case_id: UUID) -> Envelope:
    return make_event(payload, producer="routing", actor=ROUTING, case_id=case_id)


def planned(
    *,
    case_id: UUID,
    ref: str,
    conference_id: UUID,
    participants: list[ConferenceParticipant],
    awaiting_consent: list[UUID],
    owner_id: str | None = None,
) -> Envelope:
    return event(
        ConferencePlanned(
            reference=ref,
            conference_id=conference_id,
            plan=plan(),
            participants=participants,
            awaiting_consent=awaiting_consent,
            sequence=0,
            owner_id=owner_id,
            notice_working_days=5,
        ),
        case_id,
    )


def participant_invited(
    *,
    case_id: UUID,
    ref: str,
    conference_id: UUID,
    participants: list[ConferenceParticipant],
    invited_id: UUID,
) -> Envelope:
    return event(
        ConferenceParticipantInvited(
            reference=ref,
            conference_id=conference_id,
            plan=plan(),
            participants=participants,
            awaiting_consent=[],
            sequence=0,
            participant_id=invited_id,
        ),
        case_id,
    )


def rescheduled(
    *,
    case_id: UUID,
    ref: str,
    conference_id: UUID,
    participants: list[ConferenceParticipant],
    removed: list[ConferenceParticipant],
    start: datetime,
    sequence: int = 1,
) -> Envelope:
    return event(
        ConferenceRescheduled(
            reference=ref,
            conference_id=conference_id,
            plan=plan(start=start),
            participants=participants,
            sequence=sequence,
            changed=["scheduled_for", "participants"],
            reason=SECRET_REASON,
            removed_participants=removed,
        ),
        case_id,
    )


def cancelled(
    *,
    case_id: UUID,
    ref: str,
    conference_id: UUID,
    participants: list[ConferenceParticipant],
    start: datetime,
    sequence: int,
) -> Envelope:
    return event(
        ConferenceCancelled(
            reference=ref,
            conference_id=conference_id,
            plan=plan(start=start),
            participants=participants,
            sequence=sequence,
            reason=SECRET_REASON,
        ),
        case_id,
    )


def action(owner: ConferenceParticipant, *, due: datetime) -> ConferenceAction:
    return ConferenceAction(
        action_id=uuid4(),
        description=SECRET_ACTION,
        owner_participant_id=owner.participant_id,
        owner_name=owner.name,
        owner_email=owner.email,
        due_on=due.date(),
        due_at=due,
    )


def summary_recorded(
    *,
    case_id: UUID,
    ref: str,
    conference_id: UUID,
    participants: list[ConferenceParticipant],
    actions: list[ConferenceAction],
    owner_id: str | None = None,
) -> Envelope:
    from shared.events import ConferenceObjection

    return event(
        ConferenceSummaryRecorded(
            reference=ref,
            conference_id=conference_id,
            plan=plan(),
            participants=participants,
            owner_id=owner_id,
            agreed_points=[SECRET_AGREED],
            actions=actions,
            objections=[ConferenceObjection(text=SECRET_OBJECTION)],
            summary_due_at=START + timedelta(days=7),
            on_time=True,
        ),
        case_id,
    )


def action_event(
    *,
    case_id: UUID,
    ref: str,
    conference_id: UUID,
    agreed: ConferenceAction,
    owner_id: str | None,
    overdue: bool,
    escalated_to: Person | None = None,
) -> Envelope:
    common = {
        "reference": ref,
        "conference_id": conference_id,
        "action_id": agreed.action_id,
        "description": agreed.description,
        "owner_name": agreed.owner_name,
        "owner_email": agreed.owner_email,
        "due_at": agreed.due_at,
        "owner_id": owner_id,
    }
    payload: EventPayload
    if overdue:
        payload = ConferenceActionOverdue(
            **common,
            escalated_to=escalated_to,
            escalation_level=1 if escalated_to else None,
        )
    else:
        payload = ConferenceActionDueSoon(**common)
    return event(payload, case_id)
