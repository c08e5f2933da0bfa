"""The notifications schema: reporter and staff contacts, case owners, delivery records.

Every function runs on the caller's connection, inside the event's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg

from services.notifications.domain.conference_notices import ActionFacts
from services.notifications.domain.notices import (
    CaseFacts,
    Contact,
    Notification,
    ReporterContact,
    Undeliverable,
)
from shared.events import Person, Reporter
from shared.privacy.fields import ERASED

DeliveryStatus = Literal["pending", "sent", "failed"]


async def keep_reporter(
    conn: asyncpg.Connection, *, case_id: UUID, reference: str, reporter: Reporter
) -> str | None:
    """Remember how to reach the reporter (later events name the case, not the person) and
    return the directory's current address for their employee id (`address_on_file`);
    one round trip. The two touch different tables, so the read is what a separate
    `address_on_file` after the write would return."""
    value = await conn.fetchval(
        """WITH kept AS (
               INSERT INTO notifications.case_contacts
                   (case_id, reference, reporter_employee_id, reporter_name, reporter_email)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (case_id) DO UPDATE SET
                   reference = EXCLUDED.reference,
                   reporter_employee_id = EXCLUDED.reporter_employee_id,
                   reporter_name = EXCLUDED.reporter_name,
                   reporter_email = EXCLUDED.reporter_email,
                   updated_at = now()
               WHERE notifications.case_contacts.erased_at IS NULL)
           SELECT email FROM notifications.employee_addresses WHERE employee_id = $3""",
        case_id,
        reference,
        reporter.employee_id,
        reporter.name,
        str(reporter.email),
    )
    return str(value) if value is not None else None


async def acknowledgements_sent_since(
    conn: asyncpg.Connection, email: str, *, hours: int, excluding: UUID
) -> int:
    """Acknowledgements (case_received to the reporter) sent to `email` in the last `hours`.

    Serialised per address (transaction-scoped advisory lock), so two replicas handling two
    cases of one sender cannot both slip under the limit.
    """
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "ack:" + email.lower()
    )
    count: int = await conn.fetchval(
        """SELECT count(*) FROM notifications.deliveries d
             JOIN notifications.case_contacts c USING (case_id)
             LEFT JOIN notifications.employee_addresses e
               ON e.employee_id = c.reporter_employee_id
            WHERE lower(COALESCE(e.email, c.reporter_email)) = lower($1)
              AND d.audience = 'reporter' AND d.template = 'case_received'
              AND d.status = 'sent' AND d.notification_id <> $3
              AND d.created_at > now() - make_interval(hours => $2)""",
        email,
        hours,
        excluding,
    )
    return count


async def claim_delivery(
    conn: asyncpg.Connection, notification: Notification | Undeliverable
) -> DeliveryStatus:
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


# A member of staff's contact ($1 id, $2 name, $3 email, $4 seen_at); an older event never
# overwrites a newer one. Alone (upsert_staff_contact) or as a CTE (record_assignment).
_UPSERT_STAFF_CONTACT = """INSERT INTO notifications.staff_contacts (staff_id, name, email, seen_at)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (staff_id) DO UPDATE SET
               name = EXCLUDED.name,
               email = EXCLUDED.email,
               seen_at = EXCLUDED.seen_at,
               updated_at = now()
           WHERE notifications.staff_contacts.seen_at <= EXCLUDED.seen_at"""


async def upsert_staff_contact(
    conn: asyncpg.Connection, person: Person, *, seen_at: datetime
) -> None:
    """Remember how to reach a member of staff; an older event never overwrites a newer one."""
    await conn.execute(
        _UPSERT_STAFF_CONTACT,
        person.id,
        person.name,
        str(person.email),
        seen_at,
    )


async def staff_contact(conn: asyncpg.Connection, staff_id: str | None) -> Contact | None:
    if staff_id is None:
        return None
    row = await conn.fetchrow(
        "SELECT staff_id, email FROM notifications.staff_contacts WHERE staff_id = $1", staff_id
    )
    return Contact(staff_id=row["staff_id"], email=row["email"]) if row else None


async def record_assignment(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    reference: str,
    owner: Person,
    priority: str,
    assigned_at: datetime,
    previous_owner_id: str | None,
) -> Contact | None:
    """From case.assigned, in one round trip: learn the owner's contact and record the
    case's owner (neither overwrites what a later event recorded; see
    `upsert_staff_contact`), and return the previous owner's contact (None: none named,
    or none known). The read sees the contacts as they were before this statement, which
    differs from reading after `upsert_staff_contact` only when the previous owner is the
    new one, and then nobody is told of a reassignment."""
    row = await conn.fetchrow(
        f"""WITH learned AS ({_UPSERT_STAFF_CONTACT}),
           owned AS (
               INSERT INTO notifications.case_owners
                   (case_id, reference, owner_id, priority, assigned_at)
               VALUES ($5, $6, $1, $7, $4)
               ON CONFLICT (case_id) DO UPDATE SET
                   reference = EXCLUDED.reference,
                   owner_id = EXCLUDED.owner_id,
                   priority = EXCLUDED.priority,
                   assigned_at = EXCLUDED.assigned_at,
                   updated_at = now()
               WHERE notifications.case_owners.assigned_at <= EXCLUDED.assigned_at)
           SELECT staff_id, email FROM notifications.staff_contacts WHERE staff_id = $8""",
        owner.id,
        owner.name,
        str(owner.email),
        assigned_at,
        case_id,
        reference,
        priority,
        previous_owner_id,
    )
    return Contact(staff_id=row["staff_id"], email=row["email"]) if row else None


async def case_facts(conn: asyncpg.Connection, case_id: UUID) -> CaseFacts | None:
    row = await conn.fetchrow(
        "SELECT owner_id, priority FROM notifications.case_owners WHERE case_id = $1", case_id
    )
    return CaseFacts(owner_id=row["owner_id"], priority=row["priority"]) if row else None


async def set_case_sensitivity(
    conn: asyncpg.Connection, *, case_id: UUID, sensitivity: str, routed_at: datetime
) -> None:
    """Record routing's classification from case.routed, unless a later one is already in."""
    await conn.execute(
        """INSERT INTO notifications.case_sensitivity (case_id, sensitivity, routed_at)
           VALUES ($1, $2, $3)
           ON CONFLICT (case_id) DO UPDATE SET
               sensitivity = EXCLUDED.sensitivity,
               routed_at = EXCLUDED.routed_at,
               updated_at = now()
           WHERE notifications.case_sensitivity.routed_at <= EXCLUDED.routed_at""",
        case_id,
        sensitivity,
        routed_at,
    )


