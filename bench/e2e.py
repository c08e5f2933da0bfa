"""End-to-end benchmark: cases through all four services vs. raw aio-pika, one run, one report.

    make bench                                   # the default run, about 3 minutes
    .venv/bin/python -m bench.e2e --quick        # a shorter run (about 1.5 minutes)
    .venv/bin/python -m bench.e2e --cases 2000 --no-scale-out

Creates its own database (`<db>_bench`) and vhost (`hrcase_bench`), starts the four
services as separate processes with a local mail sink in its own process, and reports:
- baseline: raw aio-pika publish+consume rate (persistent messages, publisher confirms,
  quorum queue, manual ack) on the same broker, measured before and after the system runs;
- flat out: cases/s end to end (first submit -> last of the case's audit rows, every case
  routed, notified and audited), the events/s on the bus and its ratio to the baseline;
- latency percentiles submit -> routed / notified / audited, flat out and at half the
  rate reached (open-loop pacing, so queueing shows);
- CPU ms per case per service process (user+system from /proc, before/after each phase);
- RSS per service, idle after start and warm-up, and after the load;
- scale-out: a second process of every service started beside the first (both intakes
  take submissions), flat out again, CPU summed over both replicas.
Timestamps come from the database, so client overhead does not flatter the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from hrcase.services import QUEUES
from shared.settings import SERVICES
from tests.support.auth import auth_headers
from tests.support.infra import (
    ServiceProcess,
    admin_database_url,
    free_port,
    rabbitmq_test_url,
    recreate_database,
)
from tests.support.system import RunningSystem, running_system

# submitted, routed, process_assigned, stage_entered, assigned, status_changed,
# 2 x notification.sent: the audit rows of a case once everything about it happened.
EVENTS_PER_CASE = 8
# Deliveries of a case's notifications (the reporter's acknowledgement, the owner's mail).
MAILS_PER_CASE = 2


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc/<pid>/stat, fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident set size in MiB (VmRSS of /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def write_syscalls(pid: int) -> int:
    """write/send system calls a process made (syscw of /proc/<pid>/io): about one per
    database statement, broker frame batch, HTTP response or SMTP command, so a count per
    case that CPU contention from other work on the machine does not move."""
    with open(f"/proc/{pid}/io") as io:
        for line in io:
            if line.startswith("syscw:"):
                return int(line.split()[1])
    return 0


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle (user, nice, system, irq, softirq, steal of
    /proc/stat's `cpu` line): the whole machine, whoever ran."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def infrastructure_pids() -> dict[str, list[int]]:
    """The local RabbitMQ (beam.smp) and Postgres (every `postgres` process: postmaster,
    backends, checkpointer, WAL writer) of this machine, by /proc/<pid>/comm. Backends that
    exit during a phase take their CPU with them, so their figure is a floor."""
    found: dict[str, list[int]] = {"rabbitmq": [], "postgres": []}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as comm:
                name = comm.read().strip()
        except OSError:
            continue
        if name == "beam.smp":
            found["rabbitmq"].append(int(entry))
        elif name == "postgres":
            found["postgres"].append(int(entry))
    return found


def infrastructure_cpu() -> dict[str, float]:
    """CPU seconds so far of RabbitMQ, Postgres and this load generator, and the machine's
    busy seconds (`machine`), read together."""
    seconds: dict[str, float] = {}
    for name, pids in infrastructure_pids().items():
        total = 0.0
        for pid in pids:
            # A backend may exit between the listing and the read.
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        seconds[name] = total
    seconds["load generator"] = cpu_seconds(os.getpid())
    seconds["machine"] = machine_busy_seconds()
    return seconds


def gc_over_phase(
    before: dict[float, float], after: dict[float, float]
) -> tuple[float, float, float]:
    """(collections, seconds paused, upper bound of the longest pause) between two reads of
    one generation's hrcase_gc_pause_seconds buckets (bound -> cumulative count; -1 = sum)."""
    bounds = sorted(b for b in after if b >= 0)
    grew = {b: after[b] - before.get(b, 0.0) for b in bounds}
    count = grew[bounds[-1]] if bounds else 0.0  # the +Inf bucket counts every pause
    longest = next((b for b in bounds if grew[b] >= count), 0.0) if count else 0.0
    return count, after.get(-1.0, 0.0) - before.get(-1.0, 0.0), longest


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


