"""Unit tests of the staff notifications: deadlines, escalations, conferences, reassignment."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from services.notifications.application.handlers import Notifier
from services.notifications.domain import notices as domain
from services.notifications.entrypoints.subscriptions import SUBSCRIPTIONS
from services.notifications.tests.factories import (
    DUE,
    SECRET_DESCRIPTION,
    SECRET_REASON,
    SECRET_SUBJECT,
    case_assigned,
    case_escalated,
    conference_required,
    reference,
    sla_event,
    staff,
)
from shared.events import (
    CaseAssigned,
    CaseEscalated,
    CaseSlaBreached,
    CaseSlaWarning,
    ConferenceRequired,
    payload_as,
)
from shared.mail import notification_id

CONFIG = domain.MailConfig(
    portal_base_url="https://hr.example.org/", mail_from="HR Case Desk <hr-desk@hr.example.org>"
)
TEMPLATES = domain.load_templates()
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
# Case content and sensitive policy detail that no staff email may carry.
SECRETS = (SECRET_SUBJECT, SECRET_DESCRIPTION, SECRET_REASON, "serious injury", "harassment")
OWNER = staff()
OWNER_CONTACT = domain.Contact(staff_id=OWNER.id, email=str(OWNER.email))
CASE = domain.CaseFacts(owner_id=OWNER.id, priority="P1")


def _all_text(n: domain.Notification) -> str:
    raw = domain.build_email(n, mail_from=CONFIG.mail_from, date=NOW).as_bytes()
    return raw.decode("utf-8") + n.subject + n.body


def _assert_clean(n: domain.Notification) -> None:
    text = _all_text(n)
    for secret in SECRETS:
        assert secret not in text


def _sent(outcomes: list[domain.Outcome]) -> domain.Notification:
    [n] = outcomes
    assert isinstance(n, domain.Notification)
    return n


@pytest.mark.parametrize(
    ("breached", "clock", "label", "template"),
    [
        (False, "first_response", "First response due at", "sla_warning"),
        (False, "resolution", "Resolution due at", "sla_warning"),
        (True, "first_response", "First response due at", "sla_breached"),
        (True, "resolution", "Resolution due at", "sla_breached"),
    ],
)
def test_sla_events_go_to_the_owner_with_the_deadline(
    breached: bool, clock: str, label: str, template: str
) -> None:
    case_id = uuid4()
    envelope = sla_event(
        case_id=case_id,
        ref=reference(),
        owner_id=OWNER.id,
        breached=breached,
        clock=clock,  # type: ignore[arg-type]
    )
    payload: CaseSlaWarning | CaseSlaBreached = (
        payload_as(envelope, CaseSlaBreached) if breached else payload_as(envelope, CaseSlaWarning)
    )

    n = _sent(
        domain.for_sla_event(
            envelope,
            payload,
            case=CASE,
            recipient=OWNER_CONTACT,
            templates=TEMPLATES,
            config=CONFIG,
        )
    )

    assert n.template == template
    assert n.audience == "owner"
    assert n.recipient_id == OWNER.id
    assert n.recipient_email == OWNER.email
    assert n.subject.startswith(f"[{payload.reference}] ")
    assert "(P1)" in n.subject
    assert f"{label} {domain.format_due(DUE)}." in n.body
    assert f"https://hr.example.org/portal/cases/{case_id}" in n.body
    assert n.notification_id == notification_id(envelope.event_id, "owner")
    _assert_clean(n)


def test_sla_event_without_owner_in_payload_falls_back_to_the_known_owner() -> None:
    envelope = sla_event(case_id=uuid4(), ref=reference(), owner_id=None)
    payload = payload_as(envelope, CaseSlaBreached)

    assert domain.sla_recipient_id(payload, CASE) == OWNER.id
    assert domain.sla_recipient_id(payload, None) is None


def test_priority_is_left_out_when_unknown() -> None:
    envelope = sla_event(case_id=uuid4(), ref=reference(), owner_id=OWNER.id)
    n = _sent(
        domain.for_sla_event(
            envelope,
            payload_as(envelope, CaseSlaBreached),
            case=None,
            recipient=OWNER_CONTACT,
            templates=TEMPLATES,
            config=CONFIG,
        )
    )
    assert "Priority" not in n.body
    assert "(" not in n.subject


@pytest.mark.parametrize("recipient", [None, domain.Contact(staff_id="S-other", email="o@x.org")])
def test_unknown_owner_contact_is_undeliverable_not_dropped(
    recipient: domain.Contact | None,
) -> None:
    envelope = sla_event(case_id=uuid4(), ref=reference(), owner_id=OWNER.id)

    [u] = domain.for_sla_event(
        envelope,
        payload_as(envelope, CaseSlaBreached),
        case=None,
        recipient=recipient,
        templates=TEMPLATES,
        config=CONFIG,
    )

    assert isinstance(u, domain.Undeliverable)
    assert u.reason == "no contact for recipient"
    assert u.recipient_id == OWNER.id
    assert u.template == "sla_breached"
    assert u.notification_id == notification_id(envelope.event_id, "owner")
    assert u.message_id == f"<{u.notification_id}@hr.example.org>"


def test_escalation_goes_to_the_target_with_level_and_capped_reason() -> None:
    case_id = uuid4()
    target = staff("Lee Lead")
    envelope = case_escalated(case_id=case_id, ref=reference(), to=target)
    payload = payload_as(envelope, CaseEscalated)

    n = _sent(
        domain.for_case_escalated(envelope, payload, case=CASE, templates=TEMPLATES, config=CONFIG)
    )

    assert n.audience == "escalation"
    assert n.template == "case_escalated"
    assert n.recipient_id == target.id
    assert n.recipient_email == target.email
    assert "level 1" in n.subject
    assert "Reason:" in n.body and "first response SLA breached" in n.body
    assert "P1" in n.body
    assert f"https://hr.example.org/portal/cases/{case_id}" in n.body
    _assert_clean(n)


def test_escalation_reason_is_one_short_line() -> None:
    reason = "first response SLA breached\r\nBcc: someone@example.com " + "x" * 400
    envelope = case_escalated(case_id=uuid4(), ref=reference(), reason=reason)

    n = _sent(
        domain.for_case_escalated(
            envelope,
            payload_as(envelope, CaseEscalated),
            case=None,
            templates=TEMPLATES,
            config=CONFIG,
        )
    )

    [line] = [x for x in n.body.splitlines() if x.startswith("Reason:")]
    shown = line.removeprefix("Reason:").strip()
    assert len(shown) <= domain.REASON_MAX_LENGTH
    assert shown.endswith("…")
    assert "\r" not in n.body
    assert "\nBcc:" not in n.body


@pytest.mark.parametrize("due", [True, False])
def test_conference_goes_to_the_owner_without_its_reasons(due: bool) -> None:
    case_id = uuid4()
    envelope = conference_required(case_id=case_id, ref=reference(), due=due)
    payload = payload_as(envelope, ConferenceRequired)

    n = _sent(
        domain.for_conference_required(
            envelope,
            payload,
            case=CASE,
            recipient=OWNER_CONTACT,
            templates=TEMPLATES,
            config=CONFIG,
        )
    )

    assert n.template == "conference_required"
    assert n.recipient_id == OWNER.id
    assert "a case conference is required" in n.body.lower()
    assert ("by " + domain.format_due(DUE) in n.body) is due
    assert "see the case" in n.body
    assert "no suitable employment" not in _all_text(n)
    _assert_clean(n)


def test_conference_for_a_case_never_assigned_is_undeliverable() -> None:
    envelope = conference_required(case_id=uuid4(), ref=reference())

    [u] = domain.for_conference_required(
        envelope,
        payload_as(envelope, ConferenceRequired),
        case=None,
        recipient=None,
        templates=TEMPLATES,
        config=CONFIG,
    )

    assert isinstance(u, domain.Undeliverable)
    assert u.recipient_id is None
    assert u.reason == domain.NO_CONTACT


def test_reassignment_tells_the_previous_owner_without_the_new_owner() -> None:
    previous = staff("Pat Previous")
    new_owner = staff("Nina Newowner")
    envelope = case_assigned(
        sensitivity="restricted",
        category="harassment",
        owner=new_owner,
        previous_owner_id=previous.id,
    )
    payload = payload_as(envelope, CaseAssigned)

    n = _sent(
        domain.for_previous_owner(
            envelope,
            payload,
            recipient=domain.Contact(staff_id=previous.id, email=str(previous.email)),
            templates=TEMPLATES,
            config=CONFIG,
        )
    )

    assert n.audience == "previous_owner"
    assert n.template == "case_reassigned"
    assert n.recipient_id == previous.id
    assert n.notification_id != notification_id(envelope.event_id, "owner")
    assert "reassigned" in n.subject
    text = _all_text(n)
    for detail in ("Nina", "Newowner", new_owner.id, str(new_owner.email)):
        assert detail not in text
    _assert_clean(n)


def test_first_assignment_has_no_previous_owner_mail() -> None:
    envelope = case_assigned()
    payload = payload_as(envelope, CaseAssigned)
    assert (
        domain.for_previous_owner(
            envelope, payload, recipient=None, templates=TEMPLATES, config=CONFIG
        )
        == []
    )


def test_handlers_match_the_queue_bindings() -> None:
    # A bound key without a handler dead-letters its events; a handler without a binding
    # never runs.
    notifier = Notifier(templates=TEMPLATES, config=CONFIG, mailer=None)  # type: ignore[arg-type]
    assert set(notifier.handlers()) == set(SUBSCRIPTIONS.binding_keys)
