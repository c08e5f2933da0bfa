"""Delivery guarantees on the real broker: no loss, no double effect, poison isolated."""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.envelope import Actor, Envelope, utcnow
from shared.events import CaseRouted, make_event
from tests.support.auth import auth_headers
from tests.support.bus import find_dead_letter, publish_envelope, publish_raw
from tests.support.system import running_system

EXPECTED_EVENTS_PER_CASE = {
    "case.submitted": 1,
    "case.routed": 1,
    "case.assigned": 1,
    "case.status_changed": 1,
    "notification.sent": 2,
    # The case's process (its category's default) and its first stage.
    "case.process_assigned": 1,
    "case.stage_entered": 1,
}
# Cases for many employees: an HR agent submits on their behalf.
AS_AGENT = auth_headers("A-1001", "hr_agent")


def submit_case(system, subject: str) -> uuid.UUID:
    body = {
        "subject": subject,
        "description": "Overtime from October is not on my payslip.",
        "reporter": {"employee_id": "E-9", "name": "Kim", "email": "kim@example.com"},
    }
    response = httpx.post(
        f"{system.url('intake')}/api/v1/cases", json=body, headers=AS_AGENT, timeout=10
    )
    response.raise_for_status()
    return uuid.UUID(response.json()["case_id"])


def envelope_from_audit(entry: dict) -> Envelope:
    """Rebuild the exact envelope the audit log recorded (same event_id: a true duplicate)."""
    fields = {k: entry[k] for k in Envelope.model_fields if k in entry}
    return Envelope.model_validate(fields)


async def audit_counts(admin_pool, case_ids) -> dict[uuid.UUID, dict[str, int]]:
    rows = await admin_pool.fetch(
        "SELECT case_id, event_type, count(*) AS n FROM audit.log"
        # audit.* entries record reads of the case (e.g. by this test), not its events.
        " WHERE case_id = ANY($1::uuid[]) AND event_type NOT LIKE 'audit.%' GROUP BY 1, 2",
        list(case_ids),
    )
    counts: dict[uuid.UUID, dict[str, int]] = {cid: {} for cid in case_ids}
    for row in rows:
        counts[row["case_id"]][row["event_type"]] = row["n"]
    return counts


def duplicates_counted(system, service: str, event_type: str) -> float:
    """`hrcase_events_consumed_total{outcome="duplicate"}` on the service's metrics port."""
    text = httpx.get(system.metrics_url(service), timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "hrcase_events_consumed_total"
                and sample.labels.get("event_type") == event_type
                and sample.labels.get("outcome") == "duplicate"
            ):
                return sample.value
    return 0.0