async def baseline_rate(amqp_url: str, messages: int, body_size: int = 900) -> float:
    """Messages/s for publish-with-confirm + consume-with-ack on a durable quorum queue."""
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        publish_channel = await connection.channel(publisher_confirms=True)
        consume_channel = await connection.channel()
        await consume_channel.set_qos(prefetch_count=256)
        queue_name = f"bench.baseline.{uuid.uuid4().hex[:8]}"
        queue = await consume_channel.declare_queue(
            queue_name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        exchange = await publish_channel.declare_exchange(
            "bench.baseline", aio_pika.ExchangeType.TOPIC, durable=True
        )
        await queue.bind("bench.baseline", routing_key="#")
        done = asyncio.Event()
        received = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received >= messages:
                done.set()

        await queue.consume(on_message)
        body = b"x" * body_size
        started = time.perf_counter()
        for offset in range(0, messages, 500):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            body,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            message_id=str(uuid.uuid4()),
                        ),
                        routing_key="bench.event",
                        mandatory=True,
                    )
                    for _ in range(min(500, messages - offset))
                )
            )
        await asyncio.wait_for(done.wait(), timeout=300)
        elapsed = time.perf_counter() - started
        await queue.delete(if_unused=False, if_empty=False)
        await exchange.delete()
    return messages / elapsed


async def submit_cases(
    intake_url: str | Sequence[str], count: int, concurrency: int, tag: str, rate: float = 0.0
) -> list[str]:
    """Submit `count` cases; `rate` > 0 paces the offered load (cases/s), 0 = flat out.
    Several intake URLs (replicas) take the cases in turn."""
    urls = [intake_url] if isinstance(intake_url, str) else list(intake_url)
    semaphore = asyncio.Semaphore(concurrency)
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends them: at the same
    # expiry a request could go out on a connection the server was closing (ReadError).
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0
    )
    # Reporters are many employees: an HR agent submits on their behalf.
    headers = auth_headers("A-1001", "hr_agent")
    clients = [
        httpx.AsyncClient(base_url=url, timeout=60, limits=limits, headers=headers) for url in urls
    ]
    try:

        async def one(i: int) -> str:
            body = {
                "subject": f"{tag} {i}: overtime missing from my payslip",
                "description": "My overtime from last month is not on my payslip, please check.",
                "reporter": {
                    "employee_id": f"E-{i % 500}",
                    "name": "Bench Reporter",
                    "email": f"reporter{i % 500}@example.com",
                },
            }
            async with semaphore:
                response = await clients[i % len(clients)].post("/api/v1/cases", json=body)
            response.raise_for_status()
            return str(response.json()["case_id"])

        if rate <= 0:
            return await asyncio.gather(*(one(i) for i in range(count)))
        tasks = []
        started = time.perf_counter()
        for i in range(count):
            # Open-loop pacing: launch on schedule whether or not earlier ones finished.
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i)))
        return await asyncio.gather(*tasks)
    finally:
        for client in clients:
            await client.aclose()


