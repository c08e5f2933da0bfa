"""Field case recat-cross-calendar.events.json: its envelopes on the bus into a running routing
with the shipped policy (real calendars). Re-categorising a London case to the Sydney team
keeps the six London working hours already used."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from services.routing.tests.harness import publish, purge_other_queues, tapped
from shared.envelope import Actor, Envelope
from shared.events import CaseAssignmentRequested, make_event
from tests.support.bus import declare_topology
from tests.support.infra import ROOT, ServiceProcess, free_port, service_env

FIELD_CASE = ROOT / "tests" / "fixtures" / "field_cases" / "recat-cross-calendar.events.json"


@pytest.fixture(scope="module")
async def routing(database_url, rabbitmq_url, amqp, logs_dir):
    await declare_topology(amqp)
    env = service_env(
        database_url,
        rabbitmq_url,
        ROUTING_POLICY_FILE=str(ROOT / "services" / "routing" / "policy" / "default.yaml"),
        ROUTING_TIMER_INTERVAL="0.2",
        ROUTING_HTTP_PORT=str(free_port()),
    )
    process = ServiceProcess(
        "routing", env, int(env["ROUTING_HTTP_PORT"]), Path(logs_dir) / "routing-recat.log"
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
        await purge_other_queues(amqp)


async def test_recategorising_to_a_team_on_another_calendar_keeps_the_working_time_used(
    routing, amqp, admin_pool
):
    submitted, recategorised = (
        Envelope.model_validate(raw) for raw in json.loads(FIELD_CASE.read_text("utf-8"))
    )
    case_id = submitted.case_id
    assert case_id == UUID("43604856-ebec-45c2-867d-9d9421c68a29")
    async with tapped(amqp) as tap:
        await publish(amqp, submitted)
        await tap.wait(lambda: tap.of(case_id, "case.assigned"), what="routed")
        await publish(amqp, recategorised)
        await tap.wait(lambda: len(tap.of(case_id, "case.routed")) == 2, what="re-routed")
        await tap.wait(lambda: len(tap.of(case_id, "case.assigned")) == 2, what="re-assigned")
    first, second = (e.payload for e in tap.of(case_id, "case.routed"))
    # Before: P4 general query in London, 24 h / 240 h from Fri 27 Nov 09:00.
    assert first["priority"] == "P4"
    # After: P2 workplace injury in Sydney; 6 London hours used (09:00-15:00 Friday), so
    # 2 h of first response are left from Mon 09:00 Sydney (Sun 22:00Z) and 74 h of the
    # resolution.
    assert second["category"] == "workplace_injury" and second["priority"] == "P2"
    assert _at(second["first_response_due"]) == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    assert _at(second["resolution_due"]) == datetime(2026, 12, 10, 4, 30, tzinfo=UTC)
    moved = tap.of(case_id, "case.assigned")[-1].payload
    assert moved["team"] == "injury_management"
    assert _at(moved["first_response_due"]) == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    clocks = {
        row["clock"]: row
        for row in await admin_pool.fetch(
            "SELECT clock, consumed, due_at FROM routing.sla_clocks WHERE case_id = $1", case_id
        )
    }
    assert {name: row["consumed"].total_seconds() / 3600 for name, row in clocks.items()} == {
        "first_response": 6.0,
        "resolution": 6.0,
    }
    assert clocks["first_response"]["due_at"] == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


async def test_a_manual_reassignment_to_a_team_on_another_calendar_keeps_the_time_used(
    routing, amqp
):
    """The same kind by another door: an HR manager hands a London case to a Sydney agent."""
    submitted, _ = (
        Envelope.model_validate(raw) for raw in json.loads(FIELD_CASE.read_text("utf-8"))
    )
    case_id = uuid4()
    submitted = submitted.model_copy(
        update={
            "event_id": uuid4(),
            "case_id": case_id,
            "payload": {**submitted.payload, "reference": "HR-2026-900002"},
        }
    )
    handover = make_event(
        CaseAssignmentRequested(owner_id="A-4001", reason="injury specialist"),
        producer="intake",
        actor=Actor(type="agent", id="M-9001"),
        case_id=case_id,
        occurred_at=datetime(2026, 11, 27, 15, 0, tzinfo=UTC),
    )
    async with tapped(amqp) as tap:
        await publish(amqp, submitted)
        await tap.wait(lambda: tap.of(case_id, "case.assigned"), what="routed")
        await publish(amqp, handover)
        await tap.wait(lambda: len(tap.of(case_id, "case.assigned")) == 2, what="handed over")
    moved = tap.of(case_id, "case.assigned")[-1].payload
    assert moved["team"] == "injury_management" and moved["owner"]["id"] == "A-4001"
    # P4: 24 h, 6 used in London; 18 h left from Mon 09:00 Sydney -> Wed 10:00 Sydney.
    assert _at(moved["first_response_due"]) == datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
