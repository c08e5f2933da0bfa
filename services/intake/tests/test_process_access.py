"""Process role holders read the restricted case they work, on the real database.

A restricted harassment case owned by an HR agent: the investigator (not its owner) gets
the same answer as for a missing case until routing's case.process_role_assigned makes
them its investigator; from then on they read it, every read recorded as audit.case_viewed,
and the work queue, its counts and their case list show it. Handlers run as intake's
consumer would (one transaction each); nothing written here is ever published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest

from services.intake.adapters import work_queue as queue_sql
from services.intake.application import actions
from services.intake.application.actions import Client
from services.intake.application.cases import NewCase, open_case
from services.intake.application.handlers import HANDLERS
from services.intake.domain.refusals import Refused
from services.intake.domain.work_queue import WorkQueueQuery, viewer_of
from shared.auth import Principal
from shared.consumer import HandlerContext
from shared.envelope import Actor, utcnow
from shared.events import (
    CaseAssigned,
    CaseProcessAssigned,
    CaseProcessRoleAssigned,
    CaseRouted,
    EventPayload,
    Person,
    ProcessStage,
    Reporter,
    make_event,
)

HELEN = Principal(subject="A-3001", roles=frozenset({"investigator"}), employee_id="A-3001")
CLIENT = Client(ip="127.0.0.1", user_agent="pytest", forwarded_for=None)


@dataclass
class StubRuntime:
    """What readable_case uses of a Runtime: the pool, the schema, the relay's wake-up."""

    pool: asyncpg.Pool
    name: str = "intake"

    def wake_relay(self) -> None:
        pass


async def _apply(pool: asyncpg.Pool, case_id: UUID, payload: EventPayload) -> None:
    envelope = make_event(
        payload, producer="routing", actor=Actor(type="service", id="routing"), case_id=case_id
    )
    async with pool.acquire() as conn, conn.transaction():
        await HANDLERS[envelope.event_type](
            HandlerContext(envelope=envelope, conn=conn, service="intake", schema="intake")
        )


async def _restricted_harassment_case(pool: asyncpg.Pool) -> tuple[UUID, str]:
    async with pool.acquire() as conn, conn.transaction():
        opened = await open_case(
            conn,
            NewCase(
                channel="api",
                subject="Harassment by a colleague",
                description="Repeated unwanted comments at the team meetings.",
                reporter=Reporter(employee_id="E-1", name="Sam", email="sam@example.com"),
                actor=Actor(type="employee", id="E-1"),
            ),
        )
        await conn.execute("DELETE FROM intake.outbox WHERE event_id = $1", opened.event.event_id)
    case_id, ref = opened.case_id, opened.reference
    now = utcnow()
    await _apply(
        pool,
        case_id,
        CaseRouted(
            reference=ref, category="harassment", category_source="reporter",
            matched_terms=[], sensitivity="restricted", priority="P2", priority_reasons=[],
            first_response_due=now + timedelta(hours=8),
            resolution_due=now + timedelta(hours=80), policy_hash="test",
        ),
    )  # fmt: skip
    await _apply(
        pool,
        case_id,
        CaseAssigned(
            reference=ref, team="employee_relations", strategy="round_robin", priority="P2",
            owner=Person(id="A-1001", name="Priya Shah", email="priya.shah@example.com"),
            sensitivity="restricted", category="harassment", first_response_due=now,
        ),
    )  # fmt: skip
    return case_id, ref


async def _viewed(pool: asyncpg.Pool, case_id: UUID) -> list[str]:
    """Who intake recorded as reading the case (audit.case_viewed in its outbox)."""
    rows = await pool.fetch(
        """SELECT body::jsonb->'payload'->>'viewer' AS viewer FROM intake.outbox
           WHERE event_type = 'audit.case_viewed' AND body::jsonb->>'case_id' = $1""",
        str(case_id),
    )
    return [row["viewer"] for row in rows]


async def _queue_ids(pool: asyncpg.Pool, scope: str) -> set[UUID]:
    rows, _ = await queue_sql.fetch_page(
        pool, WorkQueueQuery(scope=scope, limit=100), viewer_of(HELEN), datetime.now(UTC)
    )
    return {row["case_id"] for row in rows}


async def test_an_investigator_reads_the_case_only_once_they_hold_the_role(
    admin_pool: asyncpg.Pool,
) -> None:
    case_id, ref = await _restricted_harassment_case(admin_pool)
    runtime = StubRuntime(admin_pool)
    try:
        with pytest.raises(Refused) as hidden:
            await actions.readable_case(runtime, HELEN, case_id, CLIENT, view="test")  # type: ignore[arg-type]
        assert hidden.value.kind == "not_found"
        assert await _viewed(admin_pool, case_id) == []
        assert case_id not in await _queue_ids(admin_pool, "all")
        assert case_id not in {row["case_id"] for row in await actions.my_cases(runtime, HELEN)}  # type: ignore[arg-type]

        # A process with its roles; another person's role gives Helen nothing.
        await _apply(
            admin_pool,
            case_id,
            CaseProcessAssigned(
                reference=ref, process="investigation", label="Investigation",
                stages=[ProcessStage(name="planning", label="Planning", target_working_days=5),
                        ProcessStage(name="closed", label="Closed")],
                endings=["withdrawn"], assigned_by="policy",
            ),
        )  # fmt: skip
        await _apply(
            admin_pool,
            case_id,
            CaseProcessRoleAssigned(
                reference=ref, process="investigation", role="appeal_hearer",
                person=Person(id="A-3003", name="Omar", email="omar@example.com"),
            ),
        )  # fmt: skip
        with pytest.raises(Refused):
            await actions.readable_case(runtime, HELEN, case_id, CLIENT, view="test")  # type: ignore[arg-type]

        await _apply(
            admin_pool,
            case_id,
            CaseProcessRoleAssigned(
                reference=ref, process="investigation", role="investigator",
                person=Person(id="A-3001", name="Helen Ward", email="helen.ward@example.com"),
            ),
        )  # fmt: skip
        row = await actions.readable_case(runtime, HELEN, case_id, CLIENT, view="test")  # type: ignore[arg-type]
        assert row["reference"] == ref
        assert row["process_role_holders"] == ["A-3001", "A-3003"]
        assert await _viewed(admin_pool, case_id) == ["A-3001"]
        # Lists, counts and "mine" show it to her now.
        assert case_id in await _queue_ids(admin_pool, "all")
        assert case_id in await _queue_ids(admin_pool, "mine")
        counts = await queue_sql.count_scopes(
            admin_pool, WorkQueueQuery(scope="all"), viewer_of(HELEN), datetime.now(UTC)
        )
        assert counts["mine"] >= 1
        assert case_id in {row["case_id"] for row in await actions.my_cases(runtime, HELEN)}  # type: ignore[arg-type]
    finally:
        # Never published: later tests' services must not see these audit events.
        await admin_pool.execute(
            "DELETE FROM intake.outbox WHERE body::jsonb->>'case_id' = $1", str(case_id)
        )