async def wait_until_audited(pool: asyncpg.Pool, case_ids: list[uuid.UUID], timeout: float) -> None:
    """Until every case has its EVENTS_PER_CASE audit rows and MAILS_PER_CASE sent mails."""
    deadline = time.monotonic() + timeout
    expected = len(case_ids) * EVENTS_PER_CASE
    mails = len(case_ids) * MAILS_PER_CASE
    n = sent = 0
    while time.monotonic() < deadline:
        n = await pool.fetchval(
            "SELECT count(*) FROM audit.log WHERE case_id = ANY($1::uuid[])", case_ids
        )
        if n >= expected:
            sent = await pool.fetchval(
                "SELECT count(*) FROM notifications.deliveries"
                " WHERE case_id = ANY($1::uuid[]) AND status = 'sent'",
                case_ids,
            )
            if sent >= mails:
                return
        await asyncio.sleep(0.25)
    raise TimeoutError(
        f"only {n}/{expected} audit rows and {sent}/{mails} sent mails after {timeout}s"
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(database_url: str, case_ids: list[uuid.UUID]) -> dict[str, float]:
    """Rate and latencies of `case_ids` from the services' own timestamps."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    async with pool:
        rows = await pool.fetch(
            """SELECT i.case_id, i.submitted_at, r.routed_at, n.notified_at, a.audited_at
               FROM intake.cases i
               JOIN routing.cases r USING (case_id)
               JOIN (SELECT case_id, max(sent_at) AS notified_at
                     FROM notifications.deliveries
                     WHERE case_id = ANY($1::uuid[]) AND status = 'sent'
                     GROUP BY case_id) n USING (case_id)
               JOIN (SELECT case_id, max(recorded_at) AS audited_at FROM audit.log
                     WHERE case_id = ANY($1::uuid[]) GROUP BY case_id) a USING (case_id)
               WHERE i.case_id = ANY($1::uuid[])""",
            case_ids,
        )
    result: dict[str, float] = {"cases": len(rows)}
    for stage in ("routed", "notified", "audited"):
        ms = [(r[f"{stage}_at"] - r["submitted_at"]).total_seconds() * 1000 for r in rows]
        for q in (50, 95, 99):
            result[f"{stage}_p{q}_ms"] = percentile(ms, q / 100)
    first = min(r["submitted_at"] for r in rows)
    last = max(max(r["audited_at"], r["notified_at"]) for r in rows)
    result["span_s"] = (last - first).total_seconds()
    result["cases_per_s"] = len(rows) / result["span_s"]
    return result


@dataclass
class Phase:
    """One load phase's figures."""

    name: str
    cases: int
    offered: float  # cases/s offered; 0 = flat out
    submit_s: float
    figures: dict[str, float]
    cpu_ms: dict[str, float]  # CPU ms per case per service (replicas summed)
    writes: dict[str, float]  # write system calls per case per service (replicas summed)
    load: str
    # CPU ms per case of RabbitMQ, Postgres, the load generator and the whole machine.
    infrastructure_ms: dict[str, float] = field(default_factory=dict)
    # Consumer transactions (group commit) over the phase, of each service's first process:
    # service -> (committed batches, events they applied); README "Consumer batches".
    batches: dict[str, tuple[float, float]] = field(default_factory=dict)
    # Garbage-collector pauses over the phase (hrcase_gc_pause_seconds, every process of a
    # service summed): service -> generation -> (collections, seconds, longest bucket bound).
    gc: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)

    @property
    def cases_per_s(self) -> float:
        return self.figures["cases_per_s"]


