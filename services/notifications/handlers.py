"""Event handlers: parse, ask the domain what to send, record and send, emit the outcome."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol

import structlog
from prometheus_client import Counter

from services.notifications import domain
from services.notifications.adapters import sql
from services.notifications.adapters.smtp import SendResult
from shared.consumer import Handler, HandlerContext
from shared.envelope import utcnow
from shared.errors import PermanentError
from shared.events import (
    CaseAssigned,
    CaseSubmitted,
    NotificationFailed,
    NotificationSent,
    payload_as,
)

log = structlog.get_logger(__name__)

NOTIFICATIONS = Counter(
    "hrcase_notifications_total",
    "Notifications handled, by template and outcome",
    ["template", "outcome"],
)


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> SendResult: ...


@dataclass
class Notifier:
    templates: domain.Templates
    config: domain.MailConfig
    mailer: Mailer
    clock: Callable[[], datetime] = field(default=utcnow)

    def handlers(self) -> Mapping[str, Handler]:
        return {
            CaseSubmitted.event_type: self.on_case_submitted,
            CaseAssigned.event_type: self.on_case_assigned,
        }

    async def on_case_submitted(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, CaseSubmitted)
        try:
            notifications = domain.for_case_submitted(
                ctx.envelope, payload, templates=self.templates, config=self.config
            )
        except domain.UnsafeContent as exc:
            raise PermanentError(str(exc)) from exc
        if payload.reporter is None:
            return  # anonymous: no contact to keep, nobody to write to
        await sql.upsert_contact(
            ctx.conn,
            case_id=notifications[0].case_id,
            reference=payload.reference,
            reporter=payload.reporter,
        )
        for notification in notifications:
            await self._deliver(ctx, notification)

    async def on_case_assigned(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, CaseAssigned)
        try:
            notifications = domain.for_case_assigned(
                ctx.envelope, payload, templates=self.templates, config=self.config
            )
        except domain.UnsafeContent as exc:
            raise PermanentError(str(exc)) from exc
        for notification in notifications:
            await self._deliver(ctx, notification)

    async def _deliver(self, ctx: HandlerContext, n: domain.Notification) -> None:
        status = await sql.claim_delivery(ctx.conn, n)
        if status == "sent":
            # Belt and braces behind the inbox: a recorded send is never repeated.
            log.info("notification already sent", notification_id=str(n.notification_id))
            NOTIFICATIONS.labels(n.template, "duplicate").inc()
            return
        now = self.clock()
        message = domain.build_email(n, mail_from=self.config.mail_from, date=now)
        result = await self.mailer.send(message)
        if result.ok:
            await sql.mark_sent(ctx.conn, n.notification_id, attempts=result.attempts, sent_at=now)
            await ctx.emit(
                NotificationSent(
                    notification_id=n.notification_id,
                    source_event_id=n.source_event_id,
                    channel="email",
                    template=n.template,
                    audience=n.audience,
                    recipient_id=n.recipient_id,
                    message_id=n.message_id,
                )
            )
        else:
            # A recorded outcome, not a poison message: the event is acked with it.
            error = result.error or "unknown error"
            await sql.mark_failed(
                ctx.conn, n.notification_id, attempts=result.attempts, error=error
            )
            await ctx.emit(
                NotificationFailed(
                    notification_id=n.notification_id,
                    source_event_id=n.source_event_id,
                    channel="email",
                    template=n.template,
                    audience=n.audience,
                    recipient_id=n.recipient_id,
                    attempts=result.attempts,
                    error=error,
                )
            )
        outcome = "sent" if result.ok else "failed"
        NOTIFICATIONS.labels(n.template, outcome).inc()
        log.info(
            "notification " + outcome,
            notification_id=str(n.notification_id),
            template=n.template,
            audience=n.audience,
            attempts=result.attempts,
        )
