"""The reporter's updates after the acknowledgement: what triggers a mail, what it may say."""

from __future__ import annotations

from uuid import uuid4

import pytest

from services.notifications.domain import notices as domain
from services.notifications.tests.factories import (
    SECRET_NOTE,
    case_reopened,
    message_received,
    note_added,
    reference,
    status_changed,
)
from shared.envelope import Actor
from shared.events import (
    CaseMessageReceived,
    CaseNoteAdded,
    CaseReopened,
    CaseStatusChanged,
    payload_as,
)

CONFIG = domain.MailConfig(portal_base_url="https://hr.example.org", mail_from="hr@example.org")
TEMPLATES = domain.load_templates()
CONTACT = domain.ReporterContact("E-1", "rae@example.com", sensitivity="normal")
REASON = "Please send your October timesheet.\nA photo is fine."


def mail(envelope, update, contact=CONTACT) -> list[domain.Notification]:
    return domain.for_reporter_update(
        envelope, update, contact=contact, templates=TEMPLATES, config=CONFIG
    )


def test_a_shared_note_is_announced_without_its_text_and_an_internal_one_not_at_all() -> None:
    case_id, ref = uuid4(), reference()
    shared = note_added(case_id=case_id, ref=ref, internal=False)
    update = domain.note_update(payload_as(shared, CaseNoteAdded))
    assert update is not None
    [n] = mail(shared, update)
    assert (n.template, n.audience, n.recipient_email) == (
        "reporter_note",
        "reporter",
        CONTACT.email,
    )
    assert ref in n.subject and f"https://hr.example.org/portal/cases/{case_id}" in n.body
    assert SECRET_NOTE not in n.subject + n.body and "NOTE-MARKER" not in n.body
    internal = note_added(case_id=case_id, ref=ref, internal=True)
    assert domain.note_update(payload_as(internal, CaseNoteAdded)) is None


def test_only_staff_messages_mail_the_reporter() -> None:
    case_id, ref = uuid4(), reference()
    staff = message_received(case_id=case_id, ref=ref)
    update = domain.message_update(payload_as(staff, CaseMessageReceived))
    assert update is not None
    [n] = mail(staff, update)
    assert n.template == "reporter_message" and SECRET_NOTE not in n.body
    for role in ("reporter", "anonymous_reporter"):
        own = message_received(case_id=case_id, ref=ref, sender_role=role)
        assert domain.message_update(payload_as(own, CaseMessageReceived)) is None


def test_the_reporter_as_actor_is_never_mailed() -> None:
    envelope = note_added(
        case_id=uuid4(), ref=reference(), internal=False, actor=Actor(type="employee", id="E-1")
    )
    assert mail(envelope, domain.ReporterUpdate("note", "HR-2026-000001")) == []


def test_no_contact_means_no_mail() -> None:
    envelope = note_added(case_id=uuid4(), ref=reference(), internal=False)
    assert mail(envelope, domain.ReporterUpdate("note", "HR-2026-000001"), contact=None) == []


@pytest.mark.parametrize(
    ("to_status", "subject"),
    [
        ("waiting_on_employee", "We need something from you"),
        ("resolved", "Your case has been resolved"),
        ("closed", "Your case has been closed"),
    ],
)
def test_status_changes_carry_staff_reason_for_a_normal_case_only(to_status, subject) -> None:
    case_id, ref = uuid4(), reference()
    envelope = status_changed(case_id=case_id, ref=ref, to_status=to_status, reason=REASON)
    update = domain.status_update(payload_as(envelope, CaseStatusChanged), caused_by=None)
    assert update is not None
    [n] = mail(envelope, update)
    assert n.subject == f"[{ref}] {subject}" and n.template == "reporter_status"
    assert REASON in n.body
    for sensitivity in ("confidential", "restricted", None):
        contact = domain.ReporterContact("E-1", "rae@example.com", sensitivity=sensitivity)
        [hidden] = mail(envelope, update, contact)
        assert "timesheet" not in hidden.body and "is on your case page" in hidden.body


def test_in_progress_is_told_without_a_reason() -> None:
    envelope = status_changed(
        case_id=uuid4(), ref=reference(), to_status="in_progress", reason="looked at payroll"
    )
    update = domain.status_update(payload_as(envelope, CaseStatusChanged), caused_by=None)
    assert update is not None
    [n] = mail(envelope, update)
    assert "HR is working on your case" in n.subject and "payroll" not in n.body


def test_moves_the_reporter_does_not_hear_of() -> None:
    case_id, ref = uuid4(), reference()

    def update(to_status: str, from_status: str) -> domain.ReporterUpdate | None:
        envelope = status_changed(
            case_id=case_id, ref=ref, to_status=to_status, from_status=from_status
        )
        return domain.status_update(payload_as(envelope, CaseStatusChanged), caused_by=None)

    assert update(to_status="assigned", from_status="routed") is None
    assert update(to_status="routed", from_status="new") is None
    # A reopening is told from case.reopened (staff) or not at all (the reporter's reply).
    assert update(to_status="in_progress", from_status="resolved") is None
    # Routing's answer to a message: the message has its own mail, or was the reporter's.
    envelope = status_changed(case_id=case_id, ref=ref, to_status="in_progress")
    caused = domain.status_update(
        payload_as(envelope, CaseStatusChanged), caused_by="case.message_received"
    )
    assert caused is None


def test_staff_reopening_is_told_and_a_reply_reopening_is_not() -> None:
    case_id, ref = uuid4(), reference()
    staff = case_reopened(case_id=case_id, ref=ref, owner_id="A-1")
    update = domain.reopened_update(payload_as(staff, CaseReopened))
    assert update is not None
    [n] = mail(staff, update)
    assert "reopened" in n.subject
    reply = case_reopened(case_id=case_id, ref=ref, owner_id="A-1", trigger="reporter_reply")
    assert domain.reopened_update(payload_as(reply, CaseReopened)) is None


def test_reporter_text_keeps_lines_and_drops_control_characters() -> None:
    assert domain.reporter_text("a\r\nb\x07c\x1b") == "a\nbc"
    assert domain.reporter_text("   ") is None
    assert domain.reporter_text("x" * 3000, 10) == "x" * 9 + "…"
