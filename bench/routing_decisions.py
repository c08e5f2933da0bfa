"""Routing decisions/s in isolation, each against a baseline measured in the same run.

    .venv/bin/python -m bench.routing_decisions --cases 3000

1. Pure domain: classify, priority, owner choice, both SLA clocks and their timers, per
   case. Baseline: parsing the case.submitted envelope and payload (what every consumer
   pays per event anyway).
2. The real routing process (one, then two replicas) draining a pre-filled routing.events
   queue: decision, row writes, clocks, timers, inbox and three outbox events per case, in
   one transaction each. Baseline: raw aio-pika consume+ack of the same number of
   persistent messages of the same size from a pre-filled quorum queue (prefetch 64).
   The rate is taken from routing's own timestamps (first to last routed_at).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from pathlib import Path

import aio_pika
import asyncpg

from hrcase.services import QUEUES
from services.routing.domain.policy import load_policy
from services.routing.domain.sla import CLOCKS, plan_timers, start_clock
from services.routing.domain.triage import choose_owner, classify, prioritise, urgency_raises
from services.routing.tests.harness import publish, submission
from shared.envelope import Envelope
from shared.events import CaseSubmitted, payload_as
from shared.topology import declare_all
from tests.support.infra import (
    ServiceProcess,
    admin_database_url,
    delete_vhost,
    drop_database,
    free_port,
    rabbitmq_test_url,
    recreate_database,
    service_env,
)

VHOST = "hrcase_bench_routing"
TEXTS = [
    ("Payslip wrong", "My overtime is missing from my payslip and the tax code changed."),
    ("Harassment", "A colleague keeps making inappropriate comments; I feel intimidated."),
    ("Injury", "I slipped in the warehouse and was injured; hospital said fracture."),
    ("Contract", "My employer changed my contract and notice period without asking."),
    ("Question", "Where can I find the canteen menu for next week?"),
    ("Dismissal", "I was dismissed without reason, I think it is unfair dismissal."),
]


def sample_envelopes(count: int) -> list[Envelope]:
    rng = random.Random(7)
    envelopes = []
    for i in range(count):
        subject, description = TEXTS[i % len(TEXTS)]
        _, envelope = submission(
            f"{subject} {i}",
            description=description,
            urgent=rng.random() < 0.1,
            channel=rng.choice(["portal", "email", "phone", "api"]),
        )
        envelopes.append(envelope)
    return envelopes


def domain_rates(envelopes: list[Envelope]) -> tuple[float, float]:
    policy = load_policy()
    bodies = [e.to_json_bytes() for e in envelopes]
    payloads = [payload_as(e, CaseSubmitted) for e in envelopes]
    rng = random.Random(1)
    loads = {m.id: rng.randint(0, 40) for t in policy.teams.values() for m in t.members}

    started = time.perf_counter()
    for body in bodies:
        payload_as(Envelope.from_json_bytes(body), CaseSubmitted)
    baseline = len(bodies) / (time.perf_counter() - started)

    started = time.perf_counter()
    for cursor, case in enumerate(payloads):
        text = f"{case.subject}\n{case.description}"
        found = classify(policy, text=text, requested=case.category)
        raises = urgency_raises(
            policy, text=text, channel=case.channel, reporter_urgent=case.urgent
        )
        priority = prioritise(policy, category=found.category, raises=raises).priority
        team = policy.categories[found.category].team
        choose_owner(
            policy,
            team=team,
            category=found.category,
            conflicted=frozenset(),
            open_cases=loads,
            cursor=cursor,
        )
        calendar = policy.team_calendar(team)
        ladder = tuple(
            level.after_breach_hours
            for level in policy.escalation_ladders[policy.teams[team].escalation]
        )
        for name in CLOCKS:
            clock = start_clock(name, policy.sla_hours(priority, name), case.submitted_at)
            clock.due(calendar)
            plan_timers(clock, calendar, warn_at=policy.sla.warn_at, escalation_after_hours=ladder)
    decisions = len(payloads) / (time.perf_counter() - started)
    return decisions, baseline


async def raw_consume_rate(url: str, bodies: list[bytes]) -> float:
    """Consume+ack of a pre-filled durable quorum queue (prefetch 64, like routing)."""
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        name = f"bench.raw.{uuid.uuid4().hex[:8]}"
        queue = await channel.declare_queue(
            name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        for offset in range(0, len(bodies), 500):
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        routing_key=name,
                    )
                    for body in bodies[offset : offset + 500]
                )
            )
        consume_channel = await connection.channel()
        await consume_channel.set_qos(prefetch_count=64)
        consume_queue = await consume_channel.get_queue(name)
        done = asyncio.Event()
        received = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received >= len(bodies):
                done.set()

        started = time.perf_counter()
        await consume_queue.consume(on_message)
        await asyncio.wait_for(done.wait(), timeout=300)
        elapsed = time.perf_counter() - started
        await queue.delete(if_unused=False, if_empty=False)
    return len(bodies) / elapsed


async def process_rate(
    database_url: str, amqp_url: str, envelopes: list[Envelope], replicas: int, logs: Path
) -> float:
    """Routing processes draining a pre-filled queue; rate from routing's own timestamps."""
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        async with connection.channel() as channel:
            await declare_all(channel, QUEUES.values())
            for name in ("routing.events", "intake.events", "notifications.events", "audit.events"):
                await (await channel.get_queue(name)).purge()
        for offset in range(0, len(envelopes), 500):
            await publish(connection, *envelopes[offset : offset + 500])
    processes = []
    for index in range(replicas):
        port = free_port()
        env = service_env(database_url, amqp_url, LOG_LEVEL="WARNING", ROUTING_HTTP_PORT=str(port))
        processes.append(ServiceProcess("routing", env, port, logs / f"routing-{index}.log"))
    ids = [e.case_id for e in envelopes]
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        for process in processes:
            process.start(wait=False)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = await pool.fetchval(
                "SELECT count(*) FROM routing.cases WHERE case_id = ANY($1::uuid[])", ids
            )
            if done == len(ids):
                break
            await asyncio.sleep(0.2)
        first, last = await pool.fetchrow(
            "SELECT min(routed_at), max(routed_at) FROM routing.cases"
            " WHERE case_id = ANY($1::uuid[])",
            ids,
        )
    finally:
        for process in processes:
            await asyncio.to_thread(process.stop)
        await pool.close()
    return (len(ids) - 1) / (last - first).total_seconds()


