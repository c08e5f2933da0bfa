"""The exchange/queue topology, declared once (ARCHITECTURE.md, 'Topology').

hr.events (topic) --routing key = event_type--> <service>.events (quorum)
<service>.events --after the delivery limit, or a reasoned reject--> hr.dlx --> <service>.events.dlq

A partitioned service (README "Partitions by case") has N queues instead of one:
hr.events --its binding keys--> hr.events.<service> (headers, internal)
  --header hrcase-slot = s--> <service>.events.p<s % N> (quorum, single active consumer)
  --no/unknown slot (alternate exchange)--> hr.events.<service>.unslotted (fanout) --> .p0
Publishers stamp `hrcase-slot` = a stable hash of the case id (event id without a case)
modulo SLOTS, so one case's events always land in one partition, in publish order.

The mechanism only: which event types a service consumes is declared by the service
(services/<name>/entrypoints/subscriptions.py, a ServiceQueue) and passed in; the ops CLI
collects every declaration in hrcase.services.QUEUES. PUBLISHES stays here: every
consumer checks every producer against it at run time (README "Broker users").
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

EXCHANGE = "hr.events"
DEAD_LETTER_EXCHANGE = "hr.dlx"
# RabbitMQ's own backstop: a message that crashes its consumer this many times is
# dead-lettered by the broker. Handler failures are dead-lettered earlier by the consumer
# itself (shared.consumer) so the reason travels in the headers.
BROKER_DELIVERY_LIMIT = 10
# Routing slots of a partitioned queue: fixed, so a case's slot never changes; partition p
# of N takes the slots s with s % N == p. N (BUS_PARTITIONS) is therefore at most SLOTS.
SLOTS = 64
SLOT_HEADER = "hrcase-slot"
# Small: every partition is a quorum queue (a Raft group on every broker node) and the
# number of replicas that can be active at once; 4 covers the replica counts deploy/ scales
# routing to. A service may take more (<SERVICE>_BUS_PARTITIONS, README "Runbook").
DEFAULT_PARTITIONS = 4


def slot_of(key: str) -> int:
    """The routing slot (0..SLOTS-1) of a case id or event id: BLAKE2b of its canonical
    text, so every process and language agrees (never Python's salted hash())."""
    digest = hashlib.blake2b(key.strip().lower().encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % SLOTS


def slot_of_body(body: bytes) -> int | None:
    """The slot of an envelope's JSON body (its case_id, else its event_id); None when the
    body names neither (the event then goes to partition 0, the unslotted fallback)."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    key = document.get("case_id") or document.get("event_id")
    return slot_of(key) if isinstance(key, str) and key else None


def slot_headers(body: bytes) -> dict[str, Any]:
    """The `hrcase-slot` header for an envelope body (a string: headers exchanges compare
    values and their AMQP types, and a string is the same type from every client)."""
    slot = slot_of_body(body)
    return {} if slot is None else {SLOT_HEADER: str(slot)}


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
    # Partitioned by case: `partitions` queues `<service>.events.p<n>`, each with a single
    # active consumer, instead of one `<service>.events`. The count is configuration
    # (Settings.bus_partitions_for, applied with `with_partitions`).
    partitioned: bool = False
    partitions: int = DEFAULT_PARTITIONS

    def __post_init__(self) -> None:
        if not 1 <= self.partitions <= SLOTS:
            raise ValueError(f"{self.service}: {self.partitions} partitions; between 1 and {SLOTS}")

    @property
    def name(self) -> str:
        """`<service>.events`: the queue, or the partitions' common prefix; the routing key
        of its dead letters on hr.dlx either way."""
        return f"{self.service}.events"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dlq"

    @property
    def queue_names(self) -> tuple[str, ...]:
        """The queues the service consumes: its partitions, or the one queue."""
        if not self.partitioned:
            return (self.name,)
        return tuple(self.partition_name(p) for p in range(self.partitions))

    def partition_name(self, partition: int) -> str:
        return f"{self.name}.p{partition}"

    @property
    def exchange(self) -> str:
        """The partitioned service's headers exchange (bound to hr.events by its keys)."""
        return f"{EXCHANGE}.{self.service}"

    @property
    def fallback_exchange(self) -> str:
        """Where events without a valid slot go (the alternate exchange): partition 0."""
        return f"{self.exchange}.unslotted"

    def slots(self, partition: int) -> tuple[int, ...]:
        """The routing slots partition `partition` takes."""
        return tuple(s for s in range(SLOTS) if s % self.partitions == partition)

    def with_partitions(self, partitions: int) -> ServiceQueue:
        """This declaration with the configured partition count (a ValueError outside
        1..SLOTS); an unpartitioned queue is returned as it is."""
        return replace(self, partitions=partitions) if self.partitioned else self


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
    if queue.single_active_consumer or queue.partitioned:
        arguments["x-single-active-consumer"] = True
    return arguments


def slot_binding(slot: int) -> dict[str, Any]:
    """Arguments of the binding of one slot to a partition on the headers exchange."""
    return {"x-match": "all", SLOT_HEADER: str(slot)}


def partition_exchange_arguments(queue: ServiceQueue) -> dict[str, Any]:
    return {"alternate-exchange": queue.fallback_exchange}


def consumer_priority(partition: int, partitions: int, replica: int) -> int:
    """`x-priority` of a replica's consumer on one partition, 1..partitions: each replica
    ranks the partitions in a rotation starting at its own index, so replicas 0, 1, 2...
    prefer different partitions. Only a preference: brokers before 3.13 keep the first
    registered consumer active (README "Partitions by case"), and correctness never
    depends on which replica is active."""
    return partitions - (partition - replica) % partitions


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
    if spec.partitioned:
        partitions = await declare_partitions(channel, spec, events)
        return partitions[0]
    queue = await channel.declare_queue(spec.name, durable=True, arguments=queue_arguments(spec))
    for key in spec.binding_keys:
        await queue.bind(events, routing_key=key)
    return queue


async def declare_partitions(
    channel: AbstractChannel, spec: ServiceQueue, events: AbstractExchange
) -> list[AbstractQueue]:
    """Declare a partitioned service's exchanges and partitions and bind them: each
    partition to its slots, partition 0 to the fallback, the headers exchange to hr.events
    by the service's keys. Slots of the other partitions are unbound from each partition
    (left from another partition count), so a slot reaches exactly one of them.

    Partitions beyond the count are not touched here: `retire_partitions` does that."""
    fallback = await channel.declare_exchange(
        spec.fallback_exchange, aio_pika.ExchangeType.FANOUT, durable=True, internal=True
    )
    exchange = await channel.declare_exchange(
        spec.exchange,
        aio_pika.ExchangeType.HEADERS,
        durable=True,
        internal=True,
        arguments=partition_exchange_arguments(spec),
    )
    queues = [
        await channel.declare_queue(name, durable=True, arguments=queue_arguments(spec))
        for name in spec.queue_names
    ]
    await bind_partitions(spec, events, exchange, fallback, queues)
    return queues


async def bind_partitions(
    spec: ServiceQueue,
    events: AbstractExchange,
    exchange: AbstractExchange,
    fallback: AbstractExchange,
    queues: list[AbstractQueue],
) -> None:
    """The bindings of `declare_partitions` on already declared objects (aio-pika's, or
    FastStream's robust ones): binding and unbinding are idempotent."""
    for partition, queue in enumerate(queues):
        for slot in range(SLOTS):
            if slot % spec.partitions == partition:
                await queue.bind(exchange, routing_key="", arguments=slot_binding(slot))
            else:
                await queue.unbind(exchange, routing_key="", arguments=slot_binding(slot))
    await queues[0].bind(fallback, routing_key="")
    for key in spec.binding_keys:
        await exchange.bind(events, routing_key=key)


@dataclass
class Retired:
    """What `retire_partitions` did: queues deleted (empty, no consumer) and queues kept
    (unbound, so they take no more) because they still hold messages (`kept`: how many)
    or a consumer (`consumed`: how many): drain them with the old count, stop it, retry."""

    deleted: list[str]
    kept: dict[str, int]
    consumed: dict[str, int] = field(default_factory=dict)


async def retire_partitions(
    channel: AbstractChannel, spec: ServiceQueue, *, settle: float = 1.0
) -> Retired:
    """Retire a partitioned service's queues its current count no longer has: partitions
    `p<count>`..`p<SLOTS-1>` and the unpartitioned `<service>.events` of before. Each is
    unbound first; after `settle` seconds (a quorum queue's count trails its last
    publishes) one that is empty and unconsumed is deleted, any other kept (README
    "Runbook": drain and stop the service before changing the count). Quorum queues
    refuse `queue.delete` with if-empty, hence the check before. `channel` must not be a
    robust one: it reopens after probing a missing queue, and a robust channel would then
    re-apply the bindings it made."""
    done = Retired([], {})
    if not spec.partitioned:
        return done
    names = [spec.name, *(spec.partition_name(p) for p in range(spec.partitions, SLOTS))]
    present = [name for name in names if await _queue_state(channel, name) is not None]
    for name in present:
        queue = await channel.get_queue(name, ensure=False)
        if name == spec.name:
            for key in spec.binding_keys:
                await queue.unbind(EXCHANGE, routing_key=key)
            continue
        await queue.unbind(spec.fallback_exchange, routing_key="")
        for slot in range(SLOTS):
            await queue.unbind(spec.exchange, routing_key="", arguments=slot_binding(slot))
    if present:
        await asyncio.sleep(settle)
    for name in present:
        state = await _queue_state(channel, name)
        if state is None:
            continue
        waiting, consumers = state
        if waiting:
            done.kept[name] = waiting
        elif consumers:
            done.consumed[name] = consumers
        else:
            await channel.queue_delete(name)
            done.deleted.append(name)
    return done


async def _queue_state(channel: AbstractChannel, name: str) -> tuple[int, int] | None:
    """(ready messages, consumers) of a queue, None when there is none."""
    try:
        queue = await channel.declare_queue(name, passive=True)
    except aio_pika.exceptions.ChannelClosed:
        # A passive declare of a missing queue closes the channel (NOT_FOUND).
        await channel.reopen()
        return None
    result = queue.declaration_result
    return result.message_count or 0, result.consumer_count or 0


async def declare_all(
    channel: AbstractChannel, queues: Iterable[ServiceQueue], *, retire: bool = False
) -> Retired:
    """Declare every queue of `queues` (the ops CLI passes hrcase.services.QUEUES with the
    configured partition counts); with `retire`, also retire the queues a partition count
    no longer has (retire_partitions)."""
    done = Retired([], {})
    for spec in queues:
        await declare_service_queue(channel, spec)
        if retire:
            retired = await retire_partitions(channel, spec)
            done.deleted += retired.deleted
            done.kept.update(retired.kept)
            done.consumed.update(retired.consumed)
    return done
