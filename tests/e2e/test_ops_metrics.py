"""Operations metrics, scraped over HTTP from the running services' metrics ports while
real events flow: queue and dead-letter depth, dead-lettered events, handler latency,
outbox depth and age, SLA timers due and fired, notifications sent, audit chain head and
checkpoint age (README "Operations: metrics, dashboards and alerts")."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hrcase.services import QUEUES
from shared.envelope import Actor, utcnow
from shared.events import CaseSubmitted, Reporter, make_event
from tests.support.auth import auth_headers
from tests.support.bus import find_dead_letter, publish_raw
from tests.support.system import RunningSystem, running_system

AS_AGENT = auth_headers("A-1001", "hr_agent")
# Short enough that a test sees a gauge move within a second or two.
REFRESH = "0.3"


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(
        database_url,
        rabbitmq_url,
        logs_dir / "ops-metrics",
        METRICS_REFRESH_INTERVAL=REFRESH,
        AUDIT_CHECKPOINT_INTERVAL="0.5",
        ROUTING_TIMER_INTERVAL="0.2",
    ) as running:
        yield running


def scrape(system: RunningSystem, of: str) -> list[Any]:
    response = httpx.get(system.metrics_url(of), timeout=10)
    response.raise_for_status()
    return [s for family in text_string_to_metric_families(response.text) for s in family.samples]


def value(system: RunningSystem, of: str, name: str, **labels: str) -> float:
    """Sum of the samples named `name` on service `of`'s metrics port whose labels include
    `labels` (0 when none)."""
    return sum(
        s.value
        for s in scrape(system, of)
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def eventually(
    check: Callable[[], Awaitable[Any] | Any], what: str, timeout: float = 30.0
) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def submit_case(system: RunningSystem, subject: str) -> uuid.UUID:
    body = {
        "subject": subject,
        "description": "Overtime from October is not on my payslip.",
        "reporter": {"employee_id": "E-9", "name": "Kim", "email": "kim@example.com"},
        "category": "payroll_query",
    }
    response = httpx.post(
        f"{system.url('intake')}/api/v1/cases", json=body, headers=AS_AGENT, timeout=10
    )
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["case_id"])


async def test_every_service_reports_its_queue_and_consumers(system):
    for service in ("intake", "routing", "notifications", "audit"):
        # A partitioned service reports each partition; partition 0 stands for them here.
        queue = QUEUES[service].queue_names[0]

        def consuming(service: str = service, queue: str = queue) -> bool:
            return value(system, service, "hrcase_queue_consumers", queue=queue, kind="events") >= 1

        await eventually(consuming, f"{service}'s consumer counted on {queue}")
        samples = scrape(system, service)
        kinds = {
            (s.labels["queue"], s.labels["kind"])
            for s in samples
            if s.name == "hrcase_queue_messages" and s.labels["service"] == service
        }
        assert kinds == {
            *((name, "events") for name in QUEUES[service].queue_names),
            (QUEUES[service].dead_letter_queue, "dead_letter"),
        }
        refreshed = [s for s in samples if s.name == "hrcase_metrics_refreshed_timestamp_seconds"]
        assert refreshed and refreshed[0].value > 0


async def test_every_service_froze_its_start_up_objects_and_times_its_collections(system):
    """GC_FREEZE_AT_START (default on): a started service has frozen its start-up objects
    out of garbage collection, and each collection's pause is on its metrics port."""
    submit_case(system, "Payslip missing overtime (collections)")
    for service in ("intake", "routing", "notifications", "audit"):
        # Modules, models, routes and pools: well over 100,000 objects in each service.
        assert value(system, service, "hrcase_gc_frozen_objects", service=service) > 100_000
        # The collection before the freeze is a full one, and young collections follow.
        assert value(system, service, "hrcase_gc_pause_seconds_count", generation="2") >= 1

        def young(service: str = service) -> bool:
            return value(system, service, "hrcase_gc_pause_seconds_count", generation="0") > 0

        await eventually(young, f"{service}'s young collections timed")