@dataclass
class Bench:
    """The system under load and its service processes (a name may have replicas)."""

    system: RunningSystem
    pool: asyncpg.Pool
    replicas: dict[str, list[ServiceProcess]] = field(default_factory=dict)
    # py-spy samples of each service process during the first phase go here (--profile).
    profile_dir: Path | None = None

    def pids(self) -> dict[str, list[int]]:
        return {
            name: [p.proc.pid for p in processes if p.proc]
            for name, processes in self.replicas.items()
        }

    def intake_urls(self) -> list[str]:
        return [p.base_url for p in self.replicas["intake"]]

    def cpu(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in self.pids().items()}

    def writes(self) -> dict[str, int]:
        return {
            name: sum(write_syscalls(pid) for pid in pids) for name, pids in self.pids().items()
        }

    def rss(self) -> dict[str, list[float]]:
        return {name: [rss_mb(pid) for pid in pids] for name, pids in self.pids().items()}

    async def phase(self, name: str, cases: int, concurrency: int, rate: float = 0.0) -> Phase:
        """Offer `cases` (at `rate` cases/s, 0 = flat out) and wait until all are audited;
        CPU per case per service over the phase."""
        spies = self._start_profilers()
        batches_before, gc_before = await self.consumer_figures()
        before, writes_before = self.cpu(), self.writes()
        infra_before = infrastructure_cpu()
        started = time.perf_counter()
        submitted = await submit_cases(self.intake_urls(), cases, concurrency, name, rate)
        submit_s = time.perf_counter() - started
        ids = [uuid.UUID(c) for c in submitted]
        await wait_until_audited(self.pool, ids, timeout=max(180, cases))
        after, writes_after = self.cpu(), self.writes()
        infra_after = infrastructure_cpu()
        batches_after, gc_after = await self.consumer_figures()
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for spy in spies:
            spy.wait(30)
        load = load_average()
        figures = await measure(self.system.database_url, ids)
        cpu_ms = {n: (after[n] - before[n]) / cases * 1000 for n in after}
        writes = {n: (writes_after[n] - writes_before[n]) / cases for n in writes_after}
        batches = {
            n: (
                batches_after[n][0] - batches_before[n][0],
                batches_after[n][1] - batches_before[n][1],
            )
            for n in batches_after
        }
        infrastructure_ms = {
            n: (infra_after[n] - infra_before[n]) / cases * 1000 for n in infra_after
        }
        gc_phase = {
            n: {g: gc_over_phase(gc_before.get(n, {}).get(g, {}), h) for g, h in gens.items()}
            for n, gens in gc_after.items()
        }
        return Phase(
            name,
            cases,
            rate,
            submit_s,
            figures,
            cpu_ms,
            writes,
            load,
            infrastructure_ms,
            batches,
            gc_phase,
        )

    async def consumer_figures(
        self,
    ) -> tuple[dict[str, tuple[float, float]], dict[str, dict[str, dict[float, float]]]]:
        """One scrape of each service's first process: hrcase_consumer_batch_events
        (count, sum), and hrcase_gc_pause_seconds by generation: the histogram's cumulative
        buckets (upper bound -> collections), key -1.0 -> seconds paused in all."""
        batches: dict[str, tuple[float, float]] = {}
        pauses: dict[str, dict[str, dict[float, float]]] = {}
        async with httpx.AsyncClient(timeout=10) as client:
            for name in self.replicas:
                text = (await client.get(self.system.metrics_url(name))).text
                count = total = 0.0
                generations: dict[str, dict[float, float]] = {}
                for family in text_string_to_metric_families(text):
                    if family.name == "hrcase_consumer_batch_events":
                        for sample in family.samples:
                            if sample.name.endswith("_count"):
                                count += sample.value
                            elif sample.name.endswith("_sum"):
                                total += sample.value
                    elif family.name == "hrcase_gc_pause_seconds":
                        for sample in family.samples:
                            histogram = generations.setdefault(sample.labels["generation"], {})
                            if sample.name.endswith("_bucket"):
                                histogram[float(sample.labels["le"])] = sample.value
                            elif sample.name.endswith("_sum"):
                                histogram[-1.0] = sample.value  # -1: the sum, not a bound
                batches[name] = (count, total)
                pauses[name] = generations
        return batches, pauses

    def _start_profilers(self) -> list[subprocess.Popen[bytes]]:
        """py-spy (collapsed stacks, only samples holding the GIL: CPU, not waiting) on
        every service process, once; the files are `<profile_dir>/<service>.txt`."""
        if self.profile_dir is None:
            return []
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        spies = [
            subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    "--pid",
                    str(pid),
                    "--format",
                    "raw",
                    "--gil",
                    "--nonblocking",
                    *os.environ.get("BENCH_PYSPY_ARGS", "").split(),
                    "--rate",
                    "200",
                    "--output",
                    str(self.profile_dir / f"{name}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name, pids in self.pids().items()
            for pid in pids[:1]
        ]
        self.profile_dir = None
        return spies

    def add_replicas(self) -> None:
        """A second process of every service, with ports of its own, beside the first."""
        for name in SERVICES:
            first = self.system.services[name]
            port = free_port()
            env = {
                **first.env,
                f"{name.upper()}_HTTP_PORT": str(port),
                f"{name.upper()}_METRICS_PORT": str(free_port()),
            }
            if name == "intake":
                env["INTAKE_SMTP_PORT"] = str(free_port())
            log = first.log_path.with_name(f"{name}-2.log")
            self.replicas[name].append(ServiceProcess(name, env, port, log).start(wait=False))
        for name in SERVICES:
            self.replicas[name][-1].wait_ready()
        self.wait_for_partition_spread()

    def wait_for_partition_spread(self, timeout: float = 60.0) -> None:
        """Until every process of each partitioned service holds partitions of it
        (hrcase_partitions_held, README "Partitions by case"), so the phase measures
        replicas that share the work."""
        deadline = time.monotonic() + timeout
        partitioned = [n for n in SERVICES if QUEUES[n].partitioned]
        while True:
            held = {
                name: [p.partitions_held() for p in self.replicas[name]] for name in partitioned
            }
            if all(counts and min(counts) > 0 for counts in held.values()):
                print(f"partitions held per process: {held}")
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"partitions never spread over the processes: {held}")
            time.sleep(0.5)

    def stop_replicas(self) -> None:
        for processes in self.replicas.values():
            for process in processes[1:]:
                process.stop()


