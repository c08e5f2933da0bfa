"""The notifications schema: reporter contacts per case and delivery records.

Every function runs on the caller's connection, inside the event's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg

from services.notifications.domain import Notification
from shared.events import Reporter

DeliveryStatus = Literal["pending", "sent", "failed"]


async def upsert_contact(
    conn: asyncpg.Connection, *, case_id: UUID, reference: str, reporter: Reporter
) -> None:
    """Remember how to reach the reporter (later events name the case, not the person)."""
    await conn.execute(
        """INSERT INTO notifications.case_contacts
               (case_id, reference, reporter_employee_id, reporter_name, reporter_email)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (case_id) DO UPDATE SET
               reference = EXCLUDED.reference,
               reporter_employee_id = EXCLUDED.reporter_employee_id,
               reporter_name = EXCLUDED.reporter_name,
               reporter_email = EXCLUDED.reporter_email,
               updated_at = now()""",
        case_id,
        reference,
        reporter.employee_id,
        reporter.name,
        str(reporter.email),
    )


async def claim_delivery(conn: asyncpg.Connection, notification: Notification) -> DeliveryStatus:
    """Create the pending record, or lock and return the existing one's status."""
    inserted = await conn.fetchval(
        """INSERT INTO notifications.deliveries
               (notification_id, source_event_id, audience, template, case_id, recipient_id,
                status, message_id)
           VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)
           ON CONFLICT DO NOTHING
           RETURNING status""",
        notification.notification_id,
        notification.source_event_id,
        notification.audience,
        notification.template,
        notification.case_id,
        notification.recipient_id,
        notification.message_id,
    )
    if inserted is not None:
        return "pending"
    status: DeliveryStatus = await conn.fetchval(
        """SELECT status FROM notifications.deliveries
           WHERE source_event_id = $1 AND audience = $2 FOR UPDATE""",
        notification.source_event_id,
        notification.audience,
    )
    return status


async def mark_sent(
    conn: asyncpg.Connection, notification_id: UUID, *, attempts: int, sent_at: datetime
) -> None:
    await conn.execute(
        """UPDATE notifications.deliveries
           SET status = 'sent', attempts = attempts + $2, sent_at = $3, last_error = NULL
           WHERE notification_id = $1""",
        notification_id,
        attempts,
        sent_at,
    )


async def mark_failed(
    conn: asyncpg.Connection, notification_id: UUID, *, attempts: int, error: str
) -> None:
    await conn.execute(
        """UPDATE notifications.deliveries
           SET status = 'failed', attempts = attempts + $2, last_error = $3
           WHERE notification_id = $1""",
        notification_id,
        attempts,
        error,
    )