async def test_a_poison_message_shows_in_dead_letter_depth_and_total(system, amqp):
    dlq = "routing.events.dlq"
    await eventually(
        lambda: scrape(system, "routing") and True, "routing metrics served", timeout=10
    )
    # The series the poison message counts in (an unreadable envelope has no event type:
    # "?"): other dead letters (e.g. leftovers of an earlier module's run) must not move it.
    before_total = value(
        system,
        "routing",
        "hrcase_events_dead_lettered_total",
        service="routing",
        event_type="?",
        error_type="ValidationError",
    )
    before_depth = value(system, "routing", "hrcase_queue_messages", queue=dlq)
    message_id = str(uuid.uuid4())
    # Not an envelope at all: every consumer bound to case.submitted dead-letters it.
    await publish_raw(amqp, b"{not json", routing_key="case.submitted", message_id=message_id)
    try:
        await eventually(
            lambda: (
                value(
                    system,
                    "routing",
                    "hrcase_events_dead_lettered_total",
                    service="routing",
                    event_type="?",
                    error_type="ValidationError",
                )
                >= before_total + 1
            ),
            "routing's dead-lettered total to rise",
        )
        await eventually(
            lambda: (
                value(system, "routing", "hrcase_queue_messages", queue=dlq, kind="dead_letter")
                >= before_depth + 1
            ),
            "routing's dead-letter queue depth to rise",
        )
        consumed = value(system, "routing", "hrcase_events_consumed_total", outcome="dead_lettered")
        assert consumed >= 1
    finally:
        for queue in (dlq, "notifications.events.dlq", "audit.events.dlq"):
            await find_dead_letter(amqp, queue, message_id, timeout=10)
    # Taken out again: the gauge follows the broker down as well as up.
    await eventually(
        lambda: value(system, "routing", "hrcase_queue_messages", queue=dlq) <= before_depth,
        "routing's dead-letter queue depth to fall back",
    )


async def test_a_case_moves_handler_latency_notifications_and_the_audit_chain(system, admin_pool):
    await eventually(
        lambda: value(system, "audit", "hrcase_metrics_refreshed_timestamp_seconds") > 0,
        "audit's first metrics round",
    )
    head_before = value(system, "audit", "hrcase_audit_chain_head_seq")
    sent_before = value(system, "notifications", "hrcase_notifications_total", outcome="sent")
    handled_before = value(
        system,
        "routing",
        "hrcase_event_handle_seconds_count",
        event_type="case.submitted",
        outcome="processed",
    )
    published_before = value(system, "intake", "hrcase_events_published_total")

    case_id = submit_case(system, "Metrics: payslip overtime missing")

    await eventually(
        lambda: (
            value(system, "notifications", "hrcase_notifications_total", outcome="sent")
            >= sent_before + 1
        ),
        "a notification counted as sent",
    )
    await eventually(
        lambda: (
            value(
                system,
                "routing",
                "hrcase_event_handle_seconds_count",
                event_type="case.submitted",
                outcome="processed",
            )
            == handled_before + 1
        ),
        "routing's handler latency observed once for the case",
    )
    assert value(system, "intake", "hrcase_events_published_total") > published_before
    entries = await admin_pool.fetchval(
        "SELECT count(*) FROM audit.log WHERE case_id = $1", case_id
    )
    assert entries >= 1
    # The chain head gauge is read from the database: it moves with the case's entries.
    await eventually(
        lambda: value(system, "audit", "hrcase_audit_chain_head_seq") >= head_before + entries,
        "the audit chain head gauge to move",
    )
    # The checkpoint writer signs the new head (every 0.5 s here): a signature comes to
    # cover the case's last entry, and the checkpoint gauges follow it. Not "nothing
    # unsigned": other cases' entries (timers firing, earlier modules) may keep arriving,
    # and the gauge is 0 only in a quiet moment.
    case_last_seq = await admin_pool.fetchval(
        "SELECT max(seq) FROM audit.log WHERE case_id = $1", case_id
    )
    await eventually(
        lambda: value(system, "audit", "hrcase_audit_checkpoint_seq") >= case_last_seq,
        "a checkpoint signed over the case's last entry",
    )
    assert 0 <= value(system, "audit", "hrcase_audit_checkpoint_age_seconds") < 30

    def unsigned_past_the_case() -> bool:
        # One scrape, so head and unsigned come from the same refresh round.
        samples = {s.name: s.value for s in scrape(system, "audit")}
        head = samples["hrcase_audit_chain_head_seq"]
        return 0 <= samples["hrcase_audit_unsigned_entries"] <= head - case_last_seq

    await eventually(unsigned_past_the_case, "unsigned entries to leave out the case's")


