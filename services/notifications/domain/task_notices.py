"""Who hears about a task on a case, and the email they get. Pure: no I/O.

The assignee is told when a task is assigned to them (task.created, task.reassigned),
before it falls due (task.due_soon) and when it is overdue (task.overdue); the escalation
target routing names on task.overdue is told too. Each mail carries the case reference,
the task's title in the body (a staff-written line, made one short line; subjects stay
short and carry no staff text), its due time and the case page link: never the task's
description or anything of the case itself.
"""

from __future__ import annotations

from typing import Final

from services.notifications.domain.notices import (
    AUDIENCE_ESCALATION,
    MailConfig,
    Notification,
    Templates,
    _case_id,
    _notification,
    _reference,
    format_due,
    policy_text,
)
from shared.envelope import Envelope
from shared.events import Person, TaskCreated, TaskDueSoon, TaskOverdue, TaskReassigned

AUDIENCE_ASSIGNEE: Final = "task_assignee"
TEMPLATE_TASK_ASSIGNED: Final = "task_assigned"
TEMPLATE_TASK_DUE_SOON: Final = "task_due_soon"
TEMPLATE_TASK_OVERDUE: Final = "task_overdue"
TEMPLATE_TASK_ESCALATED: Final = "task_escalated"
TITLE_MAX_LENGTH: Final = 120

TaskEvent = TaskCreated | TaskReassigned | TaskDueSoon | TaskOverdue


def _context(envelope: Envelope, payload: TaskEvent, config: MailConfig) -> dict[str, object]:
    return {
        "reference": _reference(payload.reference),
        "title": policy_text(payload.title, TITLE_MAX_LENGTH) or "(untitled)",
        "due_at": format_due(payload.due_at),
        "case_url": config.case_url(_case_id(envelope)),
    }


def _to(
    envelope: Envelope,
    person: Person,
    *,
    audience: str,
    template: str,
    context: dict[str, object],
    templates: Templates,
    config: MailConfig,
) -> Notification:
    return _notification(
        envelope,
        case_id=_case_id(envelope),
        audience=audience,
        template=template,
        recipient_id=person.id,
        recipient_email=str(person.email),
        context=context,
        templates=templates,
        config=config,
    )


def for_task_assigned(
    envelope: Envelope,
    payload: TaskCreated | TaskReassigned,
    *,
    templates: Templates,
    config: MailConfig,
) -> list[Notification]:
    """Tell the assignee a task on the case is theirs (new, or handed over to them)."""
    context = {
        **_context(envelope, payload, config),
        "handed_over": isinstance(payload, TaskReassigned),
    }
    return [
        _to(
            envelope,
            payload.assignee,
            audience=AUDIENCE_ASSIGNEE,
            template=TEMPLATE_TASK_ASSIGNED,
            context=context,
            templates=templates,
            config=config,
        )
    ]


def for_task_due_soon(
    envelope: Envelope, payload: TaskDueSoon, *, templates: Templates, config: MailConfig
) -> list[Notification]:
    return [
        _to(
            envelope,
            payload.assignee,
            audience=AUDIENCE_ASSIGNEE,
            template=TEMPLATE_TASK_DUE_SOON,
            context=_context(envelope, payload, config),
            templates=templates,
            config=config,
        )
    ]


def for_task_overdue(
    envelope: Envelope, payload: TaskOverdue, *, templates: Templates, config: MailConfig
) -> list[Notification]:
    """The assignee, and the escalation target routing chose (one delivery record each)."""
    context = {**_context(envelope, payload, config), "escalated": payload.escalated_to is not None}
    notices = [
        _to(
            envelope,
            payload.assignee,
            audience=AUDIENCE_ASSIGNEE,
            template=TEMPLATE_TASK_OVERDUE,
            context=context,
            templates=templates,
            config=config,
        )
    ]
    if payload.escalated_to is not None:
        notices.append(
            _to(
                envelope,
                payload.escalated_to,
                audience=AUDIENCE_ESCALATION,
                template=TEMPLATE_TASK_ESCALATED,
                context={**context, "assignee_name": payload.assignee.name},
                templates=templates,
                config=config,
            )
        )
    return notices
