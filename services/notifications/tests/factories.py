"""Events for the notifications tests; every call uses fresh ids (the db and vhost are shared)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID, uuid4

from shared.envelope import Actor, Envelope
from shared.events import (
    CaseAssigned,
    CaseEscalated,
    CaseMessageReceived,
    CaseNoteAdded,
    CaseReopened,
    CaseRouted,
    CaseSlaBreached,
    CaseSlaWarning,
    CaseStatusChanged,
    CaseSubmitted,
    ConferenceRequired,
    Person,
    Reporter,
    Sensitivity,
    make_event,
)

# Distinctive strings that must never appear in any email.
SECRET_SUBJECT = "SUBJ-MARKER-q7Zr Line manager shouted at me"
SECRET_DESCRIPTION = "DESC-MARKER-x9Kp confidential details of the harassment"
# Conference reasons describe the employee's situation: never in an email either.
SECRET_REASON = "REASON-MARKER-k3Vw serious injury"
# What staff write on a case (a message, a note): never in the reporter's mail.
SECRET_NOTE = "NOTE-MARKER-m4Tb the respondent Jo Bloggs admitted it"

ROUTING = Actor(type="service", id="routing")
TIMERS = Actor(type="system", id="routing-timers")
DUE = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


def staff(name: str = "Olga Owner") -> Person:
    return Person(
        id=f"S{uuid4().hex[:8]}", name=name, email=f"staff-{uuid4().hex[:10]}@example.com"
    )


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
    owner: Person | None = None,
    previous_owner_id: str | None = None,
) -> Envelope:
    payload = CaseAssigned(
        reference=ref if ref is not None else reference(),
        team="hr-ops",
        owner=owner
        or Person(
            id=f"S{uuid4().hex[:8]}",
            name="Olga Owner",
            email=f"owner-{uuid4().hex[:10]}@example.com",
        ),
        strategy="round_robin",
        priority="P2",
        sensitivity=sensitivity,
        category=category,
        first_response_due=datetime(2026, 11, 23, 14, 30, tzinfo=UTC) + timedelta(days=1),
        previous_owner_id=previous_owner_id,
    )
    return make_event(payload, producer="routing", actor=ROUTING, case_id=case_id or uuid4())


def sla_event(
    *,
    case_id: UUID,
    ref: str,
    owner_id: str | None,
    breached: bool = True,
    clock: Literal["first_response", "resolution"] = "first_response",
) -> Envelope:
    cls = CaseSlaBreached if breached else CaseSlaWarning
    payload = cls(reference=ref, clock=clock, due_at=DUE, owner_id=owner_id)
    return make_event(payload, producer="routing", actor=TIMERS, case_id=case_id)


def case_escalated(
    *, case_id: UUID, ref: str, to: Person | None = None, reason: str | None = None
) -> Envelope:
    payload = CaseEscalated(
        reference=ref,
        level=1,
        escalated_to=to or staff("Lee Lead"),
        reason=reason
        or f"first response SLA breached (due {DUE.isoformat()}); P2 case owned by S1",
    )
    return make_event(payload, producer="routing", actor=TIMERS, case_id=case_id)


def conference_required(*, case_id: UUID, ref: str, due: bool = True) -> Envelope:
    payload = ConferenceRequired(
        reference=ref,
        reasons=[SECRET_REASON, "no suitable employment"],
        due_by=DUE if due else None,
    )
    return make_event(payload, producer="routing", actor=ROUTING, case_id=case_id)


def reporter_of(payload: CaseSubmitted) -> Reporter:
    """The reporter of a named (not anonymous) case."""
    assert payload.reporter is not None
    return payload.reporter


# --- The reporter hears what happens ---


def agent(staff_id: str = "A-1001") -> Actor:
    return Actor(type="agent", id=staff_id)


def case_routed(*, case_id: UUID, ref: str, sensitivity: Sensitivity = "normal") -> Envelope:
    payload = CaseRouted(
        reference=ref,
        category="payroll_query",
        category_source="reporter",
        matched_terms=[],
        sensitivity=sensitivity,
        priority="P4",
        priority_reasons=[],
        first_response_due=DUE,
        resolution_due=DUE + timedelta(days=5),
        policy_hash="0" * 64,
    )
    return make_event(payload, producer="routing", actor=ROUTING, case_id=case_id)


def note_added(*, case_id: UUID, ref: str, internal: bool, actor: Actor | None = None) -> Envelope:
    payload = CaseNoteAdded(reference=ref, note_id=uuid4(), body=SECRET_NOTE, internal=internal)
    return make_event(payload, producer="intake", actor=actor or agent(), case_id=case_id)


def message_received(
    *,
    case_id: UUID,
    ref: str,
    sender_role: Literal["reporter", "agent", "anonymous_reporter"] = "agent",
    actor: Actor | None = None,
) -> Envelope:
    payload = CaseMessageReceived(
        reference=ref,
        channel="api",
        sender_role=sender_role,
        body=SECRET_NOTE,
        received_at=datetime.now(UTC),
    )
    return make_event(payload, producer="intake", actor=actor or agent(), case_id=case_id)


def status_changed(
    *,
    case_id: UUID,
    ref: str,
    to_status: str,
    from_status: str = "assigned",
    reason: str | None = None,
    caused_by: Envelope | None = None,
) -> Envelope:
    payload = CaseStatusChanged(
        reference=ref, from_status=from_status, to_status=to_status, reason=reason
    )
    return make_event(
        payload, producer="routing", actor=ROUTING, case_id=case_id, caused_by=caused_by
    )


def case_reopened(
    *,
    case_id: UUID,
    ref: str,
    owner_id: str,
    trigger: Literal["reporter_reply", "staff_request"] = "staff_request",
) -> Envelope:
    now = datetime.now(UTC)
    payload = CaseReopened(
        reference=ref,
        owner_id=owner_id,
        trigger=trigger,
        closed_at=now - timedelta(days=1),
        reopened_at=now,
        resolution_due=now + timedelta(days=5),
    )
    return make_event(payload, producer="routing", actor=ROUTING, case_id=case_id)
