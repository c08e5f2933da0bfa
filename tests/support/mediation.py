"""Independent case management for tests: publish, as routing would, the decisions intake
projects (routing's process logic is tested on its own), from synchronous fixtures too."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import aio_pika

from hrcase.services import QUEUES
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
from tests.support.bus import close_connections, publish_envelope, purge

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
    """Publish `payloads` in order as routing; with `purge_others`, empty the queues of
    notifications and audit afterwards (for a system started without them)."""
    connection = await aio_pika.connect_robust(rabbitmq_url)
    try:
        for payload in payloads:
            envelope = make_event(
                payload, producer="routing", actor=Actor(type="service", id="routing"),
                case_id=UUID(case_id),
            )  # fmt: skip
            await publish_envelope(connection, envelope)
        if purge_others:
            for service in ("notifications", "audit"):
                await purge(connection, QUEUES[service].name)
    finally:
        await close_connections()
        await connection.close()


def publish_sync(rabbitmq_url: str, case_id: str, payloads: list[EventPayload]) -> None:
    asyncio.run(publish_as_routing(rabbitmq_url, case_id, payloads, purge_others=True))
