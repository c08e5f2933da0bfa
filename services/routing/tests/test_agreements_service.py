"""Written agreements on the real broker and database: intake's agreement facts in,
`agreement.in_force` out once both parties accepted the latest version, and the
obligations' reminders, overdue escalations and follow-up check-ins, each fired once
across two replicas (time moved by setting the timers' fire_at)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.routing.domain.policy import load_policy
from services.routing.tests.harness import (
    event,
    fast_policy,
    publish,
    purge_other_queues,
    submission,
    tapped,
)
from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    AgreementAccepted,
    AgreementDrafted,
    AgreementObligationMet,
    AgreementTerm,
    MediationParty,
)
from tests.support.bus import declare_topology
from tests.support.infra import ServiceProcess, free_port, service_env

LONDON = ZoneInfo("Europe/London")  # employee relations' calendar (round the clock here)
CASE_MANAGER = ("A-2002", "Lukas Meyer", "lukas.meyer@example.com")
EMPLOYEE = MediationParty(
    role="employee", employee_id="E-7001", name="Sam Rivera", email="sam.rivera@example.com"
)
EMPLOYER = MediationParty(
    role="employer_representative",
    employee_id="E-7300",
    name="Jo Carter",
    email="jo.carter@example.com",
)


@pytest.fixture(scope="module")
async def routing(database_url, rabbitmq_url, amqp, logs_dir, tmp_path_factory):
    await declare_topology(amqp)
    # Round-the-clock calendars: every day is a working day that closes at midnight.
    policy = fast_policy(tmp_path_factory.mktemp("policy") / "agreements.yaml")
    env = service_env(
        database_url,
        rabbitmq_url,
        ROUTING_POLICY_FILE=str(policy),
        ROUTING_TIMER_INTERVAL="0.2",
        ROUTING_HTTP_PORT=str(free_port()),
    )
    process = ServiceProcess(
        "routing", env, int(env["ROUTING_HTTP_PORT"]), logs_dir / "routing-agreements.log"
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
        await purge_other_queues(amqp)


@pytest.fixture
def second_routing(routing):
    """A second replica on the same queue and tables: agreement timers still fire once."""
    env = dict(routing.env)
    port = free_port()
    env.update(ROUTING_HTTP_PORT=str(port))
    replica = ServiceProcess("routing", env, port, routing.log_path.with_name("routing-agr-2.log"))
    replica.start()
    yield replica
    replica.stop()


def midnight_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), LONDON)


async def mediation_case(amqp, admin_pool, tap) -> tuple[uuid.UUID, str]:
    """A contract dispute routed to employee relations, with A-2002 as its case manager."""
    case_id, submitted = submission(
        "My contract hours were changed without notice", category="contract_dispute"
    )
    await publish(amqp, submitted)
    await tap.wait(lambda: tap.of(case_id, "case.assigned"), what="the case routed")
    await admin_pool.execute(
        "INSERT INTO routing.process_roles (case_id, role, staff_id, assigned_at)"
        " VALUES ($1, 'case_manager', $2, now())",
        case_id,
        CASE_MANAGER[0],
    )
    return case_id, submitted.payload["reference"]


def terms() -> list[AgreementTerm]:
    today = utcnow().astimezone(LONDON).date()
    return [
        AgreementTerm(
            term_id=uuid.uuid4(),
            text="Restore the contracted hours from next month",
            owner_role="employer_representative",
            due_on=today + timedelta(days=3),
        ),
        AgreementTerm(
            term_id=uuid.uuid4(),
            text="Send the timesheets for the last quarter",
            owner_role="employee",
            due_on=today + timedelta(days=2),
        ),
        AgreementTerm(term_id=uuid.uuid4(), text="Both keep the discussions confidential"),
    ]


def drafted(case_id, reference, agreement_id, version, agreed_terms) -> Envelope:
    return event(
        AgreementDrafted(
            reference=reference,
            agreement_id=agreement_id,
            version=version,
            terms=agreed_terms,
            parties=[EMPLOYEE, EMPLOYER],
        ),
        case_id,
    )


def accepted(case_id, reference, agreement_id, version, party: MediationParty) -> Envelope:
    return event(
        AgreementAccepted(
            reference=reference,
            agreement_id=agreement_id,
            version=version,
            party_role=party.role,
            employee_id=party.employee_id,
        ),
        case_id,
        Actor(type="employee", id=party.employee_id),
    )


def met(case_id, reference, agreement_id, term_id) -> Envelope:
    return event(
        AgreementObligationMet(
            reference=reference,
            agreement_id=agreement_id,
            term_id=term_id,
            met_on=utcnow().date(),
            note="timesheets received",
        ),
        case_id,
    )


async def consumed(admin_pool, *envelopes: Envelope) -> None:
    """Wait until routing has applied every one of `envelopes` (its inbox has them)."""
    ids = [e.event_id for e in envelopes]
    for _ in range(200):
        count = await admin_pool.fetchval(
            "SELECT count(*) FROM routing.inbox WHERE event_id = ANY($1::uuid[])", ids
        )
        if count == len(ids):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("routing did not consume the events")


async def in_force(amqp, admin_pool, tap, case_id, reference, agreed_terms) -> uuid.UUID:
    agreement_id = uuid.uuid4()
    await publish(
        amqp,
        drafted(case_id, reference, agreement_id, 1, agreed_terms),
        accepted(case_id, reference, agreement_id, 1, EMPLOYEE),
        accepted(case_id, reference, agreement_id, 1, EMPLOYER),
    )
    await tap.wait(lambda: tap.of(case_id, "agreement.in_force"), what="the agreement in force")
    return agreement_id


async def move_timers(admin_pool, agreement_id: uuid.UUID, **where: Any) -> int:
    """Time travel: the agreement's matching timers fall due now."""
    conditions = " AND ".join(f"{name} = ${i}" for i, name in enumerate(where, start=2))
    status = await admin_pool.execute(
        "UPDATE routing.agreement_timers SET fire_at = now() WHERE agreement_id = $1"
        + (f" AND {conditions}" if conditions else ""),
        agreement_id,
        *where.values(),
    )
    return int(status.split()[-1])


