"""Helpers for the audit tests (importable; conftest.py holds the fixtures)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from shared.envelope import Actor, Envelope, new_envelope


def note_payload(body: str = "Grievance — résumé ✓") -> dict[str, Any]:
    """A valid `case.note_added` payload: audit records only events it knows the schema of."""
    return {"reference": "HR-2026-000001", "note_id": str(uuid4()), "body": body}


def make_envelope(
    *,
    case_id: UUID | None = None,
    # A type and producer the bus authenticates (shared.topology.PUBLISHES): audit refuses
    # an event whose producer is not the broker user that published it.
    event_type: str = "case.note_added",
    payload: dict[str, Any] | None = None,
    producer: str = "intake",
    caused_by: Envelope | None = None,
) -> Envelope:
    return new_envelope(
        event_type=event_type,
        schema_version=1,
        payload=payload if payload is not None else note_payload(),
        producer=producer,
        actor=Actor(type="agent", id="agent-7"),
        case_id=case_id,
        caused_by=caused_by,
    )


async def wait_until(
    predicate: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, what: str = "condition"
) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def case_story(case_id: UUID, start: datetime) -> list[Envelope]:
    """A case's life as the services publish it, one event a minute from `start`:
    submitted (with a document), routed, assigned, status changed, a note, a message."""
    from datetime import timedelta

    from shared.events import (
        Attachment,
        CaseAssigned,
        CaseMessageReceived,
        CaseNoteAdded,
        CaseRouted,
        CaseStatusChanged,
        CaseSubmitted,
        Person,
        Reporter,
        make_event,
    )

    def at(minutes: int) -> datetime:
        return start + timedelta(minutes=minutes)

    ref = "HR-2026-000042"
    doc = Attachment(
        attachment_id=UUID(int=42),
        filename="rota.pdf",
        content_type="application/pdf",
        size=1234,
        sha256="ab" * 32,
    )
    employee, routing = Actor(type="employee", id="E-7"), Actor(type="service", id="routing")
    submitted = make_event(
        CaseSubmitted(
            reference=ref, channel="api", subject="Harassment on the night shift",
            description="Details…", reporter=Reporter(
                employee_id="E-7", name="Sam", email="sam@example.com"
            ), submitted_at=at(0), attachments=[doc],
        ),
        producer="intake", actor=employee, case_id=case_id, occurred_at=at(0),
    )  # fmt: skip
    routed = make_event(
        CaseRouted(
            reference=ref, category="harassment", category_source="rules",
            matched_terms=["harass"], sensitivity="restricted", priority="P2",
            priority_reasons=[], first_response_due=at(60), resolution_due=at(600),
            policy_hash="p" * 8,
        ),
        producer="routing", actor=routing, case_id=case_id, caused_by=submitted,
        occurred_at=at(1),
    )  # fmt: skip
    assigned = make_event(
        CaseAssigned(
            reference=ref, team="investigations",
            owner=Person(id="A-3001", name="Ada", email="ada@example.com"),
            strategy="round_robin", priority="P2", sensitivity="restricted",
            category="harassment", first_response_due=at(60),
        ),
        producer="routing", actor=routing, case_id=case_id, caused_by=submitted,
        occurred_at=at(2),
    )  # fmt: skip
    status = make_event(
        CaseStatusChanged(reference=ref, from_status="new", to_status="assigned", reason="routed"),
        producer="routing", actor=routing, case_id=case_id, caused_by=submitted,
        occurred_at=at(3),
    )  # fmt: skip
    note = make_event(
        CaseNoteAdded(reference=ref, note_id=UUID(int=7), body="Called the reporter."),
        producer="intake", actor=Actor(type="agent", id="A-3001"), case_id=case_id,
        occurred_at=at(4),
    )  # fmt: skip
    message = make_event(
        CaseMessageReceived(
            reference=ref, channel="email", sender_role="reporter", body="More detail",
            attachments=[], received_at=at(5),
        ),
        producer="intake", actor=employee, case_id=case_id, occurred_at=at(5),
    )  # fmt: skip
    return [submitted, routed, assigned, status, note, message]