@contextmanager
def bench_logs() -> Iterator[Path]:
    logs = Path("var/bench-logs")
    logs.mkdir(parents=True, exist_ok=True)
    yield logs


def print_phase(phase: Phase, baseline: float) -> None:
    f = phase.figures
    offered = f"offered {phase.offered:.1f}/s" if phase.offered else "flat out"
    events_per_s = phase.cases_per_s * EVENTS_PER_CASE
    print(
        f"\n[{phase.name}] {phase.cases} cases, {offered}; submitted in {phase.submit_s:.1f}s"
        f" ({phase.cases / phase.submit_s:,.0f}/s accepted by the API); load average"
        f" {phase.load}"
    )
    print(
        f"  end to end: {phase.cases_per_s:,.1f} cases/s over {f['span_s']:.1f}s"
        f" ({events_per_s:,.0f} events/s on the bus; / baseline {baseline:,.0f} msg/s"
        f" = {events_per_s / baseline:.3f})"
    )
    for stage in ("routed", "notified", "audited"):
        print(
            f"  submit -> {stage:<8} p50 {f[f'{stage}_p50_ms']:>7,.0f} ms"
            f"  p95 {f[f'{stage}_p95_ms']:>7,.0f} ms  p99 {f[f'{stage}_p99_ms']:>7,.0f} ms"
        )
    cpu = "  ".join(f"{name} {ms:.1f}" for name, ms in phase.cpu_ms.items())
    print(f"  CPU ms per case: {cpu}  total {sum(phase.cpu_ms.values()):.1f}")
    infra = phase.infrastructure_ms
    services = sum(phase.cpu_ms.values())
    if infra:
        cores = os.cpu_count() or 1
        floor = infra["rabbitmq"] + infra["postgres"]
        rest = infra["machine"] - services - infra["rabbitmq"] - infra["postgres"]
        rest -= infra["load generator"]
        print(
            f"  machine CPU ms per case: services {services:.1f}  RabbitMQ"
            f" {infra['rabbitmq']:.1f}  Postgres {infra['postgres']:.1f}  load generator"
            f" {infra['load generator']:.1f}  rest (mail sink, kernel, others) {rest:.1f}"
            f"  = {infra['machine']:.1f}; {cores} cores carry at most"
            f" {cores * 1000 / infra['machine']:,.0f} cases/s at this cost, RabbitMQ"
            f" and Postgres alone {cores * 1000 / floor:,.0f}"
        )
    writes = "  ".join(f"{name} {n:.0f}" for name, n in phase.writes.items())
    print(f"  write syscalls per case: {writes}  total {sum(phase.writes.values()):.0f}")
    paused = "  ".join(
        f"{name} {1000 * sum(sec for _, sec, _ in gens.values()) / phase.cases:.2f}"
        f" (full: {gens.get('2', (0.0, 0.0, 0.0))[0]:.0f} x, longest <="
        f" {1000 * gens.get('2', (0.0, 0.0, 0.0))[2]:,.1f} ms)"
        for name, gens in phase.gc.items()
        if gens
    )
    if paused:
        print(f"  GC pause ms per case (first process): {paused}")
    batched = "  ".join(
        f"{name} {events / count:.1f} ({count:.0f} transactions)"
        for name, (count, events) in phase.batches.items()
        if count
    )
    if batched:
        print(f"  events per consumer transaction (batched): {batched}")


def print_rss(title: str, rss: dict[str, list[float]]) -> None:
    cells = "  ".join(
        f"{name} {'+'.join(f'{mb:.0f}' for mb in values)}" for name, values in rss.items()
    )
    print(f"RSS MiB, {title}: {cells}")


