"""Three replicas of routing and of intake on partitioned queues (README "Partitions by
case"): many cases, each a sequence of status requests sent through different intake
replicas one after the other (each waiting for its 202). Every case's status history, as
routing decided it and as intake's read model shows it, is the order of its requests;
none is refused as superseded; every replica consumes a share of the partitions
(partition leases). Then the routing replica holding the most partitions is killed with
-9 while requests are in flight: the others take its partitions over and nothing is lost
or applied out of order."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections import defaultdict
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractQueue

from hrcase.services import QUEUES
from tests.support.auth import auth_headers
from tests.support.bus import capture_events
from tests.support.infra import TEST_VHOST, ServiceProcess
from tests.support.system import RunningSystem, running_system

pytestmark = pytest.mark.slow

AS_SAM = auth_headers("u-sam", "employee", employee_id="E-8301")
SAM = {"employee_id": "E-8301", "name": "Sam Okoye", "email": "sam.okoye@example.com"}
AS_AGENT = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
# Each status requested once, so intake's read model (which may lag) never already shows it.
SEQUENCE = ("in_progress", "waiting_on_employee", "resolved", "closed")
REPLICAS = 3


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(
        database_url, rabbitmq_url, logs_dir / "partition-replicas", BUS_REPLICA_INDEX="0"
    ) as running:
        extra = [running.add_replica(s, i) for s in ("intake", "routing") for i in (1, 2)]
        for replica in extra:
            replica.wait_ready()
        yield running


def intake_urls(system: RunningSystem) -> list[str]:
    return [system.url("intake")] + [
        r.base_url for r in system.replicas if r.name == "intake" and _alive(r)
    ]


def _alive(process: ServiceProcess) -> bool:
    return process.proc is not None and process.proc.poll() is None


async def raise_cases(urls: list[str], count: int, label: str) -> list[str]:
    async def one(i: int) -> str:
        body = {
            "subject": f"{label} {i}: payslip is missing my overtime",
            "description": "My overtime from October is not on my November payslip.",
            "reporter": SAM,
            "category": "payroll_query",
        }
        async with httpx.AsyncClient(base_url=urls[i % len(urls)], timeout=30) as c:
            accepted = await c.post("/api/v1/cases", json=body, headers=AS_SAM)
        assert accepted.status_code == 202, accepted.text
        return str(accepted.json()["case_id"])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def until_status(urls: list[str], case_ids: list[str], status: str, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    pending = set(case_ids)
    async with httpx.AsyncClient(base_url=urls[0], timeout=30, headers=AS_AGENT) as c:
        while pending:
            for case_id in list(pending):
                view = (await c.get(f"/api/v1/cases/{case_id}")).json()
                if view.get("status") == status:
                    pending.discard(case_id)
            if not pending:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{len(pending)} case(s) never reached {status}")
            await asyncio.sleep(0.2)


async def request_in_order(urls: list[str], case_id: str, offset: int) -> None:
    """The case's requests one after the other, each through the next intake replica."""
    for step, to_status in enumerate(SEQUENCE):
        url = urls[(offset + step) % len(urls)]
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=AS_AGENT) as c:
            reply = await c.post(
                f"/api/v1/cases/{case_id}/status",
                json={"to_status": to_status, "reason": f"step {step}"},
            )
        assert reply.status_code == 202, (case_id, to_status, reply.text)


async def drained(queue: AbstractQueue, into: list[dict[str, Any]]) -> None:
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        into.append(json.loads(message.body))


def assert_histories(events: list[dict[str, Any]], case_ids: list[str]) -> None:
    """Routing's decisions per case, in publish order: exactly the requests' order, and
    no request refused (superseded or otherwise)."""
    moves: dict[str, list[str]] = defaultdict(list)
    refused: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    wanted = set(case_ids)
    for event in events:
        if event["case_id"] not in wanted or event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        if event["event_type"] == "case.status_changed":
            moves[event["case_id"]].append(event["payload"]["to_status"])
        elif event["event_type"] == "case.request_refused":
            refused[event["case_id"]].append(str(event["payload"]))
    assert dict(refused) == {}
    # Triage first (routed/assigned), then exactly the requests, in their order.
    requested = len(SEQUENCE)
    wrong = {
        c: moves[c]
        for c in case_ids
        if moves[c][-requested:] != list(SEQUENCE)
        or not set(moves[c][:-requested]) <= {"routed", "assigned"}
    }
    assert wrong == {}, f"{len(wrong)} case(s) with another history, e.g. {list(wrong.items())[:3]}"