async def test_sla_timers_due_and_fired(system, admin_pool):
    case_id = submit_case(system, "Metrics: SLA timer due")

    async def planned() -> Any:
        return await admin_pool.fetchrow(
            "SELECT id, kind, clock FROM routing.timers WHERE case_id = $1"
            " AND fired_at IS NULL AND kind = 'warning' ORDER BY fire_at LIMIT 1",
            case_id,
        )

    timer = await eventually(planned, "the case's SLA warning timer planned")
    fired_before = value(system, "routing", "hrcase_routing_sla_timers_fired_total", kind="warning")
    async with admin_pool.acquire() as lock:
        # Holding the case's row makes the timer loop skip it (SKIP LOCKED): due, unfired.
        transaction = lock.transaction()
        await transaction.start()
        try:
            await lock.execute("SELECT 1 FROM routing.cases WHERE case_id = $1 FOR UPDATE", case_id)
            await admin_pool.execute(
                "UPDATE routing.timers SET fire_at = now() - interval '1 second' WHERE id = $1",
                timer["id"],
            )
            await eventually(
                lambda: (
                    value(system, "routing", "hrcase_routing_sla_timers_due", kind="warning") >= 1
                ),
                "the due timer counted",
            )
        finally:
            await transaction.rollback()
    await eventually(
        lambda: (
            value(system, "routing", "hrcase_routing_sla_timers_fired_total", kind="warning")
            >= fired_before + 1
        ),
        "the timer counted as fired once the case is free",
    )
    fired_at = await admin_pool.fetchval(
        "SELECT fired_at FROM routing.timers WHERE id = $1", timer["id"]
    )
    assert fired_at is not None
    await eventually(
        lambda: value(system, "routing", "hrcase_routing_sla_timers_due", kind="warning") == 0,
        "the due gauge back to 0",
    )


async def test_an_outbox_that_does_not_drain_shows_its_depth_and_age(system, admin_pool):
    # An event type intake may not publish: the relay cannot send it, the row stays and
    # holds the outbox up (what "outbox not draining" looks like to operations).
    event_id = uuid.uuid4()
    await admin_pool.execute(
        "INSERT INTO intake.outbox (event_id, event_type, correlation_id, body)"
        " VALUES ($1, 'ops.undeliverable', $2, '{}')",
        event_id,
        uuid.uuid4(),
    )
    try:
        await eventually(
            lambda: (
                value(system, "intake", "hrcase_outbox_depth", service="intake") >= 1
                and value(system, "intake", "hrcase_outbox_oldest_age_seconds", service="intake")
                >= 1.0
            ),
            "the stuck row counted with its age",
        )
        assert value(system, "intake", "hrcase_outbox_publish_failures_total") >= 1
        first_age = value(system, "intake", "hrcase_outbox_oldest_age_seconds")
        await eventually(
            lambda: value(system, "intake", "hrcase_outbox_oldest_age_seconds") > first_age + 0.5,
            "the age to keep growing while the row stays",
        )
    finally:
        await admin_pool.execute("DELETE FROM intake.outbox WHERE event_id = $1", event_id)
    await eventually(
        lambda: (
            value(system, "intake", "hrcase_outbox_depth") == 0
            and value(system, "intake", "hrcase_outbox_oldest_age_seconds") == 0
        ),
        "the outbox drained",
    )


async def test_a_case_held_behind_a_dead_letter_shows_until_released(system, amqp):
    """An authenticated event routing cannot apply (its payload lacks a field) holds its
    case: hrcase_cases_held counts it until the operator releases it (`hrcase holds`)."""
    await eventually(
        lambda: value(system, "routing", "hrcase_metrics_refreshed_timestamp_seconds") > 0,
        "routing's first metrics round",
    )
    before = value(system, "routing", "hrcase_cases_held", service="routing")
    case_id = uuid.uuid4()
    event = make_event(
        CaseSubmitted(
            reference="HR-2026-999998",
            channel="api",
            subject="Overtime missing",
            description="My overtime is missing from the payslip.",
            reporter=Reporter(employee_id="E-78", name="Kim", email="kim@example.com"),
            submitted_at=utcnow(),
        ),
        producer="intake",
        actor=Actor(type="employee", id="E-78"),
        case_id=case_id,
    )
    body = json.loads(event.to_json_bytes())
    del body["payload"]["subject"]
    await publish_raw(
        amqp,
        json.dumps(body).encode(),
        routing_key="case.submitted",
        message_id=str(event.event_id),
        as_publisher="intake",
    )
    await eventually(
        lambda: value(system, "routing", "hrcase_cases_held", service="routing") >= before + 1,
        "routing's held cases to rise",
    )
    assert value(system, "routing", "hrcase_events_held", service="routing") >= 1
    env = system.services["routing"].env
    for service in ("routing", "notifications"):  # both consume case.submitted
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "hrcase.cli", "holds", "release", service, str(case_id)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    assert "1 held event(s)" in done.stdout
    await eventually(
        lambda: value(system, "routing", "hrcase_cases_held", service="routing") <= before,
        "routing's held cases to fall back",
    )
    for queue in ("routing.events.dlq", "notifications.events.dlq"):
        dead = await find_dead_letter(amqp, queue, str(event.event_id), timeout=10)
        assert dead is not None and "subject" in str(dead.headers["x-error"])