async def run(
    cases: int,
    concurrency: int,
    baseline_messages: int,
    half_seconds: float,
    scale_out: bool,
    rate: float = 0.0,
    profile: Path | None = None,
) -> None:
    database_url = admin_database_url("bench")
    recreate_database(database_url)
    amqp_url = rabbitmq_test_url("hrcase_bench")
    print(f"load average at start: {load_average()} ({os.cpu_count()} CPUs)")
    baselines = [await baseline_rate(amqp_url, baseline_messages)]
    print(f"baseline raw aio-pika publish+consume (before): {baselines[0]:,.0f} msg/s")
    phases: list[Phase] = []
    with (
        bench_logs() as logs,
        running_system(
            database_url, amqp_url, logs, mail_in_process=False, LOG_LEVEL="WARNING"
        ) as system,
    ):
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        assert pool is not None
        async with pool:
            bench = Bench(system, pool, {n: [s] for n, s in system.services.items()}, profile)
            warm = [uuid.UUID(c) for c in await submit_cases(bench.intake_urls(), 50, 16, "warm")]
            await wait_until_audited(pool, warm, timeout=120)
            await asyncio.sleep(2)
            idle = bench.rss()
            # Background work (relay polls, timers, checkpoints) costs CPU with no cases.
            cpu_before = bench.cpu()
            await asyncio.sleep(5)
            idle_cpu = {n: (c - cpu_before[n]) / 5 * 1000 for n, c in bench.cpu().items()}
            full = await bench.phase("flat out", cases, concurrency, rate)
            phases.append(full)
            print_phase(full, baselines[0])
            half_rate = full.cases_per_s / 2
            half = await bench.phase(
                "half rate", max(50, round(half_rate * half_seconds)), concurrency, half_rate
            )
            phases.append(half)
            print_phase(half, baselines[0])
            loaded = bench.rss()
            if scale_out:
                bench.add_replicas()
                try:
                    warm = [
                        uuid.UUID(c)
                        for c in await submit_cases(bench.intake_urls(), 50, 16, "warm-2")
                    ]
                    await wait_until_audited(pool, warm, timeout=120)
                    two = await bench.phase("2 replicas each, flat out", cases, concurrency)
                    phases.append(two)
                    print_phase(two, baselines[0])
                finally:
                    bench.stop_replicas()
    baselines.append(await baseline_rate(amqp_url, baseline_messages))
    baseline = sum(baselines) / len(baselines)
    print(f"\nbaseline raw aio-pika publish+consume (after): {baselines[1]:,.0f} msg/s")
    print_rss("idle after start and warm-up", idle)
    print_rss("after the load", loaded)
    print(
        "idle CPU ms per second: " + "  ".join(f"{name} {ms:.1f}" for name, ms in idle_cpu.items())
    )
    print("\nsummary")
    print(f"  baseline (mean of before/after): {baseline:,.0f} msg/s")
    for phase in phases:
        events_per_s = phase.cases_per_s * EVENTS_PER_CASE
        print(
            f"  {phase.name:<26} {phase.cases_per_s:6.1f} cases/s"
            f"  routed p99 {phase.figures['routed_p99_ms']:,.0f} ms"
            f"  audited p99 {phase.figures['audited_p99_ms']:,.0f} ms"
            f"  CPU {sum(phase.cpu_ms.values()):.1f} ms/case"
            f"  ratio {events_per_s / baseline:.3f}"
        )
    if scale_out and len(phases) == 3:
        print(
            "  scale-out: two processes of every service share its partitions by partition"
            " leases (two each of four; audit's second process stands by; both intakes"
            " take submissions); gain"
            f" x{phases[2].cases_per_s / phases[0].cases_per_s:.2f} on these cores"
        )
    print(f"  load average at end: {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000, help="cases per flat-out phase")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--baseline-messages", type=int, default=10000)
    parser.add_argument(
        "--half-seconds", type=float, default=20.0, help="length of the half-rate phase"
    )
    parser.add_argument("--no-scale-out", action="store_true", help="skip the 2-replica run")
    parser.add_argument(
        "--quick", action="store_true", help="a short run: 400 cases, 10 s half rate"
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="offered cases/s of the first phase (0: flat out)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy every service during the first phase into this directory",
    )
    args = parser.parse_args()
    if args.quick:
        args.cases, args.half_seconds, args.baseline_messages = 400, 10.0, 5000
    asyncio.run(
        run(
            args.cases,
            args.concurrency,
            args.baseline_messages,
            args.half_seconds,
            not args.no_scale_out,
            args.rate,
            args.profile,
        )
    )


if __name__ == "__main__":
    main()
