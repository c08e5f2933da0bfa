"""Out-of-window timestamps on the bus (issue 8, item 11): every consuming service
dead-letters them with the field in the reason, audit records its refusal, and none of
it changes a case (the four services run as processes on the real broker)."""

from __future__ import annotations

import json
import uuid

import pytest

from shared.envelope import Actor, utcnow
from shared.events import CaseRouted, CaseSubmitted, Reporter, make_event
from tests.support.bus import find_dead_letter, publish_raw
from tests.support.system import running_system


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "hostile-timestamps") as running:
        yield running


def _submitted(case_id: uuid.UUID) -> dict:
    event = make_event(
        CaseSubmitted(
            reference="HR-2026-999999",
            channel="api",
            subject="Overtime missing",
            description="My overtime is missing from the payslip.",
            reporter=Reporter(employee_id="E-77", name="Kim", email="kim@example.com"),
            submitted_at=utcnow(),
        ),
        producer="intake",
        actor=Actor(type="employee", id="E-77"),
        case_id=case_id,
    )
    return json.loads(event.to_json_bytes())


def _routed(case_id: uuid.UUID) -> dict:
    event = make_event(
        CaseRouted(
            reference="HR-2026-999999",
            category="pay",
            category_source="rules",
            matched_terms=[],
            sensitivity="normal",
            priority="P3",
            priority_reasons=[],
            first_response_due=utcnow(),
            resolution_due=utcnow(),
            policy_hash="0" * 64,
        ),
        producer="routing",
        actor=Actor(type="service", id="routing"),
        case_id=case_id,
    )
    return json.loads(event.to_json_bytes())


@pytest.mark.parametrize(
    ("make", "field", "value", "consumers"),
    [
        # The field case, at the envelope: routing and notifications consume case.submitted.
        (_submitted, "occurred_at", "9999-12-31T23:59:59.999999Z", ["routing", "notifications"]),
        (_submitted, "occurred_at", "0001-01-01T00:00:00Z", ["routing", "notifications"]),
        # In a payload: a submission time, and a due time intake would show.
        (_submitted, "submitted_at", "9999-12-31T23:59:59-05:00", ["routing", "notifications"]),
        (_routed, "resolution_due", "9999-12-31T23:59:59.999999Z", ["intake"]),
    ],
    ids=["occurred-9999", "occurred-0001", "submitted-beyond-utc", "due-9999"],
)
async def test_every_consumer_dead_letters_an_out_of_window_timestamp(
    system, amqp, admin_pool, make, field: str, value: str, consumers: list[str]
) -> None:
    case_id = uuid.uuid4()
    body = make(case_id)
    if field == "occurred_at":
        body["occurred_at"] = value
    else:
        body["payload"][field] = value
    raw = json.dumps(body).encode()
    # Published by its real producer's broker user: the timestamp alone is what is wrong.
    await publish_raw(
        amqp,
        raw,
        routing_key=body["event_type"],
        message_id=body["event_id"],
        as_publisher=body["producer"],
    )
    for service in [*consumers, "audit"]:
        dead = await find_dead_letter(amqp, f"{service}.events.dlq", body["event_id"], timeout=30)
        assert dead is not None, f"{service} did not dead-letter it"
        reason = str(dead.headers["x-error"])
        assert (field in reason and "outside the accepted window" in reason) or (
            "out of range" in reason
        ), (service, reason)
        assert dead.headers["x-failed-service"] == service
    # Nothing of it reached any service's state.
    for table in ("intake.cases", "routing.cases"):
        assert (
            await admin_pool.fetchval(f"SELECT count(*) FROM {table} WHERE case_id = $1", case_id)
            == 0
        )
    refused = await admin_pool.fetchval(
        "SELECT count(*) FROM audit.log WHERE event_type = 'audit.event_refused'"
        " AND payload->>'refused_event_id' = $1",
        body["event_id"],
    )
    assert refused == 1
