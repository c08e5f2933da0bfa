"""Faults at scale: under a steady load of cases, `kill -9` of each service in turn (a
supervisor restarting it after a pause), then a clean restart and a crash (`kill -9`) of
the RabbitMQ node and an immediate (crash-like) stop of Postgres, each started again on
the same data. Afterwards every case intake acknowledged is routed once, acknowledged to
its reporter once, and every one of its events is in the audit log once; nothing is
dead-lettered; `hrcase audit verify` finds the chain intact.

The broker and the database are this test's own (tests/support/own_servers.py): the
machine's RabbitMQ and Postgres serve other runs and are never restarted. `make test`
runs this module on its own after the parallel suite (marker `faults`); alone:

    make faults   # = .venv/bin/pytest -p no:xdist -m faults tests/fault/test_faults_at_scale.py

The counts go to the run's output and to `faults-at-scale.json` in pytest's basetemp.
HRCASE_FAULT_RATE (cases/s, default 10) and HRCASE_FAULT_PAUSE (s a killed service stays
down, default 2) tune the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import psycopg
import pytest

from hrcase.services import QUEUES
from shared.broker_access import settings_definitions
from shared.settings import Settings
from tests.support.infra import ROOT, recreate_database
from tests.support.load import SteadyLoad, Submission
from tests.support.own_servers import (
    MissingServer,
    OwnPostgres,
    OwnRabbitMQ,
    own_postgres,
    own_rabbitmq,
)
from tests.support.system import RunningSystem, running_system

pytestmark = [pytest.mark.slow, pytest.mark.faults]

RATE = float(os.environ.get("HRCASE_FAULT_RATE", "10"))
PAUSE = float(os.environ.get("HRCASE_FAULT_PAUSE", "2"))
# Load between faults, so each fault meets cases in every stage of their way.
SETTLE = 2.5
DRAIN_TIMEOUT = 180.0
VHOST = "hrcase_faults"
DATABASE = "hrcase_faults"
ACKNOWLEDGEMENT = "We have received your case"


@dataclass
class World:
    broker: OwnRabbitMQ
    postgres: OwnPostgres
    database_url: str
    rabbitmq_url: str
    work: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A private broker node and Postgres cluster with the run's database (migrated),
    vhost, topology and broker users, as `hrcase migrate` and `hrcase topology` make them."""
    work = tmp_path_factory.mktemp("faults")
    try:
        with own_rabbitmq(work / "rabbitmq") as broker, own_postgres() as postgres:
            database_url = postgres.url(DATABASE)
            recreate_database(database_url)
            rabbitmq_url = broker.url(VHOST)
            definitions = settings_definitions(Settings(rabbitmq_url=rabbitmq_url), QUEUES)
            # The admin (guest on the private node) reads the queues and dead letters.
            definitions["permissions"].append(
                {"user": "guest", "vhost": VHOST, "configure": ".*", "write": ".*", "read": ".*"}
            )
            broker.import_definitions(definitions)
            yield World(broker, postgres, database_url, rabbitmq_url, work)
    except MissingServer as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the fault suite needs its own servers: {exc}")
        pytest.skip(str(exc))


@dataclass
class Timeline:
    """What happened when, for the report: each fault's down time and recovery."""

    started: float = field(default_factory=time.monotonic)
    events: list[dict[str, Any]] = field(default_factory=list)

    def step(self, name: str, action: Callable[[], None], load: SteadyLoad) -> None:
        began = time.monotonic()
        action()
        self.events.append(
            {
                "fault": name,
                "at_s": round(began - self.started, 1),
                "took_s": round(time.monotonic() - began, 1),
                "offered_so_far": len(load.submissions),
            }
        )


def kill_and_restart(system: RunningSystem, name: str) -> Callable[[], None]:
    def action() -> None:
        service = system.services[name]
        service.kill9()
        time.sleep(PAUSE)  # down for a while, as until a supervisor notices
        service.start()  # waits for /health/ready

    return action


def crash_and_restart_broker(broker: OwnRabbitMQ) -> Callable[[], None]:
    def action() -> None:
        broker.kill()
        time.sleep(PAUSE)
        broker.start()

    return action


def crash_and_restart_postgres(postgres: OwnPostgres) -> Callable[[], None]:
    return lambda: postgres.restart(mode="immediate", pause=PAUSE)


def event_counts(conn: psycopg.Connection, case_ids: list[str]) -> dict[str, Counter[str]]:
    """Audit log entries per case and event type (the case's own events: audit.* entries
    record reads)."""
    rows = conn.execute(
        "SELECT case_id::text, event_type, count(*) FROM audit.log"
        " WHERE case_id = ANY(%s::uuid[]) AND event_type NOT LIKE 'audit.%%'"
        " GROUP BY 1, 2",
        (case_ids,),
    ).fetchall()
    counts: dict[str, Counter[str]] = {cid: Counter() for cid in case_ids}
    for case_id, event_type, n in rows:
        counts[case_id][event_type] = n
    return counts


