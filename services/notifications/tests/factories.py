"""Events for the notifications tests; every call uses fresh ids (the db and vhost are shared)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from shared.envelope import Actor, Envelope
from shared.events import CaseAssigned, CaseSubmitted, Person, Reporter, Sensitivity, make_event

# Distinctive strings that must never appear in any email.
SECRET_SUBJECT = "SUBJ-MARKER-q7Zr Line manager shouted at me"
SECRET_DESCRIPTION = "DESC-MARKER-x9Kp confidential details of the harassment"


def reference() -> str:
    return f"HR-2026-{uuid4().int % 10**6:06d}"


def case_submitted(
    *, case_id: UUID | None = None, ref: str | None = None, email: str | None = None
) -> Envelope:
    employee_id = f"E{uuid4().hex[:8]}"
    payload = CaseSubmitted(
        reference=ref if ref is not None else reference(),
        channel="portal",
        subject=SECRET_SUBJECT,
        description=SECRET_DESCRIPTION,
        reporter=Reporter(
            employee_id=employee_id,
            name="Ada Reporter",
            email=email or f"reporter-{uuid4().hex[:10]}@example.com",
        ),
        category="harassment",
        submitted_at=datetime.now(UTC),
    )
    return make_event(
        payload,
        producer="intake",
        actor=Actor(type="employee", id=employee_id),
        case_id=case_id or uuid4(),
    )


def case_assigned(
    *,
    case_id: UUID | None = None,
    ref: str | None = None,
    sensitivity: Sensitivity = "normal",
    category: str = "pay_and_benefits",
) -> Envelope:
    payload = CaseAssigned(
        reference=ref if ref is not None else reference(),
        team="hr-ops",
        owner=Person(
            id=f"S{uuid4().hex[:8]}",
            name="Olga Owner",
            email=f"owner-{uuid4().hex[:10]}@example.com",
        ),
        strategy="round_robin",
        priority="P2",
        sensitivity=sensitivity,
        category=category,
        first_response_due=datetime(2026, 11, 23, 14, 30, tzinfo=UTC) + timedelta(days=1),
    )
    return make_event(
        payload,
        producer="routing",
        actor=Actor(type="service", id="routing"),
        case_id=case_id or uuid4(),
    )


def reporter_of(payload: CaseSubmitted) -> Reporter:
    """The reporter of a named (not anonymous) case."""
    assert payload.reporter is not None
    return payload.reporter
