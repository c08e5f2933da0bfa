"""Ending a portal session: revoked in intake's table and announced on the bus, together.

The announcement (`portal.session_ended`) lets the audit service, which accepts the
portal's session cookie on its console but cannot read intake's tables, refuse the token
too. Both are written in one transaction (outbox), so a revocation is never unannounced.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from services.intake.adapters import sql
from shared.envelope import Actor, utcnow
from shared.events import PortalSessionEnded, make_event
from shared.uow import UnitOfWork

STAFF_ROLES = frozenset(
    {"hr_agent", "hr_manager", "investigator", "auditor", "admin", "privacy_officer"}
)


async def end_portal_session(
    uow: UnitOfWork,
    *,
    session_id: UUID,
    subject: str,
    roles: frozenset[str],
    reason: Literal["signed_out", "replaced", "provider_logout"],
    actor: Actor | None = None,
) -> bool:
    """Revoke `session_id` and publish `portal.session_ended`; False (and nothing
    published) if it had already ended. The actor is the person (by `roles`) unless given
    (a provider's back-channel logout is the system's doing)."""
    async with uow:
        if not await sql.revoke_portal_session(uow.conn, session_id):
            return False
        ended = PortalSessionEnded(
            session_id=session_id, subject=subject, reason=reason, ended_at=utcnow()
        )
        if actor is None:
            actor = Actor(type="agent" if roles & STAFF_ROLES else "employee", id=subject)
        await uow.emit(make_event(ended, producer="intake", actor=actor, case_id=None))
    return True