async def test_in_force_only_once_both_parties_accept_the_latest_version(routing, amqp, admin_pool):
    async with tapped(amqp) as tap:
        case_id, reference = await mediation_case(amqp, admin_pool, tap)
        agreed = terms()
        agreement_id = uuid.uuid4()
        first = drafted(case_id, reference, agreement_id, 1, agreed)
        employee_v1 = accepted(case_id, reference, agreement_id, 1, EMPLOYEE)
        second = drafted(case_id, reference, agreement_id, 2, agreed)
        employer_v1 = accepted(case_id, reference, agreement_id, 1, EMPLOYER)  # superseded
        employer_v2 = accepted(case_id, reference, agreement_id, 2, EMPLOYER)
        await publish(amqp, first, employee_v1, second, employer_v1, employer_v2)
        await consumed(admin_pool, first, employee_v1, second, employer_v1, employer_v2)
        # The employee accepted version 1 only: the re-draft started acceptances afresh.
        assert not tap.of(case_id, "agreement.in_force")
        stranger = event(
            AgreementAccepted(
                reference=reference,
                agreement_id=agreement_id,
                version=2,
                party_role="employee",
                employee_id="E-9999",
            ),
            case_id,
        )
        await publish(amqp, stranger)
        await consumed(admin_pool, stranger)
        assert not tap.of(case_id, "agreement.in_force")

        employee_v2 = accepted(case_id, reference, agreement_id, 2, EMPLOYEE)
        again = accepted(case_id, reference, agreement_id, 2, EMPLOYEE)
        await publish(amqp, employee_v2, again)
        await tap.wait(lambda: tap.of(case_id, "agreement.in_force"), what="in force")
        await consumed(admin_pool, again)
        await asyncio.sleep(0.5)
    (in_force_event,) = tap.of(case_id, "agreement.in_force")
    assert in_force_event.causation_id == employee_v2.event_id
    payload = in_force_event.payload
    assert (payload["agreement_id"], payload["version"]) == (str(agreement_id), 2)
    restore, timesheets, _ = agreed
    obligations = {o["term_id"]: o for o in payload["obligations"]}
    assert set(obligations) == {str(restore.term_id), str(timesheets.term_id)}
    # Every day is a working day, but for the office's holidays (the policy's).
    holidays = set(load_policy(routing.env["ROUTING_POLICY_FILE"]).calendars["uk_office"].holidays)
    due_day = restore.due_on
    assert due_day is not None
    while due_day in holidays:  # a holiday: the close of the working day before
        due_day -= timedelta(days=1)
    due = datetime.fromisoformat(obligations[str(restore.term_id)]["due_at"])
    assert due == midnight_after(due_day)  # the close of due_on's (all-day) work
    assert obligations[str(restore.term_id)]["owner_role"] == "employer_representative"
    reminder = datetime.fromisoformat(obligations[str(restore.term_id)]["due_soon_at"])
    accepted_at = employee_v2.occurred_at
    assert abs((reminder - accepted_at) - 0.75 * (due - accepted_at)) < timedelta(seconds=1)
    in_force_day = accepted_at.astimezone(LONDON).date()
    working_days = [
        day
        for day in (in_force_day + timedelta(days=n) for n in range(1, 60))
        if day not in holidays
    ]
    assert [datetime.fromisoformat(f) for f in payload["follow_ups_at"]] == [
        midnight_after(working_days[9]),
        midnight_after(working_days[29]),
    ]
    rows = await admin_pool.fetch(
        "SELECT version, party_role FROM routing.agreement_acceptances WHERE agreement_id = $1"
        " ORDER BY version, party_role",
        agreement_id,
    )
    assert [(r["version"], r["party_role"]) for r in rows] == [
        (1, "employee"),
        (2, "employee"),
        (2, "employer_representative"),
    ]


