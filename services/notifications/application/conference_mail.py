"""Conference event handlers: decide the mails (domain.conference_notices), relay each
through the notifier's one delivery path (a delivery record per (event, recipient), a
notification.sent or notification.failed), and for each mail that reached the relay emit
conference.notice_sent / agenda_sent / summary_sent in the same transaction.

Redelivery sends nothing twice: the consumer's inbox drops an event already handled, and
behind it each mail's delivery record (unique per event and participant) is claimed before
sending, so a mail recorded as sent is never sent again nor re-announced.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from uuid import UUID

import structlog

from services.notifications.adapters import sql
from services.notifications.domain import conference_notices as conf
from services.notifications.domain import notices as domain
from shared.consumer import Handler, HandlerContext
from shared.errors import PermanentError
from shared.events import (
    ConferenceActionDueSoon,
    ConferenceActionOverdue,
    ConferenceAgendaSent,
    ConferenceCancelled,
    ConferenceNoticeSent,
    ConferenceParticipant,
    ConferenceParticipantInvited,
    ConferencePlanned,
    ConferenceRescheduled,
    ConferenceSummaryRecorded,
    ConferenceSummarySent,
    _ConferenceDecision,
    payload_as,
)

log = structlog.get_logger(__name__)

Decision = TypeVar("Decision", bound=_ConferenceDecision)


async def on_file(ctx: HandlerContext, payload: Decision) -> Decision:
    """The decision with each employee participant (the worker, an employer representative
    with an employee id) at the HR directory's current address for them when it knows one,
    as every mail to an employee (README "The address is the one on file"); external
    participants at the address staff gave."""
    participants: list[ConferenceParticipant] = []
    changed = False
    for person in payload.participants:
        address = (
            await sql.address_on_file(ctx.conn, person.employee_id) if person.employee_id else None
        )
        if address and address.lower() != str(person.email).lower():
            person = person.model_copy(update={"email": address})
            changed = True
        participants.append(person)
    return payload.model_copy(update={"participants": participants}) if changed else payload


Deliver = Callable[[HandlerContext, domain.Notification], Awaitable[bool]]
DeliverAll = Callable[[HandlerContext, list[domain.Outcome]], Awaitable[None]]


@dataclass
class ConferenceMail:
    """The conference mails; `deliver` / `deliver_all` are the Notifier's delivery path."""

    templates: domain.Templates
    config: domain.MailConfig
    links: conf.ConferenceLinks
    deliver: Deliver
    deliver_all: DeliverAll
    clock: Callable[[], datetime]

    def handlers(self) -> Mapping[str, Handler]:
        return {
            ConferencePlanned.event_type: self.on_planned,
            ConferenceParticipantInvited.event_type: self.on_participant_invited,
            ConferenceRescheduled.event_type: self.on_rescheduled,
            ConferenceCancelled.event_type: self.on_cancelled,
            ConferenceSummaryRecorded.event_type: self.on_summary_recorded,
            ConferenceActionDueSoon.event_type: self.on_action_event,
            ConferenceActionOverdue.event_type: self.on_action_event,
        }

    async def on_planned(self, ctx: HandlerContext) -> None:
        """The worker's notice, then the agenda to every invited participant, in that
        order (the notice reaches the relay before any agenda is sent)."""
        payload = await on_file(ctx, payload_as(ctx.envelope, ConferencePlanned))
        mails = self._mails(conf.for_conference_planned, ctx, payload)
        if not any(m.kind == "notice" for m in mails):
            log.warning(
                "conference planned without a worker", conference=str(payload.conference_id)
            )
        await self._relay(ctx, payload.reference, mails)

    async def on_participant_invited(self, ctx: HandlerContext) -> None:
        """The agenda to the participant the worker's consent let in."""
        payload = await on_file(ctx, payload_as(ctx.envelope, ConferenceParticipantInvited))
        await self._relay(
            ctx, payload.reference, self._mails(conf.for_participant_invited, ctx, payload)
        )

    async def on_rescheduled(self, ctx: HandlerContext) -> None:
        """The changed agenda to everyone invited, a cancellation to anyone taken off."""
        payload = await on_file(ctx, payload_as(ctx.envelope, ConferenceRescheduled))
        await self._relay(
            ctx, payload.reference, self._mails(conf.for_conference_rescheduled, ctx, payload)
        )

    async def on_cancelled(self, ctx: HandlerContext) -> None:
        """A cancellation (METHOD CANCEL) to everyone invited."""
        payload = await on_file(ctx, payload_as(ctx.envelope, ConferenceCancelled))
        await self._relay(
            ctx, payload.reference, self._mails(conf.for_conference_cancelled, ctx, payload)
        )

    def _mails(
        self,
        build: Callable[..., list[conf.ParticipantMail]],
        ctx: HandlerContext,
        payload: _ConferenceDecision,
    ) -> list[conf.ParticipantMail]:
        return build(
            ctx.envelope,
            payload,
            templates=self.templates,
            config=self.config,
            links=self.links,
            now=self.clock(),
        )

    async def on_summary_recorded(self, ctx: HandlerContext) -> None:
        """Keep each action's owner and the conference date, then tell everyone invited."""
        payload = await on_file(ctx, payload_as(ctx.envelope, ConferenceSummaryRecorded))
        case_id = self._case_id(ctx)
        for action in conf.action_facts(payload):
            await sql.upsert_conference_action(
                ctx.conn, case_id, action, recorded_at=ctx.envelope.occurred_at
            )
        await self._relay(
            ctx, payload.reference, self._mails(conf.for_summary_recorded, ctx, payload)
        )

    async def on_action_event(self, ctx: HandlerContext) -> None:
        """conference.action_due_soon / _overdue: the action's owner, the case owner and,
        when overdue and escalated, the escalation target."""
        payload: ConferenceActionDueSoon | ConferenceActionOverdue
        if ctx.envelope.event_type == ConferenceActionDueSoon.event_type:
            payload = payload_as(ctx.envelope, ConferenceActionDueSoon)
        else:
            payload = payload_as(ctx.envelope, ConferenceActionOverdue)
            if payload.escalated_to is not None:
                await sql.upsert_staff_contact(
                    ctx.conn, payload.escalated_to, seen_at=ctx.envelope.occurred_at
                )
        case_owner_id = payload.owner_id
        if case_owner_id is None:
            facts = await sql.case_facts(ctx.conn, self._case_id(ctx))
            case_owner_id = facts.owner_id if facts else None
        outcomes = conf.for_action_event(
            ctx.envelope,
            payload,
            action=await sql.conference_action(ctx.conn, payload.action_id),
            case_owner_id=case_owner_id,
            case_owner=await sql.staff_contact(ctx.conn, case_owner_id),
            templates=self.templates,
            config=self.config,
            links=self.links,
            now=self.clock(),
        )
        await self.deliver_all(ctx, outcomes)

    async def _relay(
        self, ctx: HandlerContext, reference: str, mails: list[conf.ParticipantMail]
    ) -> None:
        """Each mail in order; each that reached the relay is announced as its event."""
        for mail in mails:
            if await self.deliver(ctx, mail.notification):
                await ctx.emit(self._sent_event(reference, mail))

    def _sent_event(
        self, reference: str, mail: conf.ParticipantMail
    ) -> ConferenceNoticeSent | ConferenceAgendaSent | ConferenceSummarySent:
        participant = mail.participant
        notification_id = mail.notification.notification_id
        sent_at = self.clock()
        if mail.kind == "notice":
            return ConferenceNoticeSent(
                reference=reference,
                conference_id=mail.conference_id,
                participant_id=participant.participant_id,
                role=participant.role,
                notification_id=notification_id,
                sent_at=sent_at,
            )
        if mail.kind == "summary":
            if mail.link_expires_at is None:
                raise ValueError("a summary mail always carries a link")
            return ConferenceSummarySent(
                reference=reference,
                conference_id=mail.conference_id,
                participant_id=participant.participant_id,
                role=participant.role,
                notification_id=notification_id,
                sent_at=sent_at,
                link_expires_at=mail.link_expires_at,
            )
        if mail.method is None or mail.sequence is None or mail.ics_uid is None:
            raise ValueError("an agenda mail always carries its calendar invitation")
        return ConferenceAgendaSent(
            reference=reference,
            conference_id=mail.conference_id,
            participant_id=participant.participant_id,
            role=participant.role,
            notification_id=notification_id,
            sent_at=sent_at,
            ics_uid=mail.ics_uid,
            sequence=mail.sequence,
            method=mail.method,
        )

    def _case_id(self, ctx: HandlerContext) -> UUID:
        if ctx.envelope.case_id is None:
            raise PermanentError(f"{ctx.envelope.event_type} without case_id")
        return ctx.envelope.case_id
