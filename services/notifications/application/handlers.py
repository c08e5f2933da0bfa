"""Event handlers: parse, ask the domain what to send, record and send, emit the outcome."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol
from uuid import UUID

import structlog
from prometheus_client import Counter

from services.notifications.adapters import sql
from services.notifications.adapters.smtp import SendResult
from services.notifications.application.conference_mail import ConferenceMail
from services.notifications.application.erasure import (
    on_data_subject_erased,
    on_retention_erased,
)
from services.notifications.application.process_mail import ProcessMail
from services.notifications.domain import notices as domain
from services.notifications.domain import statutory_clock_notices, task_notices
from services.notifications.domain.conference_notices import ConferenceLinks
from shared.consumer import Handler, HandlerContext
from shared.envelope import utcnow
from shared.errors import PermanentError
from shared.events import (
    CaseAssigned,
    CaseAssignmentNeeded,
    CaseEscalated,
    CaseMessageReceived,
    CaseNoteAdded,
    CaseReopened,
    CaseRouted,
    CaseSlaBreached,
    CaseSlaWarning,
    CaseStatusChanged,
    CaseSubmitted,
    ConferenceRequired,
    DirectoryEmployeeUpdated,
    EventPayload,
    NotificationFailed,
    NotificationSent,
    Person,
    StatutoryClockBreached,
    StatutoryClockDueSoon,
    TaskCreated,
    TaskDueSoon,
    TaskOverdue,
    TaskReassigned,
    payload_as,
)
from shared.settings import DEV_JWT_SECRET

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
    # The last mail-loop breaker: at most this many acknowledgements to one address per
    # hour (ACKNOWLEDGEMENTS_PER_ADDRESS_PER_HOUR); further ones are recorded as failed.
    acknowledgements_per_hour: int = 5
    # Participants' signed links in conference mails (AUTH_JWT_SECRET,
    # CONFERENCE_LINK_VALID_DAYS); the default is the development key.
    conference_links: ConferenceLinks = field(
        default_factory=lambda: ConferenceLinks(secret=DEV_JWT_SECRET)
    )

    def handlers(self) -> Mapping[str, Handler]:
        conferences = ConferenceMail(
            templates=self.templates,
            config=self.config,
            links=self.conference_links,
            deliver=self._deliver,
            deliver_all=self._deliver_all,
            clock=self.clock,
        )
        # Investigations, independent case management and agreements.
        processes = ProcessMail(
            templates=self.templates,
            config=self.config,
            deliver_all=self._deliver_all,
            clock=self.clock,
        )
        return {
            **conferences.handlers(),
            **processes.handlers(),
            CaseSubmitted.event_type: self.on_case_submitted,
            CaseAssigned.event_type: self.on_case_assigned,
            CaseSlaWarning.event_type: self.on_sla_event,
            CaseSlaBreached.event_type: self.on_sla_event,
            CaseEscalated.event_type: self.on_case_escalated,
            ConferenceRequired.event_type: self.on_conference_required,
            CaseReopened.event_type: self.on_case_reopened,
            CaseAssignmentNeeded.event_type: self.on_assignment_needed,
            TaskCreated.event_type: self.on_task_assigned,
            TaskReassigned.event_type: self.on_task_assigned,
            TaskDueSoon.event_type: self.on_task_due_soon,
            TaskOverdue.event_type: self.on_task_overdue,
            CaseRouted.event_type: self.on_case_routed,
            CaseMessageReceived.event_type: self.on_message_received,
            CaseNoteAdded.event_type: self.on_note_added,
            CaseStatusChanged.event_type: self.on_status_changed,
            DirectoryEmployeeUpdated.event_type: self.on_employee_updated,
            StatutoryClockDueSoon.event_type: self.on_statutory_clock,
            StatutoryClockBreached.event_type: self.on_statutory_clock,
            # Data-subject rights: scrub the erased person's copies (application/erasure.py).
            "privacy.data_subject_erased": on_data_subject_erased,
            # Retention: scrub the case's copies once routing erased it.
            "privacy.retention_erased": on_retention_erased,
        }

    async def on_case_submitted(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, CaseSubmitted)
        if payload.reporter is None:
            return  # anonymous: no contact to keep, nobody to write to
        # Keeps the contact and reads the address on file in one round trip.
        address_on_file = await sql.keep_reporter(
            ctx.conn,
            case_id=self._case_id(ctx),
            reference=payload.reference,
            reporter=payload.reporter,
        )
        notifications = domain.for_case_submitted(
            ctx.envelope,
            payload,
            templates=self.templates,
            config=self.config,
            address_on_file=address_on_file,
        )
        for notification in notifications:
            # A mail loop can only run through mail: the limit guards cases opened by email.
            suppressed = (
                await self._over_acknowledgement_limit(ctx, notification)
                if payload.channel == "email"
                else None
            )
            if suppressed is not None:
                await self._record_undeliverable(ctx, suppressed, outcome="suppressed")
            else:
                await self._deliver(ctx, notification)

    async def _over_acknowledgement_limit(
        self, ctx: HandlerContext, n: domain.Notification
    ) -> domain.Undeliverable | None:
        """An acknowledgement beyond the hourly limit for its address, as a recorded
        failure (a loop with an auto-responder that sets no marker ends here). Every
        acknowledgement sent to the address in the last hour counts, whatever its channel."""
        sent = await sql.acknowledgements_sent_since(
            ctx.conn, n.recipient_email, hours=1, excluding=n.notification_id
        )
        if sent < self.acknowledgements_per_hour:
            return None
        return domain.Undeliverable(
            notification_id=n.notification_id,
            source_event_id=n.source_event_id,
            case_id=n.case_id,
            audience=n.audience,
            template=n.template,
            recipient_id=n.recipient_id,
            message_id=n.message_id,
            reason=(
                f"suppressed: {sent} acknowledgements already sent to this address in the"
                " last hour (mail loop breaker)"
            ),
        )

    async def on_case_assigned(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, CaseAssigned)
        # Learn before deciding (later deadline events name the owner by id only), record
        # the owner and read the previous owner's contact: one round trip.
        previous = await sql.record_assignment(
            ctx.conn,
            case_id=self._case_id(ctx),
            reference=payload.reference,
            owner=payload.owner,
            priority=payload.priority,
            assigned_at=ctx.envelope.occurred_at,
            previous_owner_id=payload.previous_owner_id,
        )
        outcomes: list[domain.Outcome] = [
            *domain.for_case_assigned(
                ctx.envelope, payload, templates=self.templates, config=self.config
            ),
            *domain.for_previous_owner(
                ctx.envelope,
                payload,
                recipient=previous,
                templates=self.templates,
                config=self.config,
            ),
        ]
        await self._deliver_all(ctx, outcomes)

    async def on_sla_event(self, ctx: HandlerContext) -> None:
        """case.sla_warning and case.sla_breached: both go to the case's owner."""
        payload: CaseSlaWarning | CaseSlaBreached
        if ctx.envelope.event_type == CaseSlaWarning.event_type:
            payload = payload_as(ctx.envelope, CaseSlaWarning)
        else:
            payload = payload_as(ctx.envelope, CaseSlaBreached)
        await self._tell_staff_member(
            ctx, domain.for_sla_event, payload, lambda case: domain.sla_recipient_id(payload, case)
        )

    async def on_case_escalated(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, CaseEscalated)
        await sql.upsert_staff_contact(
            ctx.conn, payload.escalated_to, seen_at=ctx.envelope.occurred_at
        )
        case = await self._case(ctx)
        outcomes = domain.for_case_escalated(
            ctx.envelope, payload, case=case, templates=self.templates, config=self.config
        )
        await self._deliver_all(ctx, outcomes)

    async def on_conference_required(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, ConferenceRequired)
        await self._tell_staff_member(
            ctx,
            domain.for_conference_required,
            payload,
            lambda case: case.owner_id if case else None,
        )

    async def on_assignment_needed(self, ctx: HandlerContext) -> None:
        """Nobody could be assigned: each HR manager named in the event is asked to."""
        payload = payload_as(ctx.envelope, CaseAssignmentNeeded)
        for person in payload.notify:
            await sql.upsert_staff_contact(ctx.conn, person, seen_at=ctx.envelope.occurred_at)
        outcomes: list[domain.Outcome] = [
            *domain.for_assignment_needed(
                ctx.envelope, payload, templates=self.templates, config=self.config
            )
        ]
        await self._deliver_all(ctx, outcomes)

    async def on_case_reopened(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, CaseReopened)
        await self._tell_staff_member(
            ctx, domain.for_case_reopened, payload, lambda _case: payload.owner_id
        )
        await self._tell_reporter(ctx, domain.reopened_update(payload))

    # --- The reporter hears what happens (domain.for_reporter_update) ---------------------

    async def on_employee_updated(self, ctx: HandlerContext) -> None:
        """The HR directory's record of an employee: keep their current address, the one
        every later reporter mail to them goes to (sql.reporter_contact, address_on_file)."""
        payload = payload_as(ctx.envelope, DirectoryEmployeeUpdated)
        await sql.upsert_employee_address(
            ctx.conn,
            employee_id=payload.employee_id,
            email=str(payload.email) if payload.email else None,
            active=payload.active,
            at=ctx.envelope.occurred_at,
        )

    async def on_case_routed(self, ctx: HandlerContext) -> None:
        """Keep the case's sensitivity: it decides whether a reason may be mailed."""
        payload = payload_as(ctx.envelope, CaseRouted)
        await sql.set_case_sensitivity(
            ctx.conn,
            case_id=self._case_id(ctx),
            sensitivity=payload.sensitivity,
            routed_at=ctx.envelope.occurred_at,
        )

    async def on_message_received(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, CaseMessageReceived)
        await self._tell_reporter(ctx, domain.message_update(payload))

    async def on_note_added(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, CaseNoteAdded)
        await self._tell_reporter(ctx, domain.note_update(payload))

    async def on_status_changed(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, CaseStatusChanged)
        caused_by = await sql.consumed_event_type(ctx.conn, ctx.envelope.causation_id)
        await self._tell_reporter(ctx, domain.status_update(payload, caused_by=caused_by))

    async def _tell_reporter(
        self, ctx: HandlerContext, update: domain.ReporterUpdate | None
    ) -> None:
        """Mail the reporter on file about `update` (None: nothing to tell). No contact (an
        anonymous report): nothing is mailed; intake's follow-up page shows the update."""
        if update is None:
            return
        contact = await sql.reporter_contact(ctx.conn, self._case_id(ctx))
        notifications = domain.for_reporter_update(
            ctx.envelope, update, contact=contact, templates=self.templates, config=self.config
        )
        if not notifications:
            log.info("no reporter mail", kind=update.kind, has_contact=contact is not None)
        for notification in notifications:
            await self._deliver(ctx, notification)

    def _case_id(self, ctx: HandlerContext) -> UUID:
        if ctx.envelope.case_id is None:
            raise PermanentError(f"{ctx.envelope.event_type} without case_id")
        return ctx.envelope.case_id

    # --- Tasks: the events name each recipient with their work contact (as case.escalated).

    async def _learn(self, ctx: HandlerContext, *people: Person | None) -> None:
        for person in people:
            if person is not None:
                await sql.upsert_staff_contact(ctx.conn, person, seen_at=ctx.envelope.occurred_at)

    async def on_task_assigned(self, ctx: HandlerContext) -> None:
        """task.created and task.reassigned: the (new) assignee hears the task is theirs."""
        payload: TaskCreated | TaskReassigned
        if ctx.envelope.event_type == TaskCreated.event_type:
            payload = payload_as(ctx.envelope, TaskCreated)
        else:
            payload = payload_as(ctx.envelope, TaskReassigned)
        await self._learn(ctx, payload.assignee)
        outcomes = task_notices.for_task_assigned(
            ctx.envelope, payload, templates=self.templates, config=self.config
        )
        await self._deliver_all(ctx, list(outcomes))

    async def on_task_due_soon(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, TaskDueSoon)
        await self._learn(ctx, payload.assignee)
        outcomes = task_notices.for_task_due_soon(
            ctx.envelope, payload, templates=self.templates, config=self.config
        )
        await self._deliver_all(ctx, list(outcomes))

    async def on_task_overdue(self, ctx: HandlerContext) -> None:
        """The assignee and the escalation target routing named."""
        payload = payload_as(ctx.envelope, TaskOverdue)
        await self._learn(ctx, payload.assignee, payload.escalated_to)
        outcomes = task_notices.for_task_overdue(
            ctx.envelope, payload, templates=self.templates, config=self.config
        )
        await self._deliver_all(ctx, list(outcomes))

    async def on_statutory_clock(self, ctx: HandlerContext) -> None:
        """statutory_clock.due_soon: the owner; statutory_clock.breached: the owner and the
        escalation target routing named."""
        payload: statutory_clock_notices.ClockNotice
        if ctx.envelope.event_type == StatutoryClockDueSoon.event_type:
            payload = payload_as(ctx.envelope, StatutoryClockDueSoon)
        else:
            payload = payload_as(ctx.envelope, StatutoryClockBreached)
            await self._learn(ctx, payload.escalated_to)
        case = await self._case(ctx)
        owner_id = statutory_clock_notices.clock_recipient_id(
            payload, case.owner_id if case else None
        )
        outcomes = statutory_clock_notices.for_statutory_clock(
            ctx.envelope,
            payload,
            recipient=await sql.staff_contact(ctx.conn, owner_id),
            recipient_id=owner_id,
            templates=self.templates,
            config=self.config,
        )
        await self._deliver_all(ctx, outcomes)

    async def _tell_staff_member(
        self,
        ctx: HandlerContext,
        decide: Callable[..., list[domain.Outcome]],
        payload: EventPayload,
        recipient_id: Callable[[domain.CaseFacts | None], str | None],
    ) -> None:
        """One staff mail about the case: `decide` (a domain.for_* function) gets the case's
        facts and the contact of the member of staff `recipient_id` names (None: unknown)."""
        case = await self._case(ctx)
        recipient = await sql.staff_contact(ctx.conn, recipient_id(case))
        outcomes = decide(
            ctx.envelope,
            payload,
            case=case,
            recipient=recipient,
            templates=self.templates,
            config=self.config,
        )
        await self._deliver_all(ctx, outcomes)

    async def _case(self, ctx: HandlerContext) -> domain.CaseFacts | None:
        if ctx.envelope.case_id is None:
            raise PermanentError(f"{ctx.envelope.event_type} without case_id")
        return await sql.case_facts(ctx.conn, ctx.envelope.case_id)

    async def _deliver_all(self, ctx: HandlerContext, outcomes: list[domain.Outcome]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, domain.Undeliverable):
                await self._record_undeliverable(ctx, outcome)
            else:
                await self._deliver(ctx, outcome)

    async def _record_undeliverable(
        self, ctx: HandlerContext, u: domain.Undeliverable, *, outcome: str = "no_contact"
    ) -> None:
        """Nobody to write to: a failed delivery on record and an event, never a silent drop.

        Not retried: the contact can only come from a case.assigned this service never saw
        (e.g. a case assigned before contacts were kept); the record and NotificationFailed
        are what let a person follow it up.
        """
        if await sql.claim_delivery(ctx.conn, u) == "sent":
            return
        await sql.mark_failed(ctx.conn, u.notification_id, attempts=0, error=u.reason)
        await ctx.emit(
            NotificationFailed(
                notification_id=u.notification_id,
                source_event_id=u.source_event_id,
                channel="email",
                template=u.template,
                audience=u.audience,
                recipient_id=u.recipient_id,
                attempts=0,
                error=u.reason,
            )
        )
        NOTIFICATIONS.labels(u.template, outcome).inc()
        log.warning(
            "notification undeliverable",
            notification_id=str(u.notification_id),
            template=u.template,
            audience=u.audience,
            recipient_id=u.recipient_id,
            reason=u.reason,
        )

    async def _deliver(self, ctx: HandlerContext, n: domain.Notification) -> bool:
        """Send `n` once and record the outcome; True when it reached the relay now (False:
        it failed, or an earlier delivery of the same notification already sent it)."""
        status = await sql.claim_delivery(ctx.conn, n)
        if status == "sent":
            # Belt and braces behind the inbox: a recorded send is never repeated.
            log.info("notification already sent", notification_id=str(n.notification_id))
            NOTIFICATIONS.labels(n.template, "duplicate").inc()
            return False
        now = self.clock()
        try:
            message = domain.build_email(n, mail_from=self.config.mail_from, date=now)
        except domain.UnsendableAddress as exc:
            result = SendResult(ok=False, attempts=0, error=str(exc))
        else:
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
        return result.ok
