"""Delivery guarantees on the real broker: no loss, no double effect, poison isolated."""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from shared.envelope import Actor, utcnow
from shared.events import CaseRouted, CaseSubmitted, Reporter, make_event
from tests.support.bus import get_dead_letters, publish_envelope, publish_raw
from tests.support.system import running_system

EXPECTED_EVENTS_PER_CASE = {
    "case.submitted": 1,
    "case.routed": 1,
    "case.assigned": 1,
    "case.status_changed": 1,
    "notification.sent": 2,
}


def submitted_event(reference: str, *, category: str | None = None):
    case_id = uuid.uuid4()
    return make_event(
        CaseSubmitted(
            reference=reference,
            channel="api",
            subject="Payslip missing overtime",
            description="Overtime from October is not on my payslip.",
            reporter=Reporter(employee_id="E-9", name="Kim", email="kim@example.com"),
            category=category,
            submitted_at=utcnow(),
        ),
        producer="intake",
        actor=Actor(type="employee", id="E-9"),
        case_id=case_id,
    )


async def audit_counts(admin_pool, case_ids) -> dict[uuid.UUID, dict[str, int]]:
    rows = await admin_pool.fetch(
        "SELECT case_id, event_type, count(*) AS n FROM audit.log"
        " WHERE case_id = ANY($1::uuid[]) GROUP BY 1, 2",
        list(case_ids),
    )
    counts: dict[uuid.UUID, dict[str, int]] = {cid: {} for cid in case_ids}
    for row in rows:
        counts[row["case_id"]][row["event_type"]] = row["n"]
    return counts


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
    event = submitted_event("HR-TEST-DUP1")
    await publish_envelope(amqp, event)
    await publish_envelope(amqp, event)  # the broker redelivering, or a publisher retrying

    async def settled():
        counts = (await audit_counts(admin_pool, [event.case_id]))[event.case_id]
        return (
            counts
            if counts.get("case.status_changed") and counts.get("notification.sent") == 1
            else None
        )

    await wait_async(settled, what="duplicate handled")
    await asyncio.sleep(1.0)  # give a (wrong) second effect time to show up
    counts = (await audit_counts(admin_pool, [event.case_id]))[event.case_id]
    assert counts == {
        "case.submitted": 1,  # same event_id twice: the audit log keeps it once
        "case.routed": 1,
        "case.assigned": 1,
        "case.status_changed": 1,
        "notification.sent": 1,  # the reporter's acknowledgement, once
    }
    assert (
        await admin_pool.fetchval(
            "SELECT count(*) FROM routing.cases WHERE case_id = $1", event.case_id
        )
        == 1
    )


async def test_poison_message_is_dead_lettered_with_reason_and_later_messages_flow(
    system, amqp, admin_pool
):
    poison_id = str(uuid.uuid4())
    await publish_raw(
        amqp, b'{"not": "an envelope"', routing_key="case.submitted", message_id=poison_id
    )
    valid = submitted_event("HR-TEST-AFTER-POISON")
    await publish_envelope(amqp, valid)

    routed = await wait_async(
        lambda: admin_pool.fetchval(
            "SELECT owner_id FROM routing.cases WHERE case_id = $1", valid.case_id
        ),
        what="valid case routed after the poison message",
    )
    assert routed
    dead = [
        m
        for m in await get_dead_letters(amqp, "routing.events.dlq", expect=1)
        if m.message_id == poison_id
    ]
    assert dead, "poison message must be in routing's DLQ"
    headers = dead[0].headers
    assert "invalid envelope" in headers["x-error"]
    assert headers["x-failed-service"] == "routing"
    assert headers["x-original-routing-key"] == "case.submitted"
    assert dead[0].body == b'{"not": "an envelope"'


async def test_failing_handler_is_retried_then_dead_lettered(system, amqp, admin_pool):
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
    dead = await get_dead_letters(amqp, "intake.events.dlq", expect=1, timeout=30)
    mine = [m for m in dead if m.message_id == str(ghost.event_id)]
    assert mine, "the failing event must end in intake's DLQ"
    assert "not known to intake" in mine[0].headers["x-error"]
    assert mine[0].headers["x-attempts"] == 3
    assert json.loads(mine[0].body)["event_id"] == str(ghost.event_id)


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
            response = httpx.post(f"{intake_url}/api/v1/cases", json=body, timeout=30)
            response.raise_for_status()
            return str(response.json()["case_id"])

        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [loop.run_in_executor(pool, submit, i) for i in range(total)]

            async def some_routed():
                n = await admin_pool.fetchval(
                    "SELECT count(*) FROM routing.cases WHERE reference IN"
                    " (SELECT reference FROM intake.cases WHERE subject LIKE 'Stream case %')"
                )
                return n >= 20

            await wait_async(some_routed, what="routing under way")
            routing.kill9()  # mid-stream: submissions continue while routing is dead
            case_ids = [uuid.UUID(cid) for cid in await asyncio.gather(*futures)]
        assert len(set(case_ids)) == total
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
