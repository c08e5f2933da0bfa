"""Task mails: the assignee on assignment, reminder and overdue; the escalation target on
overdue. Reference, title, due time and link; never the task's description or case content."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from services.notifications.application.handlers import Notifier
from services.notifications.domain import notices as domain
from services.notifications.domain import task_notices
from services.notifications.entrypoints.subscriptions import SUBSCRIPTIONS
from services.notifications.tests.factories import DUE, TIMERS, reference, staff
from shared.envelope import Actor
from shared.events import (
    TaskCreated,
    TaskDueSoon,
    TaskOverdue,
    TaskReassigned,
    make_event,
    payload_as,
)

CONFIG = domain.MailConfig(
    portal_base_url="https://hr.example.org/", mail_from="HR Case Desk <hr-desk@hr.example.org>"
)
TEMPLATES = domain.load_templates()
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
ASSIGNEE = staff("Tom Becker")
LEAD = staff("Priya Shah")


def _text(n: domain.Notification) -> str:
    raw = domain.build_email(n, mail_from=CONFIG.mail_from, date=NOW).as_bytes()
    return raw.decode("utf-8") + n.subject + n.body


def test_the_assignee_hears_of_a_new_task_and_of_one_handed_over() -> None:
    case_id, ref = uuid4(), reference()
    created = make_event(
        TaskCreated(
            reference=ref,
            task_id=uuid4(),
            title="Ask payroll\r\nBcc: x@example.com for the export",
            assignee=ASSIGNEE,
            due_at=DUE,
        ),
        producer="routing",
        actor=Actor(type="service", id="routing"),
        case_id=case_id,
    )
    [n] = task_notices.for_task_assigned(
        created, payload_as(created, TaskCreated), templates=TEMPLATES, config=CONFIG
    )
    assert n.recipient_email == str(ASSIGNEE.email) and n.audience == "task_assignee"
    assert n.subject == f"[{ref}] Task assigned to you"
    # The staff-written title is one line in the body (no header injection), with the link.
    assert "Task:                Ask payroll Bcc: x@example.com for the export" in n.body
    assert f"https://hr.example.org/portal/cases/{case_id}" in n.body
    assert "Bcc" not in domain.build_email(n, mail_from=CONFIG.mail_from, date=NOW)
    moved = make_event(
        TaskReassigned(
            reference=ref,
            task_id=uuid4(),
            title="Ask payroll",
            assignee=ASSIGNEE,
            previous_assignee_id="A-1",
            due_at=DUE,
            reason="holiday cover",
        ),
        producer="routing",
        actor=Actor(type="service", id="routing"),
        case_id=case_id,
    )
    [handed] = task_notices.for_task_assigned(
        moved, payload_as(moved, TaskReassigned), templates=TEMPLATES, config=CONFIG
    )
    assert handed.subject == f"[{ref}] Task handed over to you"
    assert "holiday cover" not in _text(handed)


def test_overdue_tells_the_assignee_and_the_escalation_target_once_each() -> None:
    case_id, ref = uuid4(), reference()
    overdue = make_event(
        TaskOverdue(
            reference=ref,
            task_id=uuid4(),
            title="Collect statements",
            assignee=ASSIGNEE,
            due_at=DUE,
            escalated_to=LEAD,
            escalation_level=1,
        ),
        producer="routing",
        actor=TIMERS,
        case_id=case_id,
    )
    notices = task_notices.for_task_overdue(
        overdue, payload_as(overdue, TaskOverdue), templates=TEMPLATES, config=CONFIG
    )
    assert [(n.recipient_id, n.subject) for n in notices] == [
        (ASSIGNEE.id, f"[{ref}] Task overdue"),
        (LEAD.id, f"[{ref}] Overdue task escalated to you"),
    ]
    assert len({n.notification_id for n in notices}) == 2
    assert "Held by:             Tom Becker" in notices[1].body
    assert "has been escalated" in notices[0].body
    alone = make_event(
        TaskOverdue(reference=ref, task_id=uuid4(), title="x", assignee=ASSIGNEE, due_at=DUE),
        producer="routing",
        actor=TIMERS,
        case_id=case_id,
    )
    [only] = task_notices.for_task_overdue(
        alone, payload_as(alone, TaskOverdue), templates=TEMPLATES, config=CONFIG
    )
    assert "escalated" not in only.body


def test_the_reminder_goes_to_the_assignee() -> None:
    event = make_event(
        TaskDueSoon(
            reference=reference(), task_id=uuid4(), title="Call", assignee=ASSIGNEE, due_at=DUE
        ),
        producer="routing",
        actor=TIMERS,
        case_id=uuid4(),
    )
    [n] = task_notices.for_task_due_soon(
        event, payload_as(event, TaskDueSoon), templates=TEMPLATES, config=CONFIG
    )
    assert n.recipient_id == ASSIGNEE.id and n.subject.endswith("Task due soon")
    assert domain.format_due(DUE) in n.body


def test_notifications_subscribes_to_the_task_events_it_handles() -> None:
    handled = set(
        Notifier(templates=TEMPLATES, config=CONFIG, mailer=None).handlers()  # type: ignore[arg-type]
    )
    assert {"task.created", "task.reassigned", "task.due_soon", "task.overdue"} <= handled
    assert handled == set(SUBSCRIPTIONS.binding_keys)
