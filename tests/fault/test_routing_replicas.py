"""Two routing replicas on one queue: no double assignment, one status chain per case,
and deadline timers that fire exactly once after both replicas were killed with -9."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import contextmanager

import pytest

from services.routing.tests.harness import (
    event,
    fast_policy,
    publish,
    purge_other_queues,
    submission,
    tapped,
)
from shared.envelope import Actor, utcnow
from shared.events import CaseMessageReceived, CaseStatusChangeRequested
from tests.support.bus import declare_topology
from tests.support.infra import ServiceProcess, free_port, service_env


@contextmanager
def replicas(database_url, rabbitmq_url, logs_dir, policy, count=2):
    logs_dir.mkdir(parents=True, exist_ok=True)
    processes = []
    for index in range(count):
        port = free_port()
        env = service_env(
            database_url,
            rabbitmq_url,
            ROUTING_POLICY_FILE=str(policy),
            ROUTING_TIMER_INTERVAL="0.2",
            ROUTING_HTTP_PORT=str(port),
            CONSUMER_PREFETCH="16",
        )
        processes.append(
            ServiceProcess("routing", env, port, logs_dir / f"routing-replica-{index}.log")
        )
    try:
        for process in processes:
            process.start(wait=False)
        for process in processes:
            process.wait_ready()
        yield processes
    finally:
        for process in processes:
            process.stop()


def status_chain_is_one_path(moves: list[tuple[str, str]]) -> bool:
    """The status_changed events of a case chain from 'new' with no fork or gap."""
    remaining = Counter(moves)
    current = "new"
    while remaining:
        step = next((m for m in remaining if m[0] == current), None)
        if step is None:
            return False
        remaining[step] -= 1
        if not remaining[step]:
            del remaining[step]
        current = step[1]
    return True


@pytest.fixture
async def fast_policy_file(amqp, tmp_path):
    await declare_topology(amqp)
    yield fast_policy(tmp_path / "fast.yaml")
    await purge_other_queues(amqp)


async def test_two_replicas_compete_without_double_assignment_or_forked_status(
    database_url, rabbitmq_url, logs_dir, amqp, admin_pool, tmp_path
):
    await declare_topology(amqp)
    # Slow clocks here: this test is about consumption, not timers.
    policy = fast_policy(tmp_path / "calm.yaml", first_response_hours=2)
    total = 60
    with replicas(database_url, rabbitmq_url, logs_dir / "replicas", policy):
        async with tapped(amqp) as tap:
            flows = []
            for i in range(total):
                case_id, submitted = submission(f"Replica stream {i}: payslip overtime")
                reference = submitted.payload["reference"]
                reply = CaseMessageReceived(
                    reference=reference,
                    channel="portal",
                    sender_role="reporter",
                    body="here you go",
                    received_at=utcnow(),
                )
                flows.append(
                    (
                        case_id,
                        [
                            submitted,
                            event(
                                CaseStatusChangeRequested(to_status="waiting_on_employee"), case_id
                            ),
                            event(reply, case_id, Actor(type="employee", id="E-500")),
                            event(CaseStatusChangeRequested(to_status="resolved"), case_id),
                        ],
                    )
                )
            # Each case's events in order, cases interleaved, all at once.
            await publish(
                amqp, *(e for step in range(4) for _, events in flows for e in [events[step]])
            )
            ids = [case_id for case_id, _ in flows]

            async def all_resolved():
                n = await admin_pool.fetchval(
                    "SELECT count(*) FROM routing.cases WHERE case_id = ANY($1::uuid[])"
                    " AND status = 'resolved'",
                    ids,
                )
                return n == total

            for _ in range(300):
                if await all_resolved():
                    break
                await asyncio.sleep(0.1)
            assert await all_resolved(), "every case ends resolved (the latest request)"
            await asyncio.sleep(1.0)  # let a (wrong) late duplicate show up
        consumed = await admin_pool.fetchval("SELECT count(*) FROM routing.inbox")
        assert consumed >= 4 * total
    for case_id in ids:
        kinds = tap.distinct(case_id)
        assert kinds["case.assigned"] == 1, f"{case_id} assigned {kinds['case.assigned']} times"
        assert kinds["case.routed"] == 1
        moves = [
            (e.payload["from_status"], e.payload["to_status"])
            for e in {e.event_id: e for e in tap.of(case_id, "case.status_changed")}.values()
        ]
        assert status_chain_is_one_path(moves), moves
    stopped = await admin_pool.fetchval(
        "SELECT count(*) FROM routing.sla_clocks WHERE case_id = ANY($1::uuid[])"
        " AND stopped_at IS NOT NULL",
        ids,
    )
    assert stopped == 2 * total
    pending = await admin_pool.fetchval(
        "SELECT count(*) FROM routing.timers WHERE case_id = ANY($1::uuid[]) AND fired_at IS NULL",
        ids,
    )
    assert pending == 0
    await purge_other_queues(amqp)


async def test_timers_due_while_every_replica_was_dead_fire_once_after_restart(
    database_url, rabbitmq_url, logs_dir, amqp, admin_pool, fast_policy_file
):
    cases = [submission(f"Timer restart {i}: payslip") for i in range(5)]
    ids = [case_id for case_id, _ in cases]
    async with tapped(amqp) as tap:
        with replicas(database_url, rabbitmq_url, logs_dir / "timers", fast_policy_file) as running:
            await publish(amqp, *(e for _, e in cases))
            await tap.wait(
                lambda: all(tap.of(c, "case.assigned") for c in ids), what="cases routed"
            )
            for process in running:
                process.kill9()
            killed_at = utcnow()
            pending = await admin_pool.fetchval(
                "SELECT count(*) FROM routing.timers WHERE case_id = ANY($1::uuid[])"
                " AND fired_at IS NULL",
                ids,
            )
            assert pending > 0, "the kill must land before the timers fire"
            # On a loaded machine a warning may already have fired, before its deadline,
            # while the replicas were alive: that one was a true "due soon".
            warned_in_time = {
                r["case_id"]
                for r in await admin_pool.fetch(
                    "SELECT case_id FROM routing.timers WHERE case_id = ANY($1::uuid[])"
                    " AND clock = 'first_response' AND kind = 'warning'"
                    " AND fired_at IS NOT NULL AND fired_event_id IS NOT NULL",
                    ids,
                )
            }
            # Every first-response timer (warning 1.8 s ... level 3 at 7.2 s) falls due.
            last_due = await admin_pool.fetchval(
                "SELECT max(fire_at) FROM routing.timers WHERE case_id = ANY($1::uuid[])"
                " AND clock = 'first_response'",
                ids,
            )
            await asyncio.sleep(max((last_due - utcnow()).total_seconds(), 0) + 0.5)
            assert utcnow() > killed_at
            for process in running:
                process.start(wait=False)
            for process in running:
                process.wait_ready()

            async def fired_timers():
                return await admin_pool.fetch(
                    "SELECT case_id, kind, level, fired_event_id FROM routing.timers"
                    " WHERE case_id = ANY($1::uuid[]) AND clock = 'first_response'"
                    " AND fired_at IS NOT NULL",
                    ids,
                )

            for _ in range(100):
                if len(await fired_timers()) == 5 * len(ids):
                    break
                await asyncio.sleep(0.1)
            fired = await fired_timers()
            assert len(fired) == 5 * len(ids), "warning, breach and 3 levels for every case"
            emitted = {r["fired_event_id"] for r in fired if r["fired_event_id"]}
            await tap.wait(
                lambda: emitted <= {e.event_id for e in tap.events}, what="timer events published"
            )
            await asyncio.sleep(1.5)  # two replicas' loops had time to fire twice
    for case_id in ids:
        kinds = tap.distinct(case_id)
        # A warning timer that fired after its deadline had passed (every replica was dead)
        # says nothing: no "due soon" for a deadline already missed (issue 8, item 9); the
        # breach speaks. One that fired in time before the kill was sent, once.
        assert kinds["case.sla_warning"] == (1 if case_id in warned_in_time else 0)
        assert kinds["case.sla_breached"] == 1
        # Per distinct event: a relay killed between publishing and deleting its outbox
        # rows publishes them again after the restart, with the same event ids (at least
        # once on the bus; consumers' inboxes drop the copy); the set check below still
        # refuses any event beyond one per fired timer.
        escalations = {e.event_id: e.payload["level"] for e in tap.of(case_id, "case.escalated")}
        levels = sorted(escalations.values())
        # One event per level; a level whose target is the owner passes to the next one.
        assert levels in ([1, 2, 3], [2, 3]), levels
        timer_events = {r["fired_event_id"] for r in fired if r["case_id"] == case_id} - {None}
        timer_types = ("case.sla_warning", "case.sla_breached", "case.escalated")
        published = {e.event_id for e in tap.of(case_id) if e.event_type in timer_types}
        assert published == timer_events  # one event per fired timer, nothing else
    emitted_ids = [r["fired_event_id"] for r in fired if r["fired_event_id"]]
    assert len(set(emitted_ids)) == len(emitted_ids)
