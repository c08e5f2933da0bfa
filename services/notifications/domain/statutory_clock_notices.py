"""Who hears about a statutory clock, and the email they get. Pure: no I/O.

statutory_clock.due_soon goes to the case owner; statutory_clock.breached to the owner and
to the escalation target routing named. Each mail carries the clock's label and citation
(policy text, made one short line), its due time, the case reference and the staff case
page link: never anything of the case itself (no injury, no description, no names).
"""

from __future__ import annotations

from typing import Any, Final

from services.notifications.domain.notices import (
    AUDIENCE_ESCALATION,
    AUDIENCE_OWNER,
    Contact,
    MailConfig,
    Outcome,
    Templates,
    _case_id,
    _notification,
    _reference,
    _to_staff,
    format_due,
    policy_text,
)
from shared.envelope import Envelope
from shared.events import StatutoryClockBreached, StatutoryClockDueSoon

TEMPLATE_CLOCK_DUE_SOON: Final = "statutory_clock_due_soon"
TEMPLATE_CLOCK_BREACHED: Final = "statutory_clock_breached"
TEMPLATE_CLOCK_ESCALATED: Final = "statutory_clock_escalated"
LABEL_MAX_LENGTH: Final = 200
CITATION_MAX_LENGTH: Final = 300

ClockNotice = StatutoryClockDueSoon | StatutoryClockBreached


def clock_recipient_id(payload: ClockNotice, last_owner_id: str | None) -> str | None:
    """Routing names the owner when the timer fired; else the last owner seen."""
    return payload.owner_id or last_owner_id


def for_statutory_clock(
    envelope: Envelope,
    payload: ClockNotice,
    *,
    recipient: Contact | None,
    recipient_id: str | None,
    templates: Templates,
    config: MailConfig,
) -> list[Outcome]:
    """The owner's mail (undeliverable, recorded, when their contact is unknown) and, for a
    breach routing escalated, the escalation target's."""
    case_id = _case_id(envelope)
    breached = isinstance(payload, StatutoryClockBreached)
    escalated_to = payload.escalated_to if isinstance(payload, StatutoryClockBreached) else None
    context: dict[str, Any] = {
        "reference": _reference(payload.reference),
        "label": policy_text(payload.label, LABEL_MAX_LENGTH) or "(unnamed obligation)",
        "citation": policy_text(payload.citation, CITATION_MAX_LENGTH) or "hrcase policy",
        "due_at": format_due(payload.due_at),
        "case_url": config.case_url(case_id),
        "escalated": escalated_to is not None,
    }
    outcomes: list[Outcome] = [
        _to_staff(
            envelope,
            case_id=case_id,
            audience=AUDIENCE_OWNER,
            template=TEMPLATE_CLOCK_BREACHED if breached else TEMPLATE_CLOCK_DUE_SOON,
            recipient_id=recipient_id,
            recipient=recipient,
            context=context,
            templates=templates,
            config=config,
        )
    ]
    if escalated_to is not None:
        outcomes.append(
            _notification(
                envelope,
                case_id=case_id,
                audience=AUDIENCE_ESCALATION,
                template=TEMPLATE_CLOCK_ESCALATED,
                recipient_id=escalated_to.id,
                recipient_email=str(escalated_to.email),
                context=context,
                templates=templates,
                config=config,
            )
        )
    return outcomes