async def wait_async(predicate, timeout=30.0, what="condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    # Few attempts so the retry-then-dead-letter path is quick to observe.
    with running_system(
        database_url, rabbitmq_url, logs_dir / "fault", CONSUMER_MAX_ATTEMPTS="3"
    ) as running:
        yield running


async def test_duplicate_delivery_has_no_second_effect(system, amqp, admin_pool):
    case_id = submit_case(system, "Duplicate delivery: payslip overtime missing")

    async def settled():
        counts = (await audit_counts(admin_pool, [case_id]))[case_id]
        return counts if counts == EXPECTED_EVENTS_PER_CASE else None

    await wait_async(settled, what="case fully handled once")
    with system.client("audit", headers=auth_headers("auditor-1", "auditor")) as client:
        entries = client.get(f"/api/v1/audit/cases/{case_id}").json()["entries"]
    submitted = envelope_from_audit(
        {**next(e for e in entries if e["event_type"] == "case.submitted"), "case_id": case_id}
    )
    # Evidence of the duplicates' handling, not of the original's: each consumer counts a
    # redelivered event_id as outcome="duplicate" only after its inbox turned it away.
    consumers = ("routing", "notifications", "audit")
    before = {name: duplicates_counted(system, name, "case.submitted") for name in consumers}
    # The broker redelivering, or a publisher retrying after a lost confirm: same event_id.
    await publish_envelope(amqp, submitted)
    await publish_envelope(amqp, submitted)

    async def duplicates_handled():
        now = {name: duplicates_counted(system, name, "case.submitted") for name in consumers}
        return now if all(now[name] - before[name] >= 2 for name in consumers) else None

    await wait_async(
        duplicates_handled, timeout=60, what="both duplicates handled by each consumer"
    )
    counts = (await audit_counts(admin_pool, [case_id]))[case_id]
    assert counts == EXPECTED_EVENTS_PER_CASE
    assert (
        await admin_pool.fetchval("SELECT count(*) FROM routing.cases WHERE case_id = $1", case_id)
        == 1
    )
    mails = [m for m in system.mail.received() if "kim@example.com" in str(m["To"])]
    references = [str(m["Subject"]) for m in mails]
    reference = submitted.payload["reference"]
    assert sum(reference in subject for subject in references) == 1


async def test_poison_message_is_dead_lettered_with_reason_and_later_messages_flow(
    system, amqp, admin_pool
):
    poison_id = str(uuid.uuid4())
    await publish_raw(
        amqp, b'{"not": "an envelope"', routing_key="case.submitted", message_id=poison_id
    )
    later = submit_case(system, "After the poison: payslip overtime missing")

    async def later_routed():
        return (
            await admin_pool.fetchval("SELECT status FROM intake.cases WHERE case_id = $1", later)
            == "assigned"
        )

    await wait_async(later_routed, what="a later case routed past the poison message")
    dead = await find_dead_letter(amqp, "routing.events.dlq", poison_id)
    assert dead is not None, "poison message must be in routing's DLQ"
    headers = dead.headers
    assert "invalid envelope" in headers["x-error"]
    assert headers["x-failed-service"] == "routing"
    assert headers["x-original-routing-key"] == "case.submitted"
    assert dead.body == b'{"not": "an envelope"'
    # notifications consumes case.submitted too: it refuses the same message on its own
    assert await find_dead_letter(amqp, "notifications.events.dlq", poison_id) is not None


async def test_failing_handler_is_retried_then_dead_lettered(system, amqp):
    # A routing event for a case intake never saw: intake's projection fails every time.
    ghost = make_event(
        CaseRouted(
            reference="HR-GHOST",
            category="grievance",
            category_source="rules",
            matched_terms=["unfair"],
            sensitivity="confidential",
            priority="P3",
            priority_reasons=[],
            first_response_due=utcnow(),
            resolution_due=utcnow(),
            policy_hash="0" * 64,
        ),
        producer="routing",
        actor=Actor(type="service", id="routing"),
        case_id=uuid.uuid4(),
    )
    await publish_envelope(amqp, ghost)
    dead = await find_dead_letter(amqp, "intake.events.dlq", str(ghost.event_id), timeout=30)
    assert dead is not None, "the failing event must end in intake's DLQ"
    assert "not known to intake" in dead.headers["x-error"]
    assert dead.headers["x-attempts"] == 3
    assert json.loads(dead.body)["event_id"] == str(ghost.event_id)


@pytest.mark.slow
async def test_kill_9_of_routing_mid_stream_loses_nothing_and_doubles_nothing(
    database_url, rabbitmq_url, logs_dir, admin_pool
):
    total = 150
    with running_system(database_url, rabbitmq_url, logs_dir / "kill9") as system:
        routing = system.services["routing"]
        intake_url = system.url("intake")

        def submit(i: int) -> str:
            body = {
                "subject": f"Stream case {i}: payslip overtime missing",
                "description": "Overtime from last month is missing from my payslip.",
                "reporter": {"employee_id": f"E-{i}", "name": "Stream", "email": "s@example.com"},
            }
            response = httpx.post(
                f"{intake_url}/api/v1/cases", json=body, headers=AS_AGENT, timeout=30
            )
            response.raise_for_status()
            return str(response.json()["case_id"])

        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [loop.run_in_executor(pool, submit, i) for i in range(total)]

            async def routed_so_far() -> int:
                return int(
                    await admin_pool.fetchval(
                        "SELECT count(*) FROM routing.cases WHERE reference IN"
                        " (SELECT reference FROM intake.cases WHERE subject LIKE 'Stream case %')"
                    )
                )

            async def some_routed():
                return await routed_so_far() >= 20

            await wait_async(some_routed, what="routing under way")
            routing.kill9()  # mid-stream: submissions continue while routing is dead
            routed_at_kill = await routed_so_far()
            submitted_at_kill = sum(f.done() for f in futures)
            case_ids = [uuid.UUID(cid) for cid in await asyncio.gather(*futures)]
        assert len(set(case_ids)) == total
        assert routed_at_kill < total, "the kill must land mid-stream"
        print(f"kill -9 after {routed_at_kill} routed, {submitted_at_kill} of {total} submitted")
        routing.start()

        async def all_audited():
            counts = await audit_counts(admin_pool, case_ids)
            done = all(c == EXPECTED_EVENTS_PER_CASE for c in counts.values())
            return counts if done else None

        try:
            await wait_async(all_audited, timeout=90, what="every case routed and audited")
        finally:
            counts = await audit_counts(admin_pool, case_ids)
            wrong = {cid: c for cid, c in counts.items() if c != EXPECTED_EVENTS_PER_CASE}
            assert not wrong, (
                f"{len(wrong)} cases with missing or doubled events: {list(wrong.items())[:3]}"
            )
        await asyncio.sleep(1.5)  # nothing late and doubled either
        counts = await audit_counts(admin_pool, case_ids)
        assert all(c == EXPECTED_EVENTS_PER_CASE for c in counts.values())
        routed = await admin_pool.fetchval(
            "SELECT count(*) FROM routing.cases WHERE case_id = ANY($1::uuid[])", case_ids
        )
        assert routed == total
        statuses = await admin_pool.fetch(
            "SELECT status, count(*) FROM intake.cases WHERE case_id = ANY($1::uuid[]) GROUP BY 1",
            case_ids,
        )
        assert {r["status"]: r["count"] for r in statuses} == {"assigned": total}
