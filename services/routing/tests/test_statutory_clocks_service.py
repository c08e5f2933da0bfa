"""Statutory clocks on the real broker and database (two routing replicas): a serious
workplace injury in NSW.

The policy is the shipped one with round-the-clock calendars; the NSW pack's insurer
notification runs 10.8 seconds (0.003 calendar hours) instead of 48 hours, so time "moves"
by waiting a few seconds; the other clocks keep their shipped lengths. A test clock
(`acknowledgement`) is met by `case.status_changed`, an event routing emits, to prove the
engine sees what handlers emit as well as what they consume.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
import yaml

from services.routing.application.statutory_clocks import ObservingContext, observe
from services.routing.domain.policy import load_policy
from services.routing.domain.statutory_clocks import watched_event_types
from services.routing.tests.harness import (
    event,
    fast_policy,
    publish,
    purge_other_queues,
    submission,
    tapped,
)
from shared.envelope import Actor, utcnow
from shared.events import (
    CaseStatusChangeRequested,
    ConferenceParticipant,
    ConferencePlan,
    ConferencePlanned,
    DesiredOutcome,
    InjuryDetails,
    StatutoryClockCompletionRequested,
    make_event,
)
from tests.support.bus import declare_topology
from tests.support.infra import ServiceProcess, free_port, own_database, service_env

NOTIFY_SECONDS = 0.003 * 3600


def clock_policy(path: Path) -> Path:
    fast_policy(path, first_response_hours=50)
    raw = copy.deepcopy(yaml.safe_load(path.read_text(encoding="utf-8")))
    nsw = raw["jurisdictions"]["nsw"]
    for clock in nsw["clocks"]:
        if clock["name"] == "insurer_notification":
            clock["within"] = {"calendar_hours": 0.003}
            clock["due_soon_share"] = 0.5
    nsw["clocks"].append(
        {
            "name": "acknowledgement",
            "label": "Acknowledge the claim",
            "citation": "test",
            "start_on": {"event": "case.routed", "when": {"category": "workplace_injury"}},
            "within": {"working_hours": 50},
            "met_on": ["case.status_changed"],
        }
    )
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def clock_database(infrastructure):
    with own_database("statutory_clocks") as url:
        yield url


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory) -> Path:
    return clock_policy(tmp_path_factory.mktemp("clock-policy") / "clocks.yaml")


@pytest.fixture(scope="module")
async def routing(clock_database, rabbitmq_url, amqp, logs_dir, policy_file):
    await declare_topology(amqp)
    # Two replicas on the same queue and tables: each timer still fires once.
    replicas = []
    for index in (1, 2):
        env = service_env(
            clock_database,
            rabbitmq_url,
            ROUTING_POLICY_FILE=str(policy_file),
            ROUTING_TIMER_INTERVAL="0.2",
            ROUTING_HTTP_PORT=str(free_port()),
        )
        replicas.append(
            ServiceProcess(
                "routing",
                env,
                int(env["ROUTING_HTTP_PORT"]),
                logs_dir / f"routing-clocks-{index}.log",
            )
        )
    for process in replicas:
        process.start()
    try:
        yield replicas
    finally:
        for process in replicas:
            process.stop()
        await purge_other_queues(amqp)


@pytest.fixture
async def clock_pool(clock_database):
    pool = await asyncpg.create_pool(clock_database, min_size=1, max_size=2)
    yield pool
    await pool.close()


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_a_serious_nsw_injury_runs_its_clocks_to_breach_and_to_met(
    routing, amqp, clock_pool, policy_file
):
    case_id, submitted = submission(
        "I slipped in the warehouse and hurt my back",
        injury=InjuryDetails(serious=True, suitable_employment_available=False),
    )
    async with tapped(amqp) as tap:
        await publish(amqp, submitted)

        def started():
            found = {
                (e.payload["pack"], e.payload["clock"]): e
                for e in tap.of(case_id, "statutory_clock.started")
            }
            return found if len(found) == 5 else None

        clocks = await tap.wait(started, what="five clocks started")
        assert set(clocks) == {
            ("nsw", "insurer_notification"),
            ("nsw", "insurer_contact"),
            ("nsw", "provisional_payments"),
            ("nsw", "acknowledgement"),
            ("conference_rules", "conference_planning"),
        }
        # In the transaction that routed the case: caused by the submission itself.
        assert all(e.causation_id == submitted.event_id for e in clocks.values())
        assert clocks[("nsw", "insurer_contact")].payload["trigger"] == "case.submitted"
        assert clocks[("nsw", "insurer_notification")].payload["trigger"] == "case.routed"
        planning = clocks[("conference_rules", "conference_planning")].payload
        (required,) = tap.of(case_id, "conference.required")
        assert planning["trigger"] == "conference.required"
        assert _at(planning["due_at"]) == _at(required.payload["due_by"])
        notify = clocks[("nsw", "insurer_notification")].payload
        started_at = _at(notify["started_at"])
        assert _at(notify["due_at"]) - started_at == timedelta(seconds=NOTIFY_SECONDS)
        assert notify["citation"].endswith("s 44") and notify["basis"] == "calendar"
        provisional = clocks[("nsw", "provisional_payments")].payload
        assert _at(provisional["due_at"]).astimezone(UTC) > started_at + timedelta(days=7)

        # Time moves on: due soon at half the clock, then the breach, escalated.
        breached = await tap.wait(
            lambda: tap.of(case_id, "statutory_clock.breached"), timeout=40, what="breach"
        )
        (due_soon,) = tap.of(case_id, "statutory_clock.due_soon")
        assert (due_soon.payload["pack"], due_soon.payload["clock"]) == (
            "nsw",
            "insurer_notification",
        )
        assert due_soon.occurred_at >= _at(notify["due_soon_at"])
        assert due_soon.occurred_at < _at(notify["due_at"]) <= breached[0].occurred_at
        (breach,) = breached
        owner = tap.of(case_id, "case.assigned")[0].payload["owner"]["id"]
        assert breach.payload["owner_id"] == owner
        assert breach.payload["escalation_level"] >= 1
        assert breach.payload["escalated_to"]["id"] not in {owner, None}
        assert breach.correlation_id == submitted.correlation_id

        # An event routing emits meets a clock (case.status_changed).
        await publish(amqp, event(CaseStatusChangeRequested(to_status="in_progress"), case_id))
        met_ack = await tap.wait(
            lambda: [
                e
                for e in tap.of(case_id, "statutory_clock.met")
                if e.payload["clock"] == "acknowledgement"
            ],
            what="acknowledgement met",
        )
        assert met_ack[0].payload["met_by"] == "case.status_changed"
        assert met_ack[0].payload["on_time"] is True

        # Staff record the insurer's contact as done; again, and an unknown clock: refused.
        def completion(clock: str):
            return event(
                StatutoryClockCompletionRequested(
                    reference=submitted.payload["reference"],
                    pack="nsw",
                    clock=clock,
                    note="phoned the worker",
                    completed_at=utcnow(),
                ),
                case_id,
            )

        done, again, unknown = (
            completion("insurer_contact"),
            completion("insurer_contact"),
            completion("no_such_clock"),
        )
        await publish(amqp, done)
        await tap.wait(
            lambda: [
                e
                for e in tap.of(case_id, "statutory_clock.met")
                if e.payload["clock"] == "insurer_contact"
            ],
            what="insurer contact met",
        )
        await publish(amqp, again, unknown)
        refusals = await tap.wait(
            lambda: (r := tap.of(case_id, "case.request_refused")) and len(r) == 2 and r,
            what="two refusals",
        )
        await asyncio.sleep(1.5)  # the other replica's ticks would have fired a duplicate
    kinds = tap.distinct(case_id)
    assert kinds["statutory_clock.started"] == 5
    assert kinds["statutory_clock.due_soon"] == kinds["statutory_clock.breached"] == 1
    assert kinds["statutory_clock.met"] == 2
    met = [
        e for e in tap.of(case_id, "statutory_clock.met") if e.payload["clock"] == "insurer_contact"
    ]
    assert len(met) == 1 and met[0].payload["met_by"] == "staff" and met[0].payload["on_time"]
    reasons = {r.payload["request_event_id"]: r.payload["reason"] for r in refusals}
    assert reasons[str(again.event_id)] == "the statutory clock nsw/insurer_contact is already met"
    assert (
        reasons[str(unknown.event_id)] == "no statutory clock nsw/no_such_clock runs on this case"
    )
    # Each timer fired once; a met clock keeps no pending timer.
    rows = await clock_pool.fetch(
        """SELECT k.clock, t.kind, t.fired_at IS NOT NULL AS fired
           FROM routing.statutory_clock_timers t
           JOIN routing.statutory_clocks k ON k.clock_id = t.clock_id
           WHERE t.case_id = $1""",
        case_id,
    )
    fired = sorted((r["clock"], r["kind"]) for r in rows if r["fired"])
    assert fired == [("insurer_notification", "breached"), ("insurer_notification", "due_soon")]
    pending = {r["clock"] for r in rows if not r["fired"]}
    assert "insurer_contact" not in pending and "acknowledgement" not in pending
    assert "conference_planning" in pending

    # conference.planned (which routing emits once conferences are planned) meets the
    # planning clock: the engine, run directly on the case in a transaction rolled back.
    policy = load_policy(policy_file)
    conference_id = uuid4()
    planned = make_event(
        ConferencePlanned(
            reference=submitted.payload["reference"],
            conference_id=conference_id,
            plan=ConferencePlan(
                purpose="Return to work",
                scheduled_for=utcnow() + timedelta(days=7),
                duration_minutes=60,
                time_zone="Australia/Sydney",
                mode="video",
                video_link="https://meet.example.org/x",
                agenda=["Suitable duties"],
                desired_outcomes=[DesiredOutcome(topic="Future employment")],
            ),
            participants=[
                ConferenceParticipant(
                    participant_id=uuid4(), role="worker", name="Rae Kim", email="rae@example.com"
                )
            ],
            notice_working_days=5,
        ),
        producer="routing",
        actor=Actor(type="service", id="routing"),
        case_id=case_id,
    )
    async with clock_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            ctx = ObservingContext(envelope=planned, conn=conn, service="routing", schema="routing")
            await observe(ctx, policy, watched_event_types(policy), [])
            (met_planning,) = ctx.emitted
            assert met_planning.event_type == "statutory_clock.met"
            assert met_planning.payload["clock"] == "conference_planning"
            assert met_planning.payload["met_by"] == "conference.planned"
            state = await conn.fetchval(
                "SELECT status FROM routing.statutory_clocks WHERE case_id = $1"
                " AND clock = 'conference_planning'",
                case_id,
            )
            assert state == "met"
        finally:
            await transaction.rollback()