async def run(cases: int) -> None:
    envelopes = sample_envelopes(cases)
    decisions, parse = domain_rates(envelopes)
    print(f"pure domain: {decisions:,.0f} routing decisions/s ({cases} cases)")
    print(f"  baseline envelope+payload parse: {parse:,.0f}/s; ratio {decisions / parse:.3f}")

    database_url = admin_database_url("bench_routing")
    await asyncio.to_thread(recreate_database, database_url)
    amqp_url = rabbitmq_test_url(VHOST)
    logs = Path("var/bench-logs")
    await asyncio.to_thread(logs.mkdir, parents=True, exist_ok=True)
    try:
        bodies = [e.to_json_bytes() for e in envelopes]
        raw = await raw_consume_rate(amqp_url, bodies)
        print(f"baseline raw aio-pika consume+ack: {raw:,.0f} msg/s ({cases} msgs)")
        for replicas, batch in ((1, envelopes), (2, sample_envelopes(cases))):
            rate = await process_rate(database_url, amqp_url, batch, replicas, logs)
            print(
                f"routing process x{replicas}: {rate:,.0f} decisions/s"
                f" (routed, clocks, timers, inbox, 3 outbox events each);"
                f" ratio to raw consume {rate / raw:.3f}"
            )
    finally:
        await asyncio.to_thread(drop_database, database_url)
        await asyncio.to_thread(delete_vhost, VHOST)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000)
    args = parser.parse_args()
    asyncio.run(run(args.cases))


if __name__ == "__main__":
    main()
