"""Erasure in routing: on `privacy.data_subject_erased` the subject's copies here are
scrubbed (adapters/erasure_sql.py), in the event's transaction (inbox)."""

from __future__ import annotations

import structlog

from services.routing.adapters import erasure_sql
from shared.consumer import HandlerContext
from shared.events import PrivacyDataSubjectErased, payload_as
from shared.privacy.keys import subject_parts

log = structlog.get_logger()


async def on_data_subject_erased(ctx: HandlerContext) -> None:
    erased = payload_as(ctx.envelope, PrivacyDataSubjectErased)
    employee_id, email_sha256 = subject_parts(erased.subject_id)
    if employee_id is None and email_sha256 is None:
        return  # an anonymous reporter: routing never knew who they were
    changed = await erasure_sql.erase_subject(
        ctx.conn, employee_id=employee_id, email_sha256=email_sha256, scopes=erased.scopes
    )
    log.info("data subject erased", rows=changed)