async def test_obligation_timers_fire_once_and_a_met_obligation_never(
    routing, second_routing, amqp, admin_pool
):
    async with tapped(amqp) as tap:
        case_id, reference = await mediation_case(amqp, admin_pool, tap)
        restore, timesheets, untracked = terms()
        agreement_id = await in_force(
            amqp, admin_pool, tap, case_id, reference, [restore, timesheets, untracked]
        )
        done = met(case_id, reference, agreement_id, timesheets.term_id)
        twice = met(case_id, reference, agreement_id, timesheets.term_id)
        unknown = met(case_id, reference, agreement_id, uuid.uuid4())
        not_an_obligation = met(case_id, reference, agreement_id, untracked.term_id)
        await publish(amqp, done, twice, unknown, not_an_obligation)
        await consumed(admin_pool, done, twice, unknown, not_an_obligation)
        # The met obligation's timers are gone: moving every timer fires only the others.
        assert await move_timers(admin_pool, agreement_id, term_id=timesheets.term_id) == 0

        assert await move_timers(admin_pool, agreement_id, kind="due_soon") == 1
        await tap.wait(lambda: tap.of(case_id, "agreement.obligation_due_soon"), what="reminder")
        assert await move_timers(admin_pool, agreement_id, kind="overdue") == 1
        await tap.wait(lambda: tap.of(case_id, "agreement.obligation_overdue"), what="overdue")
        assert await move_timers(admin_pool, agreement_id, kind="follow_up") == 2
        await tap.wait(
            lambda: len(tap.of(case_id, "case.follow_up_due")) == 2, what="both check-ins"
        )
        await asyncio.sleep(1.5)  # the other replica's ticks would have fired a duplicate
    counts = tap.distinct(case_id)
    assert counts["agreement.obligation_due_soon"] == 1
    assert counts["agreement.obligation_overdue"] == 1
    assert counts["case.follow_up_due"] == 2
    manager = {"id": CASE_MANAGER[0], "name": CASE_MANAGER[1], "email": CASE_MANAGER[2]}
    owner = {"id": EMPLOYER.employee_id, "name": EMPLOYER.name, "email": str(EMPLOYER.email)}
    (reminder,) = tap.of(case_id, "agreement.obligation_due_soon")
    assert reminder.payload["term_id"] == str(restore.term_id)
    assert reminder.payload["owner"] == owner and reminder.payload["case_manager"] == manager
    assert reminder.payload["owner_role"] == "employer_representative"
    (overdue,) = tap.of(case_id, "agreement.obligation_overdue")
    assert overdue.payload["term_id"] == str(restore.term_id)
    assert overdue.payload["owner"] == owner and overdue.payload["case_manager"] == manager
    # Level 1 of employee relations' ladder: its lead, Victor Almeida.
    assert overdue.payload["escalated_to"]["id"] == "M-9002"
    # The overdue event names the escalation (as a task's does): no second announcement.
    assert not [e for e in tap.of(case_id, "case.escalated") if e.causation_id == overdue.event_id]
    check_ins = sorted(tap.of(case_id, "case.follow_up_due"), key=lambda e: e.payload["check_in"])
    assert [c.payload["check_in"] for c in check_ins] == [1, 2]
    assert all(c.payload["case_manager"] == manager for c in check_ins)
    assert not [
        e
        for e in tap.of(case_id)
        if e.event_type in ("agreement.obligation_due_soon", "agreement.obligation_overdue")
        and e.payload.get("term_id") == str(timesheets.term_id)
    ]
    fired = await admin_pool.fetch(
        "SELECT kind, fired_event_id FROM routing.agreement_timers WHERE agreement_id = $1"
        " ORDER BY id",
        agreement_id,
    )
    assert {r["fired_event_id"] for r in fired} == {
        reminder.event_id,
        overdue.event_id,
        *(c.event_id for c in check_ins),
    }
    met_on = await admin_pool.fetchval(
        "SELECT met_on FROM routing.agreement_obligations WHERE term_id = $1",
        timesheets.term_id,
    )
    assert met_on == done.payload["met_on"] or str(met_on) == done.payload["met_on"]


