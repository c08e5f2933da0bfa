"""Case conferences on the real broker and database: intake's requests in, routing's
decisions (or refusals naming the rule) out, and the agreed actions' timers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.routing.tests.harness import (
    event,
    fast_policy,
    publish,
    purge_other_queues,
    submission,
    tapped,
)
from shared.envelope import Envelope, utcnow
from shared.events import (
    ConferenceActionCompletionRequested,
    ConferenceActionReplanningRequested,
    ConferenceActionRequest,
    ConferenceAttendance,
    ConferenceCancellationRequested,
    ConferenceChangeRequested,
    ConferenceConsentRecorded,
    ConferenceHoldRecordingRequested,
    ConferenceParticipant,
    ConferencePlan,
    ConferencePlanningRequested,
    ConferenceSummaryRecordingRequested,
    DesiredOutcome,
    InjuryDetails,
)
from tests.support.bus import declare_topology
from tests.support.conferences import conference_day_has_come
from tests.support.infra import ServiceProcess, free_port, service_env

SYDNEY = ZoneInfo("Australia/Sydney")  # injury management's calendar (round the clock here)


@pytest.fixture(scope="module")
async def routing(database_url, rabbitmq_url, amqp, logs_dir, tmp_path_factory):
    await declare_topology(amqp)
    # Round-the-clock calendars: every day is a working day, so 5 working days are 5 days.
    policy = fast_policy(tmp_path_factory.mktemp("policy") / "conferences.yaml")
    env = service_env(
        database_url,
        rabbitmq_url,
        ROUTING_POLICY_FILE=str(policy),
        ROUTING_TIMER_INTERVAL="0.2",
        ROUTING_HTTP_PORT=str(free_port()),
    )
    process = ServiceProcess(
        "routing", env, int(env["ROUTING_HTTP_PORT"]), logs_dir / "routing-conferences.log"
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
        await purge_other_queues(amqp)


@pytest.fixture
def second_routing(routing):
    """A second routing replica on the same queue and tables: action timers still fire once."""
    env = dict(routing.env)
    port = free_port()
    env.update(ROUTING_HTTP_PORT=str(port))
    replica = ServiceProcess("routing", env, port, routing.log_path.with_name("routing-conf-2.log"))
    replica.start()
    yield replica
    replica.stop()


def person(role: str, name: str, **extra: Any) -> ConferenceParticipant:
    email = f"{name.lower().replace(' ', '.')}@example.com"
    return ConferenceParticipant(
        participant_id=uuid.uuid4(), role=role, name=name, email=email, **extra
    )


def people() -> list[ConferenceParticipant]:
    return [
        person("worker", "Rae Kim", employee_id="E-500"),
        person("employer_representative", "Sam Ortiz"),
        person("case_manager", "James Ng", employee_id="A-4002"),
    ]


def plan(days_ahead: float = 8, **changes: Any) -> ConferencePlan:
    fields: dict[str, Any] = {
        "purpose": "Return to work after the shoulder injury",
        "scheduled_for": utcnow() + timedelta(days=days_ahead),
        "duration_minutes": 60,
        "time_zone": "Australia/Sydney",
        "mode": "in_person",
        "location": "Warehouse 3, 12 Dock Rd",
        "agenda": ["Suitable duties", "Treatment plan"],
        "desired_outcomes": [DesiredOutcome(topic="Future employment")],
    }
    fields.update(changes)
    return ConferencePlan.model_validate(fields)


async def injury_case(
    amqp, tap, *, respondents: tuple[str, ...] = (), jurisdiction: str | None = None
) -> tuple[uuid.UUID, str]:
    case_id, submitted = submission(
        "I hurt my shoulder lifting boxes",
        category="workplace_injury",
        injury=InjuryDetails(serious=True, jurisdiction=jurisdiction),
        respondents=respondents,
    )
    await publish(amqp, submitted)
    await tap.wait(lambda: tap.of(case_id, "case.assigned"), what="the case routed")
    return case_id, submitted.payload["reference"]


def planning(
    case_id: uuid.UUID, reference: str, participants=None, **plan_changes: Any
) -> Envelope:
    return event(
        ConferencePlanningRequested(
            reference=reference,
            conference_id=uuid.uuid4(),
            plan=plan(**plan_changes),
            participants=participants or people(),
        ),
        case_id,
    )


def answer_to(tap, case_id: uuid.UUID, request: Envelope) -> list[Envelope]:
    """The events routing published because of `request`."""
    return [e for e in tap.of(case_id) if e.causation_id == request.event_id]


async def decided(tap, case_id: uuid.UUID, request: Envelope, what: str) -> Envelope:
    await tap.wait(lambda: answer_to(tap, case_id, request), what=what)
    return answer_to(tap, case_id, request)[0]


async def test_a_plan_is_accepted_changed_and_cancelled(routing, amqp):
    async with tapped(amqp) as tap:
        case_id, reference = await injury_case(amqp, tap)
        owner = tap.of(case_id, "case.assigned")[0].payload["owner"]["id"]
        request = planning(case_id, reference)
        await publish(amqp, request)
        planned = await decided(tap, case_id, request, "the plan decided")
        assert planned.event_type == "conference.planned", planned.payload
        assert planned.payload["plan"]["venue"] == "workplace"  # the default
        assert planned.payload["sequence"] == 0 and planned.payload["awaiting_consent"] == []
        assert planned.payload["notice_working_days"] == 5
        assert planned.payload["owner_id"] == owner

        conference_id = request.payload["conference_id"]
        before = request.payload["participants"]
        kept = [ConferenceParticipant.model_validate(p) for p in before[:2]]
        union = person("union_representative", "Pat Union")
        change = event(
            ConferenceChangeRequested(
                reference=reference,
                conference_id=conference_id,
                plan=plan(days_ahead=9),
                participants=[*kept, union, person("case_manager", "Sofia Rossi")],
                reason="the worker's physiotherapy clashes",
            ),
            case_id,
        )
        await publish(amqp, change)
        rescheduled = await decided(tap, case_id, change, "the change decided")
        assert rescheduled.event_type == "conference.rescheduled", rescheduled.payload
        assert rescheduled.payload["sequence"] == 1
        assert rescheduled.payload["changed"] == ["scheduled_for", "participants"]
        assert [p["name"] for p in rescheduled.payload["removed_participants"]] == ["James Ng"]

        too_close = event(
            ConferenceChangeRequested(
                reference=reference,
                conference_id=conference_id,
                plan=plan(days_ahead=1),
                participants=[*kept, union, person("case_manager", "Sofia Rossi")],
                reason="sooner",
            ),
            case_id,
        )
        cancel = event(
            ConferenceCancellationRequested(
                reference=reference, conference_id=conference_id, reason="claim withdrawn"
            ),
            case_id,
        )
        again = event(
            ConferenceCancellationRequested(
                reference=reference, conference_id=conference_id, reason="twice"
            ),
            case_id,
        )
        await publish(amqp, too_close, cancel, again)
        refused_change = await decided(tap, case_id, too_close, "the late change refused")
        cancelled = await decided(tap, case_id, cancel, "the cancellation")
        refused_cancel = await decided(tap, case_id, again, "the second cancellation")
    assert refused_change.event_type == "case.request_refused"
    assert "too little notice" in refused_change.payload["reason"]
    assert cancelled.event_type == "conference.cancelled"
    assert cancelled.payload["reason"] == "claim withdrawn"
    assert cancelled.payload["sequence"] == 1
    assert refused_cancel.event_type == "case.request_refused"
    assert "only a planned conference can be cancelled" in refused_cancel.payload["reason"]


async def test_plans_breaking_a_rule_are_refused_naming_it(routing, amqp):
    async with tapped(amqp) as tap:
        case_id, reference = await injury_case(amqp, tap)
        short = planning(case_id, reference, days_ahead=2)
        no_worker = planning(
            case_id,
            reference,
            participants=[p for p in people() if p.role != "worker"]
            + [person("support_person", "Lee Friend")],
        )
        no_link = planning(case_id, reference, mode="video", location=None)
        await publish(amqp, short, no_worker, no_link)
        answers = [
            await decided(tap, case_id, request, "a refusal")
            for request in (short, no_worker, no_link)
        ]
    assert [a.event_type for a in answers] == ["case.request_refused"] * 3
    reasons = [a.payload["reason"] for a in answers]
    earliest = (short.occurred_at.astimezone(SYDNEY).date() + timedelta(days=5)).isoformat()
    assert "at least 5 working days" in reasons[0] and earliest in reasons[0]
    assert "exactly one worker" in reasons[1]
    assert "video_link" in reasons[2] and "https" in reasons[2]
    assert not tap.of(case_id, "conference.planned")


async def test_the_claims_jurisdiction_brings_its_own_rules(routing, amqp):
    """Injury management is NSW; a Victorian claim must also invite the rehabilitation
    provider (policy conferences.by_jurisdiction.vic)."""
    async with tapped(amqp) as tap:
        case_id, reference = await injury_case(amqp, tap, jurisdiction="vic")
        without = planning(case_id, reference)
        with_provider = planning(
            case_id,
            reference,
            participants=[*people(), person("rehabilitation_provider", "Kim Rehab")],
        )
        await publish(amqp, without, with_provider)
        refused = await decided(tap, case_id, without, "the Victorian plan without a provider")
        planned = await decided(tap, case_id, with_provider, "the Victorian plan")
    assert refused.event_type == "case.request_refused"
    assert "rehabilitation provider" in refused.payload["reason"]
    assert planned.event_type == "conference.planned"


def consent(reference: str, *, granted: bool = True) -> ConferenceConsentRecorded:
    return ConferenceConsentRecorded(
        reference=reference,
        consent="practitioner_involvement",
        given_by="worker",
        granted=granted,
        recorded_via="staff",
        basis="signed form",
        recorded_at=utcnow(),
    )


async def test_practitioners_wait_for_the_workers_consent_then_are_invited(routing, amqp):
    async with tapped(amqp) as tap:
        case_id, reference = await injury_case(amqp, tap)
        doctor = person("treating_doctor", "Dr Lee", organisation="City Clinic")
        psychologist = person("psychologist", "Dr Ray")
        first = planning(case_id, reference, participants=[*people(), doctor, psychologist])
        await publish(amqp, first)
        planned = await decided(tap, case_id, first, "the plan")
        assert planned.event_type == "conference.planned", planned.payload
        assert planned.payload["awaiting_consent"] == [
            str(doctor.participant_id),
            str(psychologist.participant_id),
        ]

        given = event(consent(reference), case_id)
        await publish(amqp, given)
        await tap.wait(
            lambda: len(answer_to(tap, case_id, given)) == 2, what="both practitioners invited"
        )
        invited = answer_to(tap, case_id, given)
        assert {e.event_type for e in invited} == {"conference.participant_invited"}
        assert [e.payload["participant_id"] for e in invited] == [
            str(doctor.participant_id),
            str(psychologist.participant_id),
        ]
        assert invited[-1].payload["awaiting_consent"] == []
        assert invited[0].payload["conference_id"] == first.payload["conference_id"]

        with_consent = planning(case_id, reference, participants=[*people(), doctor])
        await publish(amqp, with_consent)
        second = await decided(tap, case_id, with_consent, "a plan after the consent")
        assert second.payload["awaiting_consent"] == []

        withdrawn = event(consent(reference, granted=False), case_id)
        after_withdrawal = planning(case_id, reference, participants=[*people(), doctor])
        await publish(amqp, withdrawn, after_withdrawal)
        third = await decided(tap, case_id, after_withdrawal, "a plan after the withdrawal")
    assert third.payload["awaiting_consent"] == [str(doctor.participant_id)]
    assert not answer_to(tap, case_id, withdrawn)  # nothing is un-invited
    assert len(tap.of(case_id, "conference.participant_invited")) == 2


async def test_hold_summary_action_timers_and_completion(routing, second_routing, amqp, admin_pool):
    async with tapped(amqp) as tap:
        # The team lead (A-4001, ladder level 1) is a respondent: escalations pass them by.
        case_id, reference = await injury_case(amqp, tap, respondents=("A-4001",))
        participants = people()
        worker = participants[0]
        request = planning(case_id, reference, participants=participants)
        await publish(amqp, request)
        await decided(tap, case_id, request, "the plan")
        conference_id = uuid.UUID(request.payload["conference_id"])

        # Planned 8 days ahead: its day comes (in routing's table) before it is held.
        await conference_day_has_come(admin_pool, conference_id)
        held_at = utcnow()
        hold = event(
            ConferenceHoldRecordingRequested(
                reference=reference,
                conference_id=conference_id,
                held_at=held_at,
                attendance=[
                    ConferenceAttendance(participant_id=p.participant_id, attended=True)
                    for p in participants
                ],
            ),
            case_id,
        )
        await publish(amqp, hold)
        held = await decided(tap, case_id, hold, "the hold")
        assert held.event_type == "conference.held", held.payload
        due_day = held_at.astimezone(SYDNEY).date() + timedelta(days=6)  # end of the 5th day
        expected_due = datetime.combine(due_day, datetime.min.time(), SYDNEY)
        assert datetime.fromisoformat(held.payload["summary_due_at"]) == expected_due

        tomorrow = utcnow().astimezone(SYDNEY).date() + timedelta(days=1)
        by_worker = ConferenceActionRequest(
            action_id=uuid.uuid4(),
            description="Book the physiotherapy",
            owner_participant_id=worker.participant_id,
            due_on=tomorrow,
        )
        by_staff = ConferenceActionRequest(
            action_id=uuid.uuid4(),
            description="Send the suitable duties plan",
            owner_staff_id="A-4002",
            due_on=tomorrow + timedelta(days=2),
        )
        summary = event(
            ConferenceSummaryRecordingRequested(
                reference=reference,
                conference_id=conference_id,
                agreed_points=["Light duties for four weeks"],
                actions=[by_worker, by_staff],
            ),
            case_id,
        )
        await publish(amqp, summary)
        recorded = await decided(tap, case_id, summary, "the summary")
        assert recorded.event_type == "conference.summary_recorded", recorded.payload
        assert recorded.payload["on_time"] is True
        first, second = recorded.payload["actions"]
        assert (first["owner_name"], first["owner_email"]) == ("Rae Kim", "rae.kim@example.com")
        assert second["owner_name"] == "James Ng"
        assert first["due_soon_at"] is not None
        assert datetime.fromisoformat(first["due_at"]) == datetime.combine(
            tomorrow + timedelta(days=1), datetime.min.time(), SYDNEY
        )

        # Time travel: the worker's action reaches its reminder, then its due instant.
        await admin_pool.execute(
            "UPDATE routing.conference_actions SET due_soon_at = now() WHERE action_id = $1",
            by_worker.action_id,
        )
        await tap.wait(lambda: tap.of(case_id, "conference.action_due_soon"), what="reminder")
        await admin_pool.execute(
            "UPDATE routing.conference_actions SET due_at = now() WHERE action_id = $1",
            by_worker.action_id,
        )
        await tap.wait(lambda: tap.of(case_id, "conference.action_overdue"), what="overdue")
        await asyncio.sleep(1.0)  # the other replica's ticks would have fired a duplicate by now

        later = tomorrow + timedelta(days=6)
        redate = event(
            ConferenceActionReplanningRequested(
                reference=reference,
                conference_id=conference_id,
                action_id=by_staff.action_id,
                reason="the duties plan needs the GP's report first",
                due_on=later,
            ),
            case_id,
        )
        await publish(amqp, redate)
        redated = await decided(tap, case_id, redate, "the new due date")
        assert redated.event_type == "conference.action_replanned", redated.payload
        assert redated.payload["ended"] is False
        assert datetime.fromisoformat(redated.payload["due_at"]) == datetime.combine(
            later + timedelta(days=1), datetime.min.time(), SYDNEY
        )

        done = event(
            ConferenceActionCompletionRequested(
                reference=reference,
                conference_id=conference_id,
                action_id=by_worker.action_id,
                note="booked for Monday",
            ),
            case_id,
        )
        carried = event(
            ConferenceActionReplanningRequested(
                reference=reference,
                conference_id=conference_id,
                action_id=by_staff.action_id,
                reason="moved to the return-to-work plan",
            ),
            case_id,
        )
        twice = event(
            ConferenceActionCompletionRequested(
                reference=reference, conference_id=conference_id, action_id=by_worker.action_id
            ),
            case_id,
        )
        await publish(amqp, done, carried, twice)
        await tap.wait(lambda: tap.of(case_id, "conference.completed"), what="completion")
        refused = await decided(tap, case_id, twice, "the second completion")
    (reminder,) = tap.of(case_id, "conference.action_due_soon")
    assert reminder.payload["action_id"] == str(by_worker.action_id)
    assert reminder.payload["owner_email"] == "rae.kim@example.com"
    (overdue,) = tap.of(case_id, "conference.action_overdue")
    assert overdue.payload["escalated_to"]["id"] == "M-9001"  # level 2: the lead is conflicted
    assert overdue.payload["escalation_level"] == 2
    (completed_action,) = tap.of(case_id, "conference.action_completed")
    assert completed_action.payload["on_time"] is False  # done after it fell due
    replanned = tap.of(case_id, "conference.action_replanned")
    assert [r.payload["ended"] for r in replanned] == [False, True]
    (completed,) = tap.of(case_id, "conference.completed")
    assert (completed.payload["actions_completed"], completed.payload["actions_replanned"]) == (
        1,
        1,
    )
    assert refused.event_type == "case.request_refused"
    assert "already done" in refused.payload["reason"]
    fired = await admin_pool.fetchrow(
        "SELECT due_soon_event_id, overdue_event_id FROM routing.conference_actions"
        " WHERE action_id = $1",
        by_worker.action_id,
    )
    assert fired["due_soon_event_id"] == reminder.event_id
    assert fired["overdue_event_id"] == overdue.event_id
    # The staff member's action never fell due: no timer of theirs fired.
    assert not [
        e
        for e in tap.of(case_id)
        if e.event_type in ("conference.action_due_soon", "conference.action_overdue")
        and e.payload["action_id"] == str(by_staff.action_id)
    ]


async def test_a_summary_without_actions_completes_the_conference(routing, amqp, admin_pool):
    async with tapped(amqp) as tap:
        case_id, reference = await injury_case(amqp, tap)
        participants = people()
        request = planning(case_id, reference, participants=participants)
        await publish(amqp, request)
        await decided(tap, case_id, request, "the plan")
        conference_id = uuid.UUID(request.payload["conference_id"])
        attendance = [
            ConferenceAttendance(participant_id=participants[0].participant_id, attended=True)
        ]
        # Planned 8 days ahead, it cannot be recorded as held today...
        too_soon = event(
            ConferenceHoldRecordingRequested(
                reference=reference,
                conference_id=conference_id,
                held_at=utcnow(),
                attendance=attendance,
            ),
            case_id,
        )
        await publish(amqp, too_soon)
        not_yet = await decided(tap, case_id, too_soon, "the hold before the conference's day")
        assert not_yet.event_type == "case.request_refused", not_yet.payload
        assert "before the conference's scheduled time" in not_yet.payload["reason"]
        assert "(Australia/Sydney)" in not_yet.payload["reason"]
        assert "reschedule" in not_yet.payload["reason"]
        # ...until its day has come.
        await conference_day_has_come(admin_pool, conference_id)
        early = event(
            ConferenceSummaryRecordingRequested(
                reference=reference, conference_id=conference_id, agreed_points=["x"]
            ),
            case_id,
        )
        hold = event(
            ConferenceHoldRecordingRequested(
                reference=reference,
                conference_id=conference_id,
                held_at=utcnow(),
                attendance=attendance,
            ),
            case_id,
        )
        summary = event(
            ConferenceSummaryRecordingRequested(
                reference=reference, conference_id=conference_id, agreed_points=["All settled"]
            ),
            case_id,
        )
        await publish(amqp, early, hold, summary)
        await tap.wait(lambda: tap.of(case_id, "conference.completed"), what="completion")
        refused = await decided(tap, case_id, early, "the early summary")
    assert refused.event_type == "case.request_refused"
    assert "held before its summary" in refused.payload["reason"]
    (completed,) = tap.of(case_id, "conference.completed")
    assert completed.payload["actions_completed"] == 0
