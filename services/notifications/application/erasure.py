"""Erasure in notifications: on `privacy.data_subject_erased` the subject's copies here
are scrubbed (adapters/sql.erase_subject), and on `privacy.retention_erased` the copies
of the case whose retention came due (adapters/sql.erase_case); each in the event's
transaction (inbox)."""

from __future__ import annotations

import structlog

from services.notifications.adapters import sql
from services.notifications.domain.notices import forget_addresses
from shared.consumer import HandlerContext
from shared.events import PrivacyDataSubjectErased, PrivacyRetentionErased, payload_as
from shared.privacy.keys import subject_parts

log = structlog.get_logger()


async def on_data_subject_erased(ctx: HandlerContext) -> None:
    erased = payload_as(ctx.envelope, PrivacyDataSubjectErased)
    employee_id, email_sha256 = subject_parts(erased.subject_id)
    if employee_id is None and email_sha256 is None:
        return  # an anonymous reporter: notifications never knew who they were
    changed = await sql.erase_subject(
        ctx.conn, employee_id=employee_id, email_sha256=email_sha256, scopes=erased.scopes
    )
    # Parsed To headers kept for speed hold addresses: none outlives an erasure.
    forget_addresses()
    log.info("data subject erased", rows=changed)


async def on_retention_erased(ctx: HandlerContext) -> None:
    """Routing carried out a case's retention: scrub that case's copies here."""
    erased = payload_as(ctx.envelope, PrivacyRetentionErased)
    changed = await sql.erase_case(ctx.conn, erased.case_id)
    forget_addresses()
    log.info("case erased after retention", rule=erased.rule, rows=changed)
