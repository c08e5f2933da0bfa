"""Unit tests of the pure domain: who is told what, and that nothing sensitive leaks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.notifications.domain import notices as domain
from services.notifications.tests.factories import (
    SECRET_DESCRIPTION,
    SECRET_SUBJECT,
    case_assigned,
    case_submitted,
    reporter_of,
)
from shared.events import CaseAssigned, CaseSubmitted, payload_as
from shared.mail import notification_id

CONFIG = domain.MailConfig(
    portal_base_url="https://hr.example.org/", mail_from="HR Case Desk <hr-desk@hr.example.org>"
)
TEMPLATES = domain.load_templates()
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def _all_text(n: domain.Notification) -> str:
    raw = domain.build_email(n, mail_from=CONFIG.mail_from, date=NOW).as_bytes()
    return raw.decode("utf-8") + n.subject + n.body


def test_case_submitted_acknowledges_reporter_without_case_details() -> None:
    envelope = case_submitted()
    payload = payload_as(envelope, CaseSubmitted)

    [n] = domain.for_case_submitted(envelope, payload, templates=TEMPLATES, config=CONFIG)

    assert n.audience == "reporter"
    assert n.template == "case_received"
    assert n.recipient_email == reporter_of(payload).email
    assert n.recipient_id == reporter_of(payload).employee_id
    assert n.subject == f"[{payload.reference}] We have received your case"
    assert payload.reference in n.body
    assert f"https://hr.example.org/portal/cases/{envelope.case_id}" in n.body
    text = _all_text(n)
    for secret in (SECRET_DESCRIPTION, SECRET_SUBJECT, "DESC-MARKER", "SUBJ-MARKER", "harassment"):
        assert secret not in text


def test_message_id_is_deterministic_per_event_and_audience() -> None:
    envelope = case_submitted()
    payload = payload_as(envelope, CaseSubmitted)

    [first] = domain.for_case_submitted(envelope, payload, templates=TEMPLATES, config=CONFIG)
    [again] = domain.for_case_submitted(envelope, payload, templates=TEMPLATES, config=CONFIG)
    other = notification_id(envelope.event_id, "owner")

    assert first.message_id == again.message_id
    assert first.notification_id == notification_id(envelope.event_id, "reporter")
    assert first.message_id == f"<{first.notification_id}@hr.example.org>"
    assert other != first.notification_id


def test_email_headers() -> None:
    envelope = case_submitted()
    [n] = domain.for_case_submitted(
        envelope, payload_as(envelope, CaseSubmitted), templates=TEMPLATES, config=CONFIG
    )

    message = domain.build_email(n, mail_from=CONFIG.mail_from, date=NOW)

    assert message["From"] == CONFIG.mail_from
    assert message["To"] == n.recipient_email
    assert message["Message-ID"] == n.message_id
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"]
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert not message.is_multipart()


def test_case_assigned_tells_owner_with_category_when_normal() -> None:
    envelope = case_assigned(sensitivity="normal", category="pay_and_benefits")
    payload = payload_as(envelope, CaseAssigned)

    [n] = domain.for_case_assigned(envelope, payload, templates=TEMPLATES, config=CONFIG)

    assert n.audience == "owner"
    assert n.recipient_email == payload.owner.email
    assert n.recipient_id == payload.owner.id
    assert payload.reference in n.subject
    assert "P2" in n.body
    assert domain.format_due(payload.first_response_due) in n.body
    assert "pay_and_benefits" in n.body
    assert f"https://hr.example.org/portal/cases/{envelope.case_id}" in n.body


@pytest.mark.parametrize("sensitivity", ["confidential", "restricted"])
def test_sensitive_assignment_omits_category(sensitivity: str) -> None:
    envelope = case_assigned(sensitivity=sensitivity, category="sexual_harassment")  # type: ignore[arg-type]
    payload = payload_as(envelope, CaseAssigned)

    [n] = domain.for_case_assigned(envelope, payload, templates=TEMPLATES, config=CONFIG)

    assert "sexual_harassment" not in _all_text(n)
    assert "Category" not in n.body
    assert payload.reference in n.body
    assert sensitivity in n.body


@pytest.mark.parametrize("bad", ["HR-1\r\nBcc: victim@example.com", "", "x" * 100, "ÄÖ-1"])
def test_reference_that_could_break_headers_is_refused(bad: str) -> None:
    envelope = case_submitted(ref=bad)
    with pytest.raises(domain.UnsafeContent):
        domain.for_case_submitted(
            envelope, payload_as(envelope, CaseSubmitted), templates=TEMPLATES, config=CONFIG
        )


def test_event_without_case_id_is_refused() -> None:
    envelope = case_submitted().model_copy(update={"case_id": None})
    with pytest.raises(domain.UnsafeContent):
        domain.for_case_submitted(
            envelope, payload_as(envelope, CaseSubmitted), templates=TEMPLATES, config=CONFIG
        )


def test_the_acknowledgement_goes_to_the_address_on_file_when_the_directory_has_one() -> None:
    envelope = case_submitted()
    payload = payload_as(envelope, CaseSubmitted)

    [n] = domain.for_case_submitted(
        envelope,
        payload,
        templates=TEMPLATES,
        config=CONFIG,
        address_on_file="current@example.org",
    )

    assert n.recipient_email == "current@example.org"
    assert n.recipient_id == reporter_of(payload).employee_id
