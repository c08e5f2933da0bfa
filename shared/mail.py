"""Deterministic ids of notification emails: a contract between notifications and intake.

Notifications stamps each email with Message-ID `<uuid5(NS, "<event_id>/<audience>")@domain>`
so a resend after a crash carries the same id; intake derives the same ids to thread a
reporter's reply to the case the email was about.
"""

from __future__ import annotations

import uuid
from uuid import UUID

NOTIFICATION_NAMESPACE = uuid.UUID("5b7f3c2e-8d1a-5e4b-9a60-2f1c7d3e9b41")


def notification_id(source_event_id: UUID, audience: str) -> UUID:
    return uuid.uuid5(NOTIFICATION_NAMESPACE, f"{source_event_id}/{audience}")


def notification_message_id(source_event_id: UUID, audience: str, domain: str) -> str:
    return f"<{notification_id(source_event_id, audience)}@{domain}>"