async def reporter_contact(conn: asyncpg.Connection, case_id: UUID) -> ReporterContact | None:
    """The reporter of the case (kept from its case.submitted) at the address on file: the
    directory's current one for their employee id, else the one captured at submission;
    with the case's sensitivity. None for an anonymous report, an unidentified caller or
    an erased reporter (privacy.data_subject_erased)."""
    row = await conn.fetchrow(
        """SELECT c.reporter_employee_id, COALESCE(e.email, c.reporter_email) AS email,
                  s.sensitivity
             FROM notifications.case_contacts c
             LEFT JOIN notifications.case_sensitivity s USING (case_id)
             LEFT JOIN notifications.employee_addresses e
               ON e.employee_id = c.reporter_employee_id
            WHERE c.case_id = $1 AND c.erased_at IS NULL""",
        case_id,
    )
    if row is None:
        return None
    return ReporterContact(
        employee_id=row["reporter_employee_id"],
        email=row["email"],
        sensitivity=row["sensitivity"],
    )


async def reporter_name(conn: asyncpg.Connection, case_id: UUID) -> str | None:
    """The reporter's name as kept from the case's case.submitted (None: anonymous)."""
    value = await conn.fetchval(
        "SELECT reporter_name FROM notifications.case_contacts"
        " WHERE case_id = $1 AND erased_at IS NULL",
        case_id,
    )
    return str(value) if value is not None else None


async def upsert_employee_address(
    conn: asyncpg.Connection,
    *,
    employee_id: str,
    email: str | None,
    active: bool,
    at: datetime,
) -> None:
    """Keep an employee's address from the directory feed; an older record (by the event's
    `at`) never overwrites a newer one, so a redelivered or late event changes nothing."""
    await conn.execute(
        """INSERT INTO notifications.employee_addresses
               (employee_id, email, active, updated_at_event)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (employee_id) DO UPDATE SET
               email = EXCLUDED.email,
               active = EXCLUDED.active,
               updated_at_event = EXCLUDED.updated_at_event,
               updated_at = now()
           WHERE notifications.employee_addresses.updated_at_event
                 <= EXCLUDED.updated_at_event""",
        employee_id,
        email,
        active,
        at,
    )


async def address_on_file(conn: asyncpg.Connection, employee_id: str) -> str | None:
    """The directory's current address for `employee_id`; None when it knows none."""
    value = await conn.fetchval(
        "SELECT email FROM notifications.employee_addresses WHERE employee_id = $1",
        employee_id,
    )
    return str(value) if value is not None else None


async def consumed_event_type(conn: asyncpg.Connection, event_id: UUID | None) -> str | None:
    """The type of an event this service consumed (its inbox row), else None."""
    if event_id is None:
        return None
    value = await conn.fetchval(
        "SELECT event_type FROM notifications.inbox WHERE event_id = $1", event_id
    )
    return str(value) if value is not None else None


