"""Statutory clock mails: the owner on due soon and breach, the escalation target on a
breach routing escalated. Label, citation, due time, reference and link; nothing of the
case itself."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from services.notifications.application.handlers import Notifier
from services.notifications.domain import notices as domain
from services.notifications.domain import statutory_clock_notices as clocks
from services.notifications.entrypoints.subscriptions import SUBSCRIPTIONS
from services.notifications.tests.factories import DUE, TIMERS, reference, staff
from shared.events import (
    StatutoryClockBreached,
    StatutoryClockDueSoon,
    make_event,
    payload_as,
)

CONFIG = domain.MailConfig(
    portal_base_url="https://hr.example.org/", mail_from="HR Case Desk <hr-desk@hr.example.org>"
)
TEMPLATES = domain.load_templates()
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
OWNER = staff("Sofia Rossi")
LEAD = staff("Dana Whitfield")
LABEL = "Notify the insurer of the workplace injury"
CITATION = "Workplace Injury Management and Workers Compensation Act 1998 (NSW) s 44"


def _fields(ref: str) -> dict[str, object]:
    return {
        "reference": ref,
        "pack": "nsw",
        "clock": "insurer_notification",
        "label": LABEL,
        "citation": CITATION,
        "due_at": DUE,
        "owner_id": OWNER.id,
    }


def test_the_owner_hears_a_clock_is_due_soon() -> None:
    case_id, ref = uuid4(), reference()
    event = make_event(
        StatutoryClockDueSoon.model_validate(_fields(ref)),
        producer="routing",
        actor=TIMERS,
        case_id=case_id,
    )
    payload = payload_as(event, StatutoryClockDueSoon)
    [n] = clocks.for_statutory_clock(
        event,
        payload,
        recipient=domain.Contact(OWNER.id, str(OWNER.email)),
        recipient_id=clocks.clock_recipient_id(payload, None),
        templates=TEMPLATES,
        config=CONFIG,
    )
    assert isinstance(n, domain.Notification)
    assert n.recipient_email == str(OWNER.email) and n.audience == "owner"
    assert n.subject == f"[{ref}] Statutory deadline due soon"
    assert f"Obligation:          {LABEL}" in n.body
    assert f"Under:               {CITATION}" in n.body
    assert "Tue 24 Nov 2026, 16:00 UTC" in n.body
    assert f"https://hr.example.org/portal/cases/{case_id}" in n.body
    assert "not legal advice" in n.body


def test_a_breach_reaches_the_owner_and_the_escalation_target() -> None:
    case_id, ref = uuid4(), reference()
    event = make_event(
        StatutoryClockBreached.model_validate(
            {**_fields(ref), "escalated_to": LEAD, "escalation_level": 1}
        ),
        producer="routing",
        actor=TIMERS,
        case_id=case_id,
    )
    payload = payload_as(event, StatutoryClockBreached)
    owner, target = clocks.for_statutory_clock(
        event,
        payload,
        recipient=domain.Contact(OWNER.id, str(OWNER.email)),
        recipient_id=OWNER.id,
        templates=TEMPLATES,
        config=CONFIG,
    )
    assert isinstance(owner, domain.Notification) and isinstance(target, domain.Notification)
    assert owner.subject == f"[{ref}] Statutory deadline missed"
    assert "it has been escalated" in owner.body
    assert target.recipient_email == str(LEAD.email) and target.audience == "escalation"
    assert target.subject == f"[{ref}] Statutory deadline missed: escalated to you"
    assert owner.notification_id != target.notification_id


def test_an_unknown_owner_is_recorded_undeliverable() -> None:
    case_id, ref = uuid4(), reference()
    event = make_event(
        StatutoryClockBreached.model_validate({**_fields(ref), "owner_id": None}),
        producer="routing",
        actor=TIMERS,
        case_id=case_id,
    )
    [outcome] = clocks.for_statutory_clock(
        event,
        payload_as(event, StatutoryClockBreached),
        recipient=None,
        recipient_id=None,
        templates=TEMPLATES,
        config=CONFIG,
    )
    assert isinstance(outcome, domain.Undeliverable)


def test_notifications_subscribes_to_the_clock_mails() -> None:
    handled = set(Notifier(TEMPLATES, CONFIG, mailer=None).handlers())  # type: ignore[arg-type]
    for event_type in ("statutory_clock.due_soon", "statutory_clock.breached"):
        assert event_type in SUBSCRIPTIONS.binding_keys and event_type in handled
