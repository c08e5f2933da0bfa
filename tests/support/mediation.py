"""Independent case management for tests: publish, as routing would, the decisions intake
projects (routing's process logic is tested on its own), from synchronous fixtures too."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import aio_pika

from hrcase.services import QUEUES
from shared.bus import build_message
from shared.envelope import Actor
from shared.events import (
    AgreementInForce,
    AgreementObligation,
    CaseProcessAssigned,
    CaseProcessRoleAssigned,
    CaseStageEntered,
    EventPayload,
    Person,
    ProcessStage,
    make_event,
)
from shared.settings import Settings
from shared.topology import EXCHANGE
from tests.support.bus import purge

STAGES = (
    ("assessment", "Initial assessment"),
    ("ground_rules", "Ground rules"),
    ("discussions", "Facilitated discussions"),
    ("agreement", "Written agreement"),
    ("follow_up", "Follow-up"),
    ("closed", "Closed"),
)


def process_assigned(reference: str) -> CaseProcessAssigned:
    return CaseProcessAssigned(
        reference=reference,
        process="case_management",
        label="Independent case management",
        stages=[ProcessStage(name=name, label=label) for name, label in STAGES],
        endings=["resolved_by_agreement", "withdrawn", "referred_on"],
        assigned_by="staff",
        reason="Both sides agree to try independent case management",
    )


def case_manager(reference: str, person: dict[str, str]) -> CaseProcessRoleAssigned:
    return CaseProcessRoleAssigned(
        reference=reference, process="case_management", role="case_manager",
        person=Person(**person),
    )  # fmt: skip


def stage(reference: str, name: str) -> CaseStageEntered:
    return CaseStageEntered(
        reference=reference, process="case_management", stage=name,
        label=dict(STAGES)[name], direction="forward",
    )  # fmt: skip


def in_force(
    reference: str, agreement_id: str, version: int, obligations: list[dict[str, Any]]
) -> AgreementInForce:
    """Routing's agreement.in_force: each {term_id, owner_role} due in 20 days."""
    now = datetime.now(UTC)
    return AgreementInForce(
        reference=reference,
        agreement_id=UUID(agreement_id),
        version=version,
        obligations=[
            AgreementObligation(
                term_id=UUID(o["term_id"]),
                owner_role=o["owner_role"],
                due_at=now + timedelta(days=20),
                due_soon_at=now + timedelta(days=15),
            )
            for o in obligations
        ],
        follow_ups_at=[now + timedelta(days=14)],
    )


async def publish_as_routing(
    rabbitmq_url: str, case_id: str, payloads: list[EventPayload], *, purge_others: bool = False
) -> None:
    """Publish `payloads` in order as routing (its own broker user and user_id), over
    connections of this event loop only; with `purge_others`, empty the queues of
    notifications and audit afterwards (for a system started without them)."""
    settings = Settings(rabbitmq_url=rabbitmq_url)
    connection = await aio_pika.connect_robust(settings.service_rabbitmq_url("routing"))
    try:
        async with connection.channel(publisher_confirms=True) as channel:
            exchange = await channel.get_exchange(EXCHANGE, ensure=False)
            for payload in payloads:
                envelope = make_event(
                    payload, producer="routing", actor=Actor(type="service", id="routing"),
                    case_id=UUID(case_id),
                )  # fmt: skip
                message = build_message(
                    envelope.to_json_bytes(),
                    event_id=str(envelope.event_id),
                    event_type=envelope.event_type,
                    correlation_id=None,
                    user_id=settings.rabbitmq_user("routing"),
                )
                await exchange.publish(message, routing_key=envelope.event_type, mandatory=True)
    finally:
        await connection.close()
    if purge_others:
        admin = await aio_pika.connect_robust(rabbitmq_url)
        try:
            for service in ("notifications", "audit"):
                for name in QUEUES[service].queue_names:
                    await purge(admin, name)
        finally:
            await admin.close()


def publish_sync(rabbitmq_url: str, case_id: str, payloads: list[EventPayload]) -> None:
    asyncio.run(publish_as_routing(rabbitmq_url, case_id, payloads, purge_others=True))
