"""The exchange/queue topology, declared once (ARCHITECTURE.md, 'Topology').

hr.events (topic) --routing key = event_type--> <service>.events (quorum)
<service>.events --after the delivery limit, or a reasoned reject--> hr.dlx --> <service>.events.dlq

The mechanism only: which event types a service consumes is declared by the service
(services/<name>/entrypoints/subscriptions.py, a ServiceQueue) and passed in; the ops CLI
collects every declaration in hrcase.services.QUEUES. PUBLISHES stays here: every
consumer checks every producer against it at run time (README "Broker users").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

EXCHANGE = "hr.events"
DEAD_LETTER_EXCHANGE = "hr.dlx"
# RabbitMQ's own backstop: a message that crashes its consumer this many times is
# dead-lettered by the broker. Handler failures are dead-lettered earlier by the consumer
# itself (shared.consumer) so the reason travels in the headers.
BROKER_DELIVERY_LIMIT = 10


@dataclass(frozen=True)
class ServiceQueue:
    """One service's subscriptions: the event types its queue is bound to (`#` = all).

    Declared by the service itself (services/<name>/entrypoints/subscriptions.py) and
    carried to the kernel by its ServiceSpec; the ops CLI collects all of them
    (hrcase.services.QUEUES). The kernel keeps no list of who consumes what.
    """

    service: str
    binding_keys: tuple[str, ...]
    # One consumer at a time (others stand by): keeps the consumer's view in publish order.
    single_active_consumer: bool = False

    @property
    def name(self) -> str:
        return f"{self.service}.events"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dlq"


class SubscriptionMismatch(RuntimeError):
    """A service's handler map and its declared subscriptions differ (raised at start-up)."""


def check_handlers(queue: ServiceQueue, handlers: Mapping[str, object]) -> None:
    """Refuse a handler map whose event types are not exactly `queue`'s binding keys.

    A handler without a binding would never be called; a binding without a handler would
    dead-letter every such event. Raises SubscriptionMismatch naming both differences.
    """
    declared, handled = set(queue.binding_keys), set(handlers)
    if declared == handled:
        return
    problems = []
    if handled - declared:
        problems.append(f"handlers without a subscription: {sorted(handled - declared)}")
    if declared - handled:
        problems.append(f"subscriptions without a handler: {sorted(declared - handled)}")
    raise SubscriptionMismatch(
        f"{queue.service}: {'; '.join(problems)}"
        f" (declare them in services/{queue.service}/entrypoints/subscriptions.py)"
    )