async def intake_histories(admin_pool, case_ids: list[str]) -> dict[str, str]:
    rows = await admin_pool.fetch(
        "SELECT case_id::text, status FROM intake.cases WHERE case_id = ANY($1::uuid[])",
        case_ids,
    )
    return {r["case_id"]: r["status"] for r in rows}


def active_consumers(service: str) -> dict[str, str]:
    """Partition -> the BUS_REPLICA_INDEX of the replica whose consumer is active on it,
    from rabbitmqctl (consumer -> channel -> connection -> its client properties)."""

    def rows(*args: str) -> list[list[str]]:
        out = subprocess.run(
            ["rabbitmqctl", "-q", "--no-table-headers", *args, "-p", TEST_VHOST],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [line.split("\t") for line in out.splitlines() if line.strip()]

    replica_of_connection = {}
    for pid, properties in rows("list_connections", "pid", "client_properties"):
        found = re.search(r'"connection_name","hrcase-[a-z]+ replica (\d+)"', properties)
        if found:
            replica_of_connection[pid] = found.group(1)
    connection_of_channel = {pid: conn for pid, conn in rows("list_channels", "pid", "connection")}
    prefix = f"{service}.events.p"
    active = {}
    for queue, channel, is_active in rows("list_consumers", "queue_name", "channel_pid", "active"):
        if queue.startswith(prefix) and is_active == "true":
            active[queue] = replica_of_connection.get(connection_of_channel.get(channel, ""), "?")
    return active


async def test_three_replicas_keep_every_case_in_request_order(system, amqp, admin_pool):
    urls = intake_urls(system)
    assert len(urls) == REPLICAS
    cases = 40
    async with capture_events(amqp) as capture:
        case_ids = await raise_cases(urls, cases, "Partition order")
        await until_status(urls, case_ids, "assigned", timeout=90)
        await asyncio.gather(*(request_in_order(urls, c, i) for i, c in enumerate(case_ids)))
        await until_status(urls, case_ids, "closed", timeout=120)
        await asyncio.sleep(1.0)  # a wrong late event would show up now
        events: list[dict[str, Any]] = []
        await drained(capture.queue, events)
    assert_histories(events, case_ids)
    assert set((await intake_histories(admin_pool, case_ids)).values()) == {"closed"}
    routed = await admin_pool.fetch(
        "SELECT status, count(*) FROM routing.cases WHERE case_id = ANY($1::uuid[]) GROUP BY 1",
        case_ids,
    )
    assert {r["status"]: r["count"] for r in routed} == {"closed": cases}
    # Every partition of both services has exactly one active consumer.
    for service in ("intake", "routing"):
        active = active_consumers(service)
        assert sorted(active) == sorted(QUEUES[service].queue_names), active
        # Partition leases spread them over the replicas (README "Partition leases"): all
        # three consume, 2 + 1 + 1 of the four, on any RabbitMQ version.
        assert len(set(active.values())) == REPLICAS, active
        held = [
            p.partitions_held()
            for p in [system.services[service], *system.replicas]
            if p.name == service
        ]
        assert sorted(held) == [1, 1, 2], held


async def test_killing_the_active_routing_replica_hands_its_partitions_over(
    system, amqp, admin_pool
):
    urls = intake_urls(system)
    before = active_consumers("routing")
    holder = max(set(before.values()), key=list(before.values()).count)
    routing = [system.services["routing"], *(r for r in system.replicas if r.name == "routing")]
    # The replica holding the most active partitions; the first started when the
    # broker's listing names no replica.
    victim = next(
        (p for p in routing if p.env.get("BUS_REPLICA_INDEX") == holder),
        system.services["routing"],
    )
    cases = 30
    async with capture_events(amqp) as capture:
        case_ids = await raise_cases(urls, cases, "Partition failover")
        await until_status(urls, case_ids, "assigned", timeout=90)
        requests = asyncio.gather(*(request_in_order(urls, c, i) for i, c in enumerate(case_ids)))
        await asyncio.sleep(0.3)  # requests are in flight
        await asyncio.to_thread(victim.kill9)
        await requests
        await until_status(urls, case_ids, "closed", timeout=120)
        await asyncio.sleep(1.0)
        events: list[dict[str, Any]] = []
        await drained(capture.queue, events)
    assert_histories(events, case_ids)
    after = active_consumers("routing")
    assert sorted(after) == sorted(QUEUES["routing"].queue_names), after
    killed = victim.env.get("BUS_REPLICA_INDEX")
    assert killed not in set(after.values()), (before, after)