@dataclass
class Mail:
    """One notification as mailed: its Message-ID (stable across a resend), recipient,
    subject, and how many copies the sink received."""

    to: str
    subject: str
    copies: int = 0


def mails_by_reference(system: RunningSystem, references: set[str]) -> dict[str, dict[str, Mail]]:
    """Mails the sink received per case reference (`[HR-...]` in the subject), by
    Message-ID. notifications sends before it records the send (SMTP has no transaction):
    a kill or a lost database connection between the two sends it again on redelivery,
    with the same Message-ID, which a recipient's mail system shows once."""
    found: dict[str, dict[str, Mail]] = {ref: {} for ref in references}
    for message in system.mail.received():
        subject = str(message["Subject"])
        reference = subject.split("]", 1)[0].removeprefix("[")
        if reference in found:
            mail = found[reference].setdefault(
                str(message["Message-ID"]), Mail(str(message["To"]), subject)
            )
            mail.copies += 1
    return found


def dead_letters(broker: OwnRabbitMQ) -> dict[str, dict[str, int]]:
    """Per dead-letter queue, its messages counted by (event type, reason) from the
    headers the consumer sets (`x-error`; the broker's own `x-death` when it gave up)."""

    async def read() -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = {}
        depths = broker.queue_depths(VHOST)
        connection = await aio_pika.connect(broker.url(VHOST))
        async with connection:
            channel = await connection.channel()
            for name, depth in depths.items():
                if not depth or not ("dlq" in name or "dead" in name):
                    continue
                queue = await channel.get_queue(name, ensure=False)
                reasons: Counter[str] = Counter()
                for _ in range(depth):
                    message = await queue.get(no_ack=False, fail=False)
                    if message is None:
                        break
                    headers = message.headers or {}
                    reason = headers.get("x-error") or f"x-death: {headers.get('x-death')}"
                    reasons[f"{message.type or '?'}: {str(reason)[:160]}"] += 1
                found[name] = dict(reasons)  # unacked: back in the queue when we close
        return found

    return asyncio.run(read())


