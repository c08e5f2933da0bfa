"""Process event handlers (investigations, independent case management, agreements): find
each recipient's address (an employee's on file, a member of staff's from the event or as
kept from earlier events), decide the mails (domain.process_notices) and relay each
through the notifier's one delivery path: a delivery record per (event, recipient), a
notification.sent or notification.failed. A recipient nobody can be found for is a
recorded notification.failed, never a dead letter.

Redelivery sends nothing twice: the consumer's inbox drops an event already handled, and
each mail's delivery record (unique per event and audience) is claimed before sending.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import structlog

from services.notifications.adapters import sql
from services.notifications.domain import notices as domain
from services.notifications.domain import process_notices as proc
from shared.consumer import Handler, HandlerContext
from shared.errors import PermanentError
from shared.events import (
    AgreementDrafted,
    AgreementObligationDueSoon,
    AgreementObligationOverdue,
    CaseAppealWindowClosed,
    CaseFollowUpDue,
    CaseOutcomeApproved,
    CaseProcessRoleAssigned,
    CaseStageDueSoon,
    CaseStageOverdue,
    InvestigationInterviewScheduled,
    MediationGroundRulesProposed,
    MediationMeetingScheduled,
    Person,
    payload_as,
)

log = structlog.get_logger(__name__)

DeliverAll = Callable[[HandlerContext, list[domain.Outcome]], Awaitable[None]]


@dataclass
class ProcessMail:
    """The process mails; `deliver_all` is the Notifier's delivery path."""

    templates: domain.Templates
    config: domain.MailConfig
    deliver_all: DeliverAll
    clock: Callable[[], datetime]

    def handlers(self) -> Mapping[str, Handler]:
        return {
            CaseProcessRoleAssigned.event_type: self.on_role_assigned,
            InvestigationInterviewScheduled.event_type: self.on_interview_scheduled,
            CaseOutcomeApproved.event_type: self.on_outcome_approved,
            CaseAppealWindowClosed.event_type: self.on_appeal_window_closed,
            CaseStageDueSoon.event_type: self.on_stage_clock,
            CaseStageOverdue.event_type: self.on_stage_clock,
            MediationMeetingScheduled.event_type: self.on_meeting_scheduled,
            MediationGroundRulesProposed.event_type: self.on_ground_rules_proposed,
            AgreementDrafted.event_type: self.on_agreement_drafted,
            AgreementObligationDueSoon.event_type: self.on_obligation_event,
            AgreementObligationOverdue.event_type: self.on_obligation_event,
            CaseFollowUpDue.event_type: self.on_follow_up_due,
        }

    async def _learn(self, ctx: HandlerContext, *people: Person | None) -> None:
        """Keep staff contacts the event names (later events may name them by id only)."""
        for person in people:
            if person is not None:
                await sql.upsert_staff_contact(ctx.conn, person, seen_at=ctx.envelope.occurred_at)

    async def _on_file(self, ctx: HandlerContext, employee_ids: Iterable[str]) -> dict[str, str]:
        """The HR directory's current address for each employee id it knows."""
        found: dict[str, str] = {}
        for employee_id in employee_ids:
            address = await sql.address_on_file(ctx.conn, employee_id)
            if address:
                found[employee_id] = address
        return found

    async def _case_owner(
        self, ctx: HandlerContext, named: Person | None
    ) -> tuple[str | None, domain.Contact | None]:
        """The case owner: the one the event names, else the last one case.assigned named."""
        if named is not None:
            await self._learn(ctx, named)
            return named.id, domain.Contact(staff_id=named.id, email=str(named.email))
        if ctx.envelope.case_id is None:
            raise PermanentError(f"{ctx.envelope.event_type} without case_id")
        facts = await sql.case_facts(ctx.conn, ctx.envelope.case_id)
        owner_id = facts.owner_id if facts else None
        return owner_id, await sql.staff_contact(ctx.conn, owner_id)

    async def on_role_assigned(self, ctx: HandlerContext) -> None:
        """The investigator, case manager or appeal hearer now holding the role."""
        payload = payload_as(ctx.envelope, CaseProcessRoleAssigned)
        await self._learn(ctx, payload.person)
        await self.deliver_all(
            ctx,
            proc.for_process_role_assigned(
                ctx.envelope, payload, templates=self.templates, config=self.config
            ),
        )

    async def on_interview_scheduled(self, ctx: HandlerContext) -> None:
        """The interviewee's invitation, at the address on file when they are an employee."""
        payload = payload_as(ctx.envelope, InvestigationInterviewScheduled)
        employee_id = payload.interviewee.employee_id
        address = await sql.address_on_file(ctx.conn, employee_id) if employee_id else None
        await self.deliver_all(
            ctx,
            proc.for_interview_scheduled(
                ctx.envelope,
                payload,
                address_on_file=address,
                templates=self.templates,
                config=self.config,
                now=self.clock(),
            ),
        )

    async def on_outcome_approved(self, ctx: HandlerContext) -> None:
        """The complainant (the reporter on file) and each respondent, separately."""
        payload = payload_as(ctx.envelope, CaseOutcomeApproved)
        if ctx.envelope.case_id is None:
            raise PermanentError(f"{ctx.envelope.event_type} without case_id")
        complainant = await sql.reporter_contact(ctx.conn, ctx.envelope.case_id)
        if complainant is None:
            log.info("outcome approved: no complainant on file (anonymous report)")
        await self.deliver_all(
            ctx,
            proc.for_outcome_approved(
                ctx.envelope,
                payload,
                complainant=complainant,
                complainant_name=await sql.reporter_name(ctx.conn, ctx.envelope.case_id),
                respondents_on_file=await self._on_file(ctx, (p.id for p in payload.respondents)),
                templates=self.templates,
                config=self.config,
            ),
        )

    async def on_appeal_window_closed(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, CaseAppealWindowClosed)
        owner_id, owner = await self._case_owner(ctx, None)
        await self.deliver_all(
            ctx,
            proc.for_appeal_window_closed(
                ctx.envelope,
                payload,
                owner_id=owner_id,
                owner=owner,
                templates=self.templates,
                config=self.config,
            ),
        )

    async def on_stage_clock(self, ctx: HandlerContext) -> None:
        """case.stage_due_soon: the owner; case.stage_overdue: the owner and escalated_to."""
        payload: CaseStageDueSoon | CaseStageOverdue
        if ctx.envelope.event_type == CaseStageDueSoon.event_type:
            payload = payload_as(ctx.envelope, CaseStageDueSoon)
        else:
            payload = payload_as(ctx.envelope, CaseStageOverdue)
            await self._learn(ctx, payload.escalated_to)
        owner_id, owner = await self._case_owner(ctx, payload.owner)
        await self.deliver_all(
            ctx,
            proc.for_stage_clock(
                ctx.envelope,
                payload,
                owner_id=owner_id,
                owner=owner,
                templates=self.templates,
                config=self.config,
            ),
        )

    async def on_meeting_scheduled(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, MediationMeetingScheduled)
        await self._learn(ctx, payload.case_manager)
        await self.deliver_all(
            ctx,
            proc.for_meeting_scheduled(
                ctx.envelope,
                payload,
                on_file=await self._on_file(ctx, (p.employee_id for p in payload.parties)),
                templates=self.templates,
                config=self.config,
                now=self.clock(),
            ),
        )

    async def on_ground_rules_proposed(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, MediationGroundRulesProposed)
        await self.deliver_all(
            ctx,
            proc.for_ground_rules_proposed(
                ctx.envelope,
                payload,
                on_file=await self._on_file(ctx, (p.employee_id for p in payload.parties)),
                templates=self.templates,
                config=self.config,
            ),
        )

    async def on_agreement_drafted(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, AgreementDrafted)
        await self.deliver_all(
            ctx,
            proc.for_agreement_drafted(
                ctx.envelope,
                payload,
                on_file=await self._on_file(ctx, (p.employee_id for p in payload.parties)),
                templates=self.templates,
                config=self.config,
            ),
        )

    async def on_obligation_event(self, ctx: HandlerContext) -> None:
        """The owing party and the case manager; when overdue, also escalated_to."""
        payload: AgreementObligationDueSoon | AgreementObligationOverdue
        if ctx.envelope.event_type == AgreementObligationDueSoon.event_type:
            payload = payload_as(ctx.envelope, AgreementObligationDueSoon)
        else:
            payload = payload_as(ctx.envelope, AgreementObligationOverdue)
            await self._learn(ctx, payload.escalated_to)
        await self._learn(ctx, payload.case_manager)
        owner_on_file = (
            await sql.address_on_file(ctx.conn, payload.owner.id) if payload.owner else None
        )
        await self.deliver_all(
            ctx,
            proc.for_obligation_event(
                ctx.envelope,
                payload,
                owner_on_file=owner_on_file,
                templates=self.templates,
                config=self.config,
            ),
        )

    async def on_follow_up_due(self, ctx: HandlerContext) -> None:
        payload = payload_as(ctx.envelope, CaseFollowUpDue)
        await self._learn(ctx, payload.case_manager)
        await self.deliver_all(
            ctx,
            proc.for_follow_up_due(
                ctx.envelope, payload, templates=self.templates, config=self.config
            ),
        )