async def upsert_conference_action(
    conn: asyncpg.Connection, case_id: UUID, action: ActionFacts, *, recorded_at: datetime
) -> None:
    """Keep an agreed action's owner and conference date (conference.summary_recorded);
    an older summary never overwrites a newer one."""
    await conn.execute(
        """INSERT INTO notifications.conference_actions
               (action_id, conference_id, case_id, owner_participant_id, conference_at,
                time_zone, recorded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (action_id) DO UPDATE SET
               conference_id = EXCLUDED.conference_id,
               owner_participant_id = EXCLUDED.owner_participant_id,
               conference_at = EXCLUDED.conference_at,
               time_zone = EXCLUDED.time_zone,
               recorded_at = EXCLUDED.recorded_at,
               updated_at = now()
           WHERE notifications.conference_actions.recorded_at <= EXCLUDED.recorded_at""",
        action.action_id,
        action.conference_id,
        case_id,
        action.owner_participant_id,
        action.conference_at,
        action.time_zone,
        recorded_at,
    )


async def conference_action(conn: asyncpg.Connection, action_id: UUID) -> ActionFacts | None:
    row = await conn.fetchrow(
        """SELECT action_id, conference_id, owner_participant_id, conference_at, time_zone
             FROM notifications.conference_actions WHERE action_id = $1""",
        action_id,
    )
    if row is None:
        return None
    return ActionFacts(
        action_id=row["action_id"],
        conference_id=row["conference_id"],
        owner_participant_id=row["owner_participant_id"],
        conference_at=row["conference_at"],
        time_zone=row["time_zone"],
    )


_EMAIL_DIGEST = "encode(sha256(convert_to(lower(trim({})), 'UTF8')), 'hex')"


async def erase_subject(
    conn: asyncpg.Connection,
    *,
    employee_id: str | None,
    email_sha256: str | None,
    scopes: list[str] | None,
) -> dict[str, int]:
    """Scrub a data subject from notifications' copies (privacy.data_subject_erased):
    their reporter contacts in `scopes` (case ids as str; None = every case) lose who they
    were (NULL, `erased_at` set), failed deliveries to them lose the server's error text
    (it may quote the address) and, when data outside any case is erased (`"-"` or None),
    their address on file and their staff contact go. Delivery records otherwise hold ids,
    template and status only. Returns rows changed per table."""
    outside_cases = scopes is None or "-" in scopes
    changed: dict[str, int] = {}
    reporter_digest, address_digest = (_EMAIL_DIGEST.format(c) for c in ("reporter_email", "email"))
    result = await conn.execute(
        f"""UPDATE notifications.case_contacts
               SET reporter_employee_id = NULL, reporter_name = NULL, reporter_email = NULL,
                   erased_at = now(), updated_at = now()
             WHERE erased_at IS NULL
               AND (reporter_employee_id = $1
                    OR {reporter_digest} = $2)
               AND ($3::text[] IS NULL OR case_id::text = ANY($3::text[]))""",
        employee_id,
        email_sha256,
        scopes,
    )
    changed["case_contacts"] = int(result.split()[-1])
    # A failed delivery's error is the mail server's answer, which may quote the address.
    result = await conn.execute(
        """UPDATE notifications.deliveries SET last_error = $3
            WHERE recipient_id = $1 AND last_error IS NOT NULL AND last_error <> $3
              AND ($2::text[] IS NULL OR case_id::text = ANY($2::text[]))""",
        employee_id,
        scopes,
        ERASED,
    )
    changed["deliveries"] = int(result.split()[-1])
    if outside_cases:
        result = await conn.execute(
            f"""UPDATE notifications.employee_addresses SET email = NULL, updated_at = now()
                 WHERE email IS NOT NULL AND (employee_id = $1
                       OR {address_digest} = $2)""",
            employee_id,
            email_sha256,
        )
        changed["employee_addresses"] = int(result.split()[-1])
        result = await conn.execute(
            f"""DELETE FROM notifications.staff_contacts
                 WHERE staff_id = $1 OR {address_digest} = $2""",
            employee_id,
            email_sha256,
        )
        changed["staff_contacts"] = int(result.split()[-1])
    return changed


async def erase_case(conn: asyncpg.Connection, case_id: UUID) -> dict[str, int]:
    """Scrub one case's personal data from notifications' copies
    (privacy.retention_erased): its reporter contact loses who they were (as
    `erase_subject` does for one person: NULL, `erased_at` set; the reference stays) and
    failed deliveries about it lose the server's error text. The owner, sensitivity,
    agreed actions' dates and delivery records (ids, template, status, times) stay: they
    name nobody but staff. Idempotent; returns rows changed per table."""
    changed: dict[str, int] = {}
    result = await conn.execute(
        """UPDATE notifications.case_contacts
               SET reporter_employee_id = NULL, reporter_name = NULL, reporter_email = NULL,
                   erased_at = now(), updated_at = now()
             WHERE case_id = $1 AND erased_at IS NULL""",
        case_id,
    )
    changed["case_contacts"] = int(result.split()[-1])
    result = await conn.execute(
        """UPDATE notifications.deliveries SET last_error = $2
            WHERE case_id = $1 AND last_error IS NOT NULL AND last_error <> $2""",
        case_id,
        ERASED,
    )
    changed["deliveries"] = int(result.split()[-1])
    return changed
