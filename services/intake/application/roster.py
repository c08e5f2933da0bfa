"""Routing's roster (teams, members, calendars) projected into intake's own tables."""

from __future__ import annotations

import structlog

from services.intake.adapters import roster
from shared.consumer import HandlerContext
from shared.events import RoutingRosterPublished, payload_as

log = structlog.get_logger(__name__)


async def on_roster_published(ctx: HandlerContext) -> None:
    """The latest roster replaces the one before; an older one arriving late is ignored."""
    published = payload_as(ctx.envelope, RoutingRosterPublished)
    stored = await roster.replace_roster(ctx.conn, published, ctx.envelope.occurred_at)
    log.info("roster received", policy_hash=published.policy_hash, stored=stored)
