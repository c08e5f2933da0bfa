"""Routing's case conference decisions read as sentences in the audit timeline."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import uuid4

from services.audit.domain.timeline import SUMMARIES, summarise
from shared.events import (
    ConferenceAction,
    ConferenceActionOverdue,
    ConferenceActionReplanned,
    ConferenceCompleted,
    ConferenceParticipant,
    ConferencePlan,
    ConferencePlanned,
    ConferenceSummaryRecorded,
    DesiredOutcome,
    EventPayload,
    Person,
)
from shared.topology import PUBLISHES

AT = datetime(2026, 12, 7, 10, tzinfo=UTC)
PLAN = ConferencePlan(
    purpose="Return to work",
    scheduled_for=AT,
    duration_minutes=60,
    time_zone="Australia/Sydney",
    mode="video",
    video_link="https://meet.example.com/x",
    agenda=["Suitable duties"],
    desired_outcomes=[DesiredOutcome(topic="Future employment")],
)
WORKER = ConferenceParticipant(
    participant_id=uuid4(), role="worker", name="Rae Kim", email="rae.kim@example.com"
)
DOCTOR = ConferenceParticipant(
    participant_id=uuid4(), role="treating_doctor", name="Dr Lee", email="lee@example.com"
)


def line(payload: EventPayload) -> str:
    return summarise(payload.event_type, payload.model_dump(mode="json"))


def test_every_conference_event_routing_publishes_has_its_own_line() -> None:
    routing_conference = [t for t in PUBLISHES["routing"] if t.startswith("conference.")]
    assert len(routing_conference) == 12  # conference.required and routing's 11 decisions
    assert set(routing_conference) <= set(SUMMARIES)


def test_conference_decisions_read_as_sentences_without_the_summary_text() -> None:
    conference_id = uuid4()
    planned = ConferencePlanned(
        reference="HR-1",
        conference_id=conference_id,
        plan=PLAN,
        participants=[WORKER, DOCTOR],
        awaiting_consent=[DOCTOR.participant_id],
        notice_working_days=5,
    )
    assert line(planned) == (
        f"case conference {conference_id} planned for 2026-12-07T10:00:00Z (video),"
        " 2 participants, 1 awaiting consent"
    )
    action = ConferenceAction(
        action_id=uuid4(),
        description="Book the physiotherapy",
        owner_participant_id=WORKER.participant_id,
        owner_name="Rae Kim",
        owner_email="rae.kim@example.com",
        due_on=date(2026, 12, 9),
        due_at=AT,
    )
    summary = ConferenceSummaryRecorded(
        reference="HR-1",
        conference_id=conference_id,
        plan=PLAN,
        participants=[WORKER],
        agreed_points=["Light duties for four weeks (medical detail)"],
        actions=[action],
        objections=[],
        summary_due_at=AT,
        on_time=False,
    )
    text = line(summary)
    assert text.endswith("summary recorded (late): 1 agreed points, 1 actions, 0 objections")
    assert "Light duties" not in text
    common = {
        "reference": "HR-1",
        "conference_id": conference_id,
        "action_id": action.action_id,
        "description": "Book the physiotherapy",
        "owner_name": "Rae Kim",
        "owner_email": "rae.kim@example.com",
        "due_at": AT,
    }
    overdue = ConferenceActionOverdue(
        **common,
        escalated_to=Person(id="M-9001", name="Dana Whitfield", email="dana@example.com"),
        escalation_level=2,
    )
    assert line(overdue) == (
        "conference action overdue (due 2026-12-07T10:00:00Z), owner Rae Kim;"
        " escalated to Dana Whitfield (M-9001)"
    )
    carried = ConferenceActionReplanned(**common, reason="to the RTW plan", ended=True)
    assert line(carried) == "conference action carried out of the conference: to the RTW plan"
    done = ConferenceCompleted(
        reference="HR-1", conference_id=conference_id, actions_completed=2, actions_replanned=1
    )
    assert line(done) == (
        f"case conference {conference_id} complete: 2 actions done, 1 carried elsewhere"
    )
