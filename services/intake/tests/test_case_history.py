"""A case's history on the test database: intake's handlers called directly, one transaction
each, as the consumer would (redeliveries included)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.application.case_page import entries_for_staff
from services.intake.application.cases import NewCase, open_case
from services.intake.application.handlers import HANDLERS
from services.intake.application.history import record_written
from shared.consumer import HandlerContext
from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    CaseAssigned,
    CaseEscalated,
    CaseRecategorisationRequested,
    CaseRouted,
    CaseSlaBreached,
    CaseSlaWarning,
    CaseStatusChanged,
    EventPayload,
    Person,
    Reporter,
    make_event,
)

PRIYA = Person(id="A-1001", name="Priya Shah", email="priya.shah@example.com")
GRACE = Person(id="A-2001", name="Grace Okafor", email="grace.okafor@example.com")


async def _new_case(pool: asyncpg.Pool) -> tuple[UUID, str]:
    async with pool.acquire() as conn, conn.transaction():
        opened = await open_case(
            conn,
            NewCase(
                channel="api",
                subject="History test",
                description="A case for the history test.",
                reporter=Reporter(employee_id="E-1", name="Sam Rivera", email="sam@example.com"),
                actor=Actor(type="employee", id="E-1"),
            ),
        )
        # Never published: later tests' services must not route this case.
        await conn.execute("DELETE FROM intake.outbox WHERE event_id = $1", opened.event.event_id)
    return opened.case_id, opened.reference


async def _apply(pool: asyncpg.Pool, envelope: Envelope) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await HANDLERS[envelope.event_type](
            HandlerContext(envelope=envelope, conn=conn, service="intake", schema="intake")
        )


def _from_routing(case_id: UUID, payload: EventPayload, cause: Envelope | None = None) -> Envelope:
    return make_event(
        payload,
        producer="routing",
        actor=Actor(type="service", id="routing"),
        case_id=case_id,
        caused_by=cause,
    )


def _routed(reference: str, category: str, reasons: list[str]) -> CaseRouted:
    now = utcnow()
    return CaseRouted(
        reference=reference,
        category=category,
        category_source="reporter",
        matched_terms=[],
        sensitivity="normal",
        priority="P4",
        priority_reasons=reasons,
        first_response_due=now + timedelta(hours=8),
        resolution_due=now + timedelta(hours=80),
        policy_hash="test",
    )


def _assigned(reference: str, owner: Person, previous: str | None) -> CaseAssigned:
    return CaseAssigned(
        reference=reference,
        team="hr_operations",
        owner=owner,
        strategy="round_robin",
        priority="P4",
        sensitivity="normal",
        category="payroll_query",
        first_response_due=utcnow(),
        previous_owner_id=previous,
    )


async def test_routings_events_become_entries_once_each_with_names(
    admin_pool: asyncpg.Pool,
) -> None:
    case_id, ref = await _new_case(admin_pool)
    routed = _from_routing(case_id, _routed(ref, "payroll_query", []))
    await _apply(admin_pool, routed)
    await _apply(admin_pool, routed)  # a redelivery adds nothing
    await _apply(admin_pool, _from_routing(case_id, _assigned(ref, PRIYA, None)))

    # An agent asks for a re-categorisation (intake's own write, with the agent's name);
    # routing answers with case.routed and case.assigned caused by that request.
    request = make_event(
        CaseRecategorisationRequested(category="grievance", reason="it is a grievance"),
        producer="intake",
        actor=Actor(type="agent", id="M-9002"),
        case_id=case_id,
    )
    async with admin_pool.acquire() as conn, conn.transaction():
        await record_written(
            conn,
            request,
            "recategorisation_requested",
            actor_name="Victor Almeida",
            category="grievance",
            reason="it is a grievance",
        )
    reason = "re-categorised from payroll_query to grievance by M-9002: it is a grievance"
    await _apply(admin_pool, _from_routing(case_id, _routed(ref, "grievance", [reason]), request))
    await _apply(admin_pool, _from_routing(case_id, _assigned(ref, GRACE, "A-1001"), request))
    moved = CaseStatusChanged(reference=ref, from_status="assigned", to_status="in_progress")
    await _apply(admin_pool, _from_routing(case_id, moved, request))

    due = utcnow()
    for payload in (
        CaseSlaWarning(reference=ref, clock="first_response", due_at=due, owner_id="A-2001"),
        CaseSlaBreached(reference=ref, clock="first_response", due_at=due, owner_id="A-2001"),
        CaseEscalated(reference=ref, level=1, escalated_to=PRIYA, reason="first response late"),
    ):
        await _apply(
            admin_pool,
            make_event(
                payload,
                producer="routing",
                actor=Actor(type="system", id="routing-timers"),
                case_id=case_id,
            ),
        )

    entries = await entries_for_staff(admin_pool, case_id)
    assert [e.kind for e in entries] == [
        "submitted",
        "routed",
        "assigned",
        "recategorisation_requested",
        "recategorised",
        "assigned",
        "status_changed",
        "sla_warning",
        "sla_breached",
        "escalated",
    ]
    by_kind: dict[str, Any] = {}
    for entry in entries:
        by_kind[entry.kind] = entry
    assert entries[0].actor["name"] == "Sam Rivera"
    assert entries[1].actor["name"] == "Routing"
    assert entries[2].description == "Assigned to Priya Shah (team hr_operations)"
    recategorised = by_kind["recategorised"]
    assert recategorised.summary["from_category"] == "payroll_query"
    assert recategorised.actor["name"] == "Victor Almeida"
    assert recategorised.description.startswith("Re-categorised from payroll_query to grievance")
    reassigned = by_kind["assigned"]
    assert reassigned.actor["name"] == "Victor Almeida"
    assert reassigned.description == (
        "Assigned to Grace Okafor (team hr_operations), previously Priya Shah"
    )
    assert by_kind["status_changed"].actor["name"] == "Victor Almeida"
    assert by_kind["sla_warning"].actor["name"] == "SLA timer"
    assert by_kind["sla_breached"].description.startswith("SLA breached: first response due")
    assert by_kind["escalated"].description == (
        "Escalated (level 1) to Priya Shah: first response late"
    )


async def test_a_known_name_replaces_a_bare_id(admin_pool: asyncpg.Pool) -> None:
    """An id without a stored name (an API token without a name) is shown with the name
    intake knows for it, here from routing's case.assigned."""
    case_id, ref = await _new_case(admin_pool)
    await _apply(admin_pool, _from_routing(case_id, _routed(ref, "payroll_query", [])))
    await _apply(admin_pool, _from_routing(case_id, _assigned(ref, PRIYA, None)))
    note = make_event(
        CaseRecategorisationRequested(category="grievance", reason="a grievance after all"),
        producer="intake",
        actor=Actor(type="agent", id="A-1001"),
        case_id=case_id,
    )
    async with admin_pool.acquire() as conn, conn.transaction():
        await record_written(conn, note, "recategorisation_requested", actor_name=None)
    entries = await entries_for_staff(admin_pool, case_id)
    assert entries[-1].actor == {"type": "agent", "id": "A-1001", "name": "Priya Shah"}
