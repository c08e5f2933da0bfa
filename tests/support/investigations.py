"""Investigation cases in the state a test needs, for tests that run intake (and routing)
as processes: routing's process decisions are published as routing would, over routing's
own broker user, from a connection of their own (no event loop is shared with the test)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import aio_pika

from shared.bus import build_message
from shared.envelope import Actor
from shared.events import (
    CaseOutcomeApproved,
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
from tests.support.auth import auth_headers
from tests.support.system import RunningSystem

STAGES = [
    ProcessStage(name="planning", label="Planning", target_working_days=5),
    ProcessStage(name="interviews", label="Interviews", target_working_days=15),
    ProcessStage(name="findings", label="Findings", target_working_days=10),
    ProcessStage(name="outcome", label="Outcome and approval", target_working_days=5),
    ProcessStage(name="appeal_window", label="Appeal window"),
    ProcessStage(name="appeal", label="Appeal", target_working_days=20),
    ProcessStage(name="closed", label="Closed"),
]
LABELS = {stage.name: stage.label for stage in STAGES}
MANAGER = Person(id="M-9002", name="Victor Almeida", email="victor.almeida@example.com")
AS_MANAGER = auth_headers("M-9002", "hr_manager", employee_id="M-9002")
AS_RESPONDENT = auth_headers("u-jordan", "employee", employee_id="E-7100")


async def _publish(rabbitmq_url: str, case_id: str, payload: EventPayload) -> None:
    settings = Settings(rabbitmq_url=rabbitmq_url)
    envelope = make_event(
        payload,
        producer="routing",
        actor=Actor(type="service", id="routing"),
        case_id=UUID(case_id),
    )
    connection = await aio_pika.connect_robust(settings.service_rabbitmq_url("routing"))
    try:
        async with connection.channel(publisher_confirms=True) as channel:
            exchange = await channel.get_exchange(EXCHANGE, ensure=False)
            await exchange.publish(
                build_message(
                    envelope.to_json_bytes(),
                    event_id=str(envelope.event_id),
                    event_type=envelope.event_type,
                    correlation_id=None,
                    user_id=settings.rabbitmq_user("routing"),
                ),
                routing_key=envelope.event_type,
                mandatory=True,
            )
    finally:
        await connection.close()


def as_routing(system: RunningSystem, case_id: str, payload: EventPayload) -> None:
    asyncio.run(_publish(system.rabbitmq_url, case_id, payload))


def until(system: RunningSystem, case_id: str, done: Any, what: str) -> dict[str, Any]:
    """Poll the staff view of the investigation until `done(view)`."""
    deadline = time.monotonic() + 30
    with system.client("intake", AS_MANAGER) as manager:
        while True:
            view = manager.get(f"/api/v1/cases/{case_id}/investigation").json()
            if done(view):
                return dict(view)
            assert time.monotonic() < deadline, (what, view)
            time.sleep(0.2)


def enter_stage(system: RunningSystem, case_id: str, reference: str, stage: str) -> None:
    as_routing(
        system,
        case_id,
        CaseStageEntered(
            reference=reference,
            process="investigation",
            stage=stage,
            label=LABELS[stage],
            direction="forward",
        ),
    )
    until(
        system,
        case_id,
        lambda v: (v.get("process") or {}).get("stage") == stage,
        f"stage {stage}",
    )


def investigation_case(
    system: RunningSystem, reporter_headers: dict[str, str], body: dict[str, Any], stage: str
) -> tuple[str, str]:
    """A case raised with `body`, assigned by routing, in the investigation at `stage`."""
    with system.client("intake", reporter_headers) as reporter:
        raised = reporter.post("/api/v1/cases", json=body)
        assert raised.status_code == 202, raised.text
    case_id, reference = raised.json()["case_id"], raised.json()["reference"]
    with system.client("intake", AS_MANAGER) as manager:
        deadline = time.monotonic() + 30
        while manager.get(f"/api/v1/cases/{case_id}").json().get("status") != "assigned":
            assert time.monotonic() < deadline, "the case assigned"
            time.sleep(0.2)
    as_routing(
        system,
        case_id,
        CaseProcessAssigned(
            reference=reference,
            process="investigation",
            label="Investigation",
            stages=STAGES,
            endings=["outcome_final", "withdrawn", "referred_on"],
            assigned_by="policy",
        ),
    )
    enter_stage(system, case_id, reference, stage)
    return case_id, reference


def allegation_body() -> dict[str, Any]:
    return {
        "allegation_type": "harassment",
        "summary": "Comments about appearance in team meetings.",
        "respondent_employee_id": "E-7100",
        "respondent_name": "Jordan Blake",
        "occurred_on": "2026-10-12",
    }


def record(system: RunningSystem, case_id: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    with system.client("intake", AS_MANAGER) as manager:
        answer = manager.post(f"/api/v1/cases/{case_id}/investigation{path}", json=body)
        assert answer.status_code in (201, 202), (path, answer.text)
        return dict(answer.json())


def investigation_fixtures(
    system: RunningSystem, reporter_headers: dict[str, str], case_body: dict[str, Any]
) -> dict[str, str]:
    """Three investigation cases of the reporter's: `investigation_case_id` (stage
    findings, one allegation), `investigation_outcome_case_id` (stage outcome, every
    allegation found, no outcome yet) and `investigation_appeal_case_id` (outcome approved,
    window open, the respondent's appeal waiting for the appeal hearer M-9002, and the
    reporter's own statement `investigation_statement_id`)."""
    found: dict[str, str] = {}
    case_id, _ = investigation_case(system, reporter_headers, case_body, "findings")
    found["investigation_case_id"] = case_id
    found["investigation_allegation_id"] = record(
        system, case_id, "/allegations", allegation_body()
    )["allegation_id"]

    case_id, reference = investigation_case(system, reporter_headers, case_body, "findings")
    found["investigation_outcome_case_id"] = case_id
    allegation = record(system, case_id, "/allegations", allegation_body())["allegation_id"]
    finding = {"allegation_id": allegation, "finding": "substantiated", "reasoning": "Agreed."}
    record(system, case_id, "/findings", finding)
    enter_stage(system, case_id, reference, "outcome")

    case_id, reference = investigation_case(system, reporter_headers, case_body, "findings")
    found["investigation_appeal_case_id"] = case_id
    allegation = record(system, case_id, "/allegations", allegation_body())["allegation_id"]
    reporter = case_body["reporter"]
    found["investigation_statement_id"] = record(
        system,
        case_id,
        "/statements",
        {"given_by_role": "complainant", "given_by_name": reporter["name"],
         "given_by_employee_id": reporter["employee_id"], "text": "What happened.",
         "allegation_ids": [allegation]},
    )["statement_id"]  # fmt: skip
    record(system, case_id, "/findings", {**finding, "allegation_id": allegation})
    enter_stage(system, case_id, reference, "outcome")
    outcome = record(
        system,
        case_id,
        "/outcome",
        {"summary": "Training.", "actions": [{"kind": "training", "description": "Training"}]},
    )["outcome_id"]
    record(system, case_id, "/outcome/approval", {})
    as_routing(
        system,
        case_id,
        CaseOutcomeApproved(
            reference=reference,
            outcome_id=UUID(outcome),
            approver=Person(id="M-9001", name="Dana Whitfield", email="dana.whitfield@example.com"),
            decided_by="M-9002",
            appeal_window_ends_at=datetime.now(UTC) + timedelta(days=14),
        ),
    )
    until(system, case_id, lambda v: v["appeal_window"]["open"], "the outcome approved")
    with system.client("intake", AS_RESPONDENT) as respondent:
        appeal = respondent.post(
            f"/api/v1/cases/{case_id}/investigation/appeal", json={"grounds": "Unfair."}
        )
        assert appeal.status_code == 201, appeal.text
    as_routing(
        system,
        case_id,
        CaseProcessRoleAssigned(
            reference=reference, process="investigation", role="appeal_hearer", person=MANAGER
        ),
    )
    until(system, case_id, lambda v: "appeal_hearer" in v["roles"], "the appeal hearer")
    return found