def audit_verify(world: World, system: RunningSystem) -> subprocess.CompletedProcess[str]:
    """`hrcase audit verify` with the audit service's own settings (checkpoints, key)."""
    return subprocess.run(
        [sys.executable, "-m", "hrcase.cli", "audit", "verify", "--database-url",
         world.database_url],
        cwd=ROOT, env=system.services["audit"].env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_every_case_handled_once_through_kills_and_restarts(
    world: World, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    audit_dir = world.work / "audit"
    with running_system(
        world.database_url,
        world.rabbitmq_url,
        world.work / "logs",
        AUDIT_CHECKPOINT_DIR=str(audit_dir / "checkpoints"),
        AUDIT_SIGNING_KEY_FILE=str(audit_dir / "keys" / "checkpoint-signing.key"),
    ) as system:
        load = SteadyLoad(system.url("intake"), rate=RATE, tag="fault").start()
        timeline = Timeline()
        time.sleep(SETTLE)
        faults: list[tuple[str, Callable[[], None]]] = [
            *((f"kill -9 {name}", kill_and_restart(system, name)) for name in
              ("intake", "routing", "notifications", "audit")),
            ("RabbitMQ node stopped and started", world.broker.restart),
            ("kill -9 RabbitMQ node", crash_and_restart_broker(world.broker)),
            ("Postgres stop -m immediate", crash_and_restart_postgres(world.postgres)),
        ]  # fmt: skip
        try:
            for name, action in faults:
                timeline.step(name, action, load)
                time.sleep(SETTLE)
        except BaseException:
            load.abandon()  # a fault that did not recover: stop the load, then report
            raise
        load.stop_offering()
        load_ended = time.monotonic()
        load.wait_answered(timeout=60)
        accepted = load.accepted()
        case_ids = [s.case_id for s in accepted if s.case_id]
        references = {s.reference for s in accepted if s.reference}

        # The first case, offered before any fault, is the yardstick: every case must end
        # with the same events, each once (no hard-coded list: the set may change).
        with psycopg.connect(world.database_url, autocommit=True) as conn:
            report = drain(conn, system, accepted, case_ids, references)
        report.update(
            load.summary(),
            rate_per_s=RATE,
            pause_s=PAUSE,
            load_s=round(load_ended - timeline.started, 1),
            time_to_drain_s=report.pop("drain_s"),
            faults=timeline.events,
        )
        verify = audit_verify(world, system)
        report["audit_verify"] = {
            "exit": verify.returncode,
            "output": (verify.stdout + verify.stderr).strip()[-400:],
        }
        report["dead_lettered"] = dead_letters(world.broker)
        report["queues_left"] = {q: n for q, n in world.broker.queue_depths(VHOST).items() if n}
        out = tmp_path_factory.getbasetemp() / "faults-at-scale.json"
        out.write_text(json.dumps(report, indent=2, sort_keys=True))
        with capsys.disabled():  # the counts in the run's output, with or without -s
            print(f"\nfaults at scale ({out}):\n{json.dumps(report, indent=2, sort_keys=True)}")

    assert not load.refused(), f"intake refused cases: {[s.refused for s in load.refused()]}"
    assert not load.unanswered(), f"{len(load.unanswered())} submissions never answered 2xx"
    assert report["submitted"] > 0 and report["retried_submissions"] > 0, (
        "the load must meet the faults (some submissions retried)"
    )
    server_errors = {
        reason: n
        for reason, n in report["failed_attempts_by_reason"].items()
        if reason.startswith("HTTP 5") and reason != "HTTP 503"
    }
    assert not server_errors, "an outage is a 503 with Retry-After, never a 500"
    assert report["orphan_cases"] == 0, "intake opened cases no acknowledged submission names"
    yardstick = report["events_per_case"]
    assert yardstick.get("case.submitted") == 1 and yardstick.get("case.routed") == 1, yardstick
    assert yardstick.get("notification.sent", 0) >= 1, yardstick
    assert report["routed"] == report["submitted"], report["not_routed"]
    assert report["cases_with_wrong_events"] == 0, report["wrong_events_sample"]
    assert report["notified"] == report["submitted"], report["wrong_mail_sample"]
    assert report["cases_with_wrong_mails"] == 0, report["wrong_mail_sample"]
    assert report["dead_lettered"] == {}, "dead letters after the faults"
    assert report["audit_verify"]["exit"] == 0, report["audit_verify"]["output"]


def drain(
    conn: psycopg.Connection,
    system: RunningSystem,
    accepted: list[Submission],
    case_ids: list[str],
    references: set[str],
) -> dict[str, Any]:
    """Wait (bounded) until every case has the yardstick's events and mails, then count."""
    began = time.monotonic()
    yardstick = accepted[0]
    assert yardstick.case_id and yardstick.reference
    last: dict[str, Any] = {}
    while True:
        counts = event_counts(conn, case_ids)
        expected = counts[yardstick.case_id]
        mails = mails_by_reference(system, references)
        expected_mails = len(mails[yardstick.reference])
        settled = (
            expected["case.routed"] == 1
            and all(c == expected for c in counts.values())
            and all(len(m) == expected_mails for m in mails.values())
        )
        if settled or time.monotonic() - began > DRAIN_TIMEOUT:
            break
        time.sleep(1.0)
    drain_s = round(time.monotonic() - began, 1)
    time.sleep(2.0)  # nothing late and doubled either
    counts = event_counts(conn, case_ids)
    mails = mails_by_reference(system, references)
    expected = counts[yardstick.case_id]
    wrong = {cid: dict(c) for cid, c in counts.items() if c != expected}
    by_case = {s.reference: s for s in accepted}
    acknowledged = {
        ref: sum(ACKNOWLEDGEMENT in m.subject and by_case[ref].reporter_email in m.to
                 for m in found.values())
        for ref, found in mails.items()
    }  # fmt: skip
    wrong_mail = {
        ref: {mid: vars(m) for mid, m in found.items()}
        for ref, found in mails.items()
        if acknowledged[ref] != 1 or len(found) != expected_mails
    }
    resent = {
        ref: [vars(m) for m in found.values() if m.copies > 1]
        for ref, found in mails.items()
        if any(m.copies > 1 for m in found.values())
    }
    routed = conn.execute(
        "SELECT count(*) FROM routing.cases WHERE case_id = ANY(%s::uuid[])", (case_ids,)
    ).fetchone()
    in_intake = conn.execute(
        "SELECT count(*) FROM intake.cases WHERE subject LIKE 'fault %%'"
    ).fetchone()
    not_routed = [cid for cid in case_ids if counts[cid]["case.routed"] != 1]
    audited_events = sum(sum(c.values()) for c in counts.values())
    last.update(
        drain_s=drain_s,
        events_per_case=dict(expected),
        mails_per_case=len(mails[yardstick.reference or ""]),
        routed=routed[0] if routed else 0,
        routed_once_in_audit=len(case_ids) - len(not_routed),
        not_routed=not_routed[:5],
        notified=sum(n == 1 for n in acknowledged.values()),
        cases_with_wrong_mails=len(wrong_mail),
        mails_resent_same_message_id=sum(
            m.copies - 1 for found in mails.values() for m in found.values()
        ),
        resent_sample=dict(list(resent.items())[:3]),
        audited_events=audited_events,
        duplicate_events=sum(
            max(0, n - expected[t]) for c in counts.values() for t, n in c.items()
        ),
        missing_events=sum(max(0, n - c[t]) for c in counts.values() for t, n in expected.items()),
        cases_with_wrong_events=len(wrong),
        wrong_events_sample=dict(list(wrong.items())[:3]),
        wrong_mail_sample=dict(list(wrong_mail.items())[:3]),
        orphan_cases=(in_intake[0] if in_intake else 0) - len(case_ids),
    )
    return last