async def test_an_overdue_obligation_escalates_past_a_declared_conflict(routing, amqp, admin_pool):
    async with tapped(amqp) as tap:
        case_id, reference = await mediation_case(amqp, admin_pool, tap)
        # The ladder's first two levels are Victor Almeida, who declared a conflict.
        await admin_pool.execute(
            "INSERT INTO routing.process_conflicts (case_id, staff_id, reason, declared_at)"
            " VALUES ($1, 'M-9002', 'knows the employee privately', now())",
            case_id,
        )
        agreement_id = await in_force(amqp, admin_pool, tap, case_id, reference, terms())
        assert await move_timers(admin_pool, agreement_id, kind="overdue") == 2
        await tap.wait(
            lambda: len(tap.of(case_id, "agreement.obligation_overdue")) == 2, what="overdue"
        )
        overdue = tap.of(case_id, "agreement.obligation_overdue")
    # Level 1 (Victor, the team lead) declared a conflict, level 2 is Victor too: level 3.
    assert {o.payload["escalated_to"]["id"] for o in overdue} == {"M-9003"}


async def test_a_new_version_in_force_replaces_the_old_ones_timers(routing, amqp, admin_pool):
    async with tapped(amqp) as tap:
        case_id, reference = await mediation_case(amqp, admin_pool, tap)
        restore, timesheets, untracked = terms()
        agreement_id = await in_force(
            amqp, admin_pool, tap, case_id, reference, [restore, timesheets, untracked]
        )
        redraft = drafted(case_id, reference, agreement_id, 2, [restore, untracked])
        both = [
            accepted(case_id, reference, agreement_id, 2, EMPLOYEE),
            accepted(case_id, reference, agreement_id, 2, EMPLOYER),
        ]
        await publish(amqp, redraft, *both)
        await tap.wait(lambda: len(tap.of(case_id, "agreement.in_force")) == 2, what="v2 in force")
    pending = await admin_pool.fetch(
        "SELECT version, kind, term_id FROM routing.agreement_timers"
        " WHERE agreement_id = $1 AND fired_at IS NULL",
        agreement_id,
    )
    assert {r["version"] for r in pending} == {2}
    assert {r["term_id"] for r in pending if r["term_id"]} == {restore.term_id}
    assert sorted(r["kind"] for r in pending) == ["due_soon", "follow_up", "follow_up", "overdue"]