# Which event types each publisher may put on hr.events: the one declaration the broker
# users' topic permissions (shared.broker_access), the deployment definitions and the
# consumers' producer check derive from. A publisher is a service, or an outside feed
# with a broker user of its own and no queue ("directory": the HR system's employee feed).
PUBLISHES: dict[str, tuple[str, ...]] = {
    "intake": (
        "case.submitted",
        "case.message_received",
        "case.note_added",
        "case.status_change_requested",
        "case.recategorisation_requested",
        "case.assignment_requested",
        "audit.case_viewed",
        "case.injury_facts_recorded",
        "task.creation_requested",
        "task.completion_requested",
        "task.reassignment_requested",
        "task.cancellation_requested",
        "case.document_added",
        "portal.session_ended",
        "case.respondent_resolution_requested",
        "conference.planning_requested",
        "conference.change_requested",
        "conference.cancellation_requested",
        "conference.hold_recording_requested",
        "conference.summary_recording_requested",
        "conference.action_completion_requested",
        "conference.action_replanning_requested",
        "conference.consent_recorded",
        "conference.acknowledged",
        "conference.objection_raised",
        "statutory_clock.completion_requested",
        # privacy: legal holds (README "Retention schedule and legal holds")
        "privacy.legal_hold_placed",
        "privacy.legal_hold_released",
        # processes: requests routing decides
        "case.process_change_requested",
        "case.stage_change_requested",
        "case.process_role_assignment_requested",
        "case.conflict_declared",
        "case.outcome_approval_requested",
        # processes: facts people record
        "investigation.allegation_recorded",
        "investigation.interim_measure_recorded",
        "investigation.interview_scheduled",
        "investigation.statement_recorded",
        "investigation.statement_reviewed",
        "investigation.evidence_added",
        "investigation.finding_recorded",
        "case.outcome_decided",
        "case.appeal_lodged",
        "case.appeal_decided",
        "mediation.assessment_recorded",
        "mediation.ground_rules_proposed",
        "mediation.ground_rules_accepted",
        "mediation.meeting_scheduled",
        "mediation.meeting_held",
        "agreement.drafted",
        "agreement.accepted",
        "agreement.obligation_met",
    ),
    "routing": (
        "case.routed",
        "case.assigned",
        "case.status_changed",
        "case.request_refused",
        "case.sla_warning",
        "case.sla_breached",
        "case.escalated",
        "conference.required",
        "routing.policy_loaded",
        "case.reopened",
        "case.follow_up_case_requested",
        "case.assignment_needed",
        "case.respondents_resolved",
        "routing.roster_published",
        # privacy: a closed case's retention carried out (no legal hold covering it)
        "privacy.retention_erased",
        "task.created",
        "task.completed",
        "task.reassigned",
        "task.cancelled",
        "task.due_soon",
        "task.overdue",
        "conference.planned",
        "conference.rescheduled",
        "conference.cancelled",
        "conference.participant_invited",
        "conference.held",
        "conference.summary_recorded",
        "conference.action_due_soon",
        "conference.action_overdue",
        "conference.action_completed",
        "conference.action_replanned",
        "conference.completed",
        "statutory_clock.started",
        "statutory_clock.due_soon",
        "statutory_clock.breached",
        "statutory_clock.met",
        "case.process_assigned",
        "case.stage_entered",
        "case.stage_due_soon",
        "case.stage_overdue",
        "case.process_role_assigned",
        "case.outcome_approved",
        "case.appeal_window_closed",
        "agreement.in_force",
        "agreement.obligation_due_soon",
        "agreement.obligation_overdue",
        "case.follow_up_due",
    ),
    "notifications": (
        "notification.sent",
        "notification.failed",
        "conference.notice_sent",
        "conference.agenda_sent",
        "conference.summary_sent",
    ),
    # Audit writes its own records (audit.export_created, ...) straight into its chain.
    "audit": (),
    "directory": ("directory.employee_updated",),
}


# Data-subject rights (issue #14, README "Data-subject rights"): intake takes the requests.
PUBLISHES["intake"] = (
    *PUBLISHES["intake"],
    "privacy.erasure_requested",
    "privacy.erasure_decided",
    "privacy.data_subject_erased",
    "privacy.access_requested",
    "privacy.access_fulfilled",
    "audit.privacy_request_viewed",
)


def may_publish(publisher: str, event_type: str) -> bool:
    return event_type in PUBLISHES.get(publisher, ())


def queue_arguments(queue: ServiceQueue) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "x-queue-type": "quorum",
        "x-delivery-limit": BROKER_DELIVERY_LIMIT,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": queue.name,
        # At-least-once dead-lettering (quorum queues, RabbitMQ >= 3.10) needs reject-publish.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    if queue.single_active_consumer:
        arguments["x-single-active-consumer"] = True
    return arguments


async def declare_exchanges(channel: AbstractChannel) -> tuple[AbstractExchange, AbstractExchange]:
    events = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(
        DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
    )
    return events, dlx


async def declare_service_queue(
    channel: AbstractChannel, spec: ServiceQueue, *, exchanges: bool = True
) -> AbstractQueue:
    """Declare the exchanges, one service's queue, its bindings and its dead-letter queue.

    `exchanges=False` only checks that they exist (a service's broker user may not
    configure them; `hrcase topology` declares them). Raises aio-pika's ChannelClosed
    (NOT_FOUND / ACCESS_REFUSED) otherwise.
    """
    if exchanges:
        events, dlx = await declare_exchanges(channel)
    else:
        events = await channel.get_exchange(EXCHANGE, ensure=True)
        dlx = await channel.get_exchange(DEAD_LETTER_EXCHANGE, ensure=True)
    dlq = await channel.declare_queue(
        spec.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dlq.bind(dlx, routing_key=spec.name)
    queue = await channel.declare_queue(spec.name, durable=True, arguments=queue_arguments(spec))
    for key in spec.binding_keys:
        await queue.bind(events, routing_key=key)
    return queue


async def declare_all(channel: AbstractChannel, queues: Iterable[ServiceQueue]) -> None:
    """Declare every queue of `queues` (the ops CLI passes hrcase.services.QUEUES)."""
    for spec in queues:
        await declare_service_queue(channel, spec)
