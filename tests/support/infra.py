"""Test infrastructure: a fresh database and vhost per run, real service processes.

Uses RABBITMQ_URL / DATABASE_URL (local defaults). The test database is
`<database>_test_<run>` and the vhost `hrcase_test_<run>`, created with rabbitmqctl
(which must be at hand for a local broker) with the topology and this run's own broker
users `hrcase-t<run>-<service>`; otherwise the URL's own vhost is used as it is.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
import psycopg
from sqlalchemy.engine import make_url

from hrcase.services import QUEUES
from shared.broker_access import (
    HASHING_ALGORITHM,
    apply_definitions,
    password_hash,
    settings_definitions,
)
from shared.migrations import migrate
from shared.settings import Settings, dev_rabbitmq_password
from shared.topology import PUBLISHES

ROOT = Path(__file__).resolve().parents[2]
# Connection budget of a test run (README "Connection budget"): small pools, so a run fits
# beside other runs and databases on a shared server. At most two systems run at once (a
# module's system and the kill -9 test's own), each four service processes.
TEST_DB_POOL_SIZE = 4
TEST_PEAK_PROCESSES = 2 * 4
# The admin pool (4), in-process runtimes' pools, scratch and CLI connections.
TEST_OTHER_CONNECTIONS = 14
# One database and vhost per test run, so parallel runs never wipe each other's state.
# Under pytest-xdist (`make test` runs `-n`) every worker process is a run of its own: its
# pid by default, and a given HRCASE_TEST_RUN_ID gets the worker's name (gw0, gw1, ...)
# appended, so two workers never share a database, a vhost or broker users.
RUN_ID = os.environ.get("HRCASE_TEST_RUN_ID") or str(os.getpid())
if os.environ.get("HRCASE_TEST_RUN_ID") and os.environ.get("PYTEST_XDIST_WORKER"):
    RUN_ID = f"{RUN_ID}_{os.environ['PYTEST_XDIST_WORKER']}"
TEST_VHOST = f"hrcase_test_{RUN_ID}"
# Broker users are cluster-wide: this run's are its own too (hrcase-t<run>-intake, ...), so
# a run never resets the passwords of another run's or the development system's users.
# Set here, before any Settings() is built, so in-process runtimes and the service
# processes (which inherit the environment) connect as this run's users.
TEST_USER_PREFIX = f"hrcase-t{RUN_ID}-"
os.environ["RABBITMQ_USER_PREFIX"] = TEST_USER_PREFIX
# Test-only user with RabbitMQ's `impersonator` tag: may set any user_id. Tests that feed
# a consumer directly (a private queue, no exchange) stamp the producer's user with it,
# standing in for the broker's validation of a real publish.
IMPERSONATOR = f"{TEST_USER_PREFIX}impersonator"


# How long a started service process may take to answer /health/ready, in seconds. A cold
# start imports the whole service (intake: FastAPI, DuckDB, matplotlib...) and takes seconds;
# with pytest-xdist workers and other runs on the same cores, four processes importing at
# once took over 30 s on a loaded 2-core machine. A process that exits fails at once.
READY_TIMEOUT = float(os.environ.get("HRCASE_TEST_READY_TIMEOUT", "120"))


def admin_database_url(suffix: str = "test") -> str:
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@localhost:5432/hrcase")
    url = make_url(base)
    return url.set(database=f"{url.database}_{suffix}").render_as_string(hide_password=False)


class NotEnoughConnections(RuntimeError):
    """The Postgres server has fewer free connection slots than a test run needs."""


def connections_needed(workers: int = 1) -> int:
    """Postgres connections a test run may hold at its peak: per process of the run (a
    plain pytest, or each of `workers` pytest-xdist workers, which are runs of their own)
    two systems of service processes at DB_POOL_SIZE each, plus the test's own."""
    pool = int(os.environ.get("DB_POOL_SIZE", TEST_DB_POOL_SIZE))
    return max(workers, 1) * (TEST_PEAK_PROCESSES * pool + TEST_OTHER_CONNECTIONS)


def free_connection_slots(database_url: str) -> tuple[int, str]:
    """Slots a non-superuser role can still take, and who holds the rest (a sentence)."""
    url = make_url(database_url)
    admin = url.set(database="postgres", drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int"
            " + coalesce(current_setting('reserved_connections', true)::int, 0),"
            " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
        ).fetchone()
        assert row is not None
        top = conn.execute(
            "SELECT coalesce(datname, '-'), count(*) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
        ).fetchall()
    maximum, reserved, used = row
    holders = ", ".join(f"{db}: {n}" for db, n in top)
    return maximum - reserved - used, (
        f"max_connections {maximum}, {reserved} reserved, {used} in use ({holders})"
    )


def require_free_connections(
    database_url: str, needed: int, wait: float = 60.0, workers: int = 1
) -> None:
    """Wait up to `wait` seconds for `needed` free slots, else NotEnoughConnections with
    who holds them: a clear failure at the start instead of one in the middle of a test.
    `workers`: the pytest-xdist workers `needed` is for (named in the message)."""
    deadline = time.monotonic() + wait
    while True:
        free, detail = free_connection_slots(database_url)
        if free >= needed:
            return
        if time.monotonic() >= deadline:
            per_worker = f"{workers} pytest workers x (" if workers > 1 else ""
            fewer = ", run fewer workers (PYTEST_WORKERS)" if workers > 1 else ""
            raise NotEnoughConnections(
                f"Postgres has {free} free connection slots, this test run needs up to"
                f" {needed} ({per_worker}{TEST_PEAK_PROCESSES} service processes x"
                f" DB_POOL_SIZE {os.environ.get('DB_POOL_SIZE', TEST_DB_POOL_SIZE)} +"
                f" {TEST_OTHER_CONNECTIONS} others{')' if workers > 1 else ''}): {detail}."
                f" Wait for other runs to end, close idle sessions{fewer}, lower"
                " DB_POOL_SIZE or raise max_connections."
            )
        time.sleep(2)


def workers_that_fit(database_url: str, workers: int, wait: float = 60.0) -> int:
    """How many pytest-xdist workers the server has connection slots for: all `workers`
    when their budget is free within `wait` seconds; else as many as fit now (at least one).
    NotEnoughConnections (a single run's message) when not even one fits."""
    try:
        require_free_connections(
            database_url, connections_needed(workers), wait=wait, workers=workers
        )
        return workers
    except NotEnoughConnections:
        free, _ = free_connection_slots(database_url)
        fits = min(workers, free // connections_needed())
        if fits >= 1:
            return fits
        require_free_connections(database_url, connections_needed(), wait=0)
        return 1


def drop_database(database_url: str) -> None:
    url = make_url(database_url)
    admin = url.set(database="postgres", drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


def delete_vhost(vhost: str = TEST_VHOST) -> None:
    """Delete the run's vhost and its broker users."""
    ctl = shutil.which("rabbitmqctl")
    if ctl:
        subprocess.run([ctl, "-q", "delete_vhost", vhost], capture_output=True)
        for user in [*(f"{TEST_USER_PREFIX}{p}" for p in PUBLISHES), IMPERSONATOR]:
            subprocess.run([ctl, "-q", "delete_user", user], capture_output=True)


@contextmanager
def own_database(name: str) -> Iterator[str]:
    """Admin URL of a migrated database of one test module's own, dropped afterwards: for
    modules that assert exact counts, loads or lists, which other modules' cases in the
    run's shared database would upset."""
    url = admin_database_url(f"test_{RUN_ID}_{name}")
    recreate_database(url)
    try:
        yield url
    finally:
        drop_database(url)


def recreate_database(database_url: str) -> None:
    url = make_url(database_url)
    admin = url.set(database="postgres", drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{url.database}"')
    migrate(database_url)


def rabbitmq_test_url(vhost: str = TEST_VHOST) -> str:
    """A clean vhost for the run, so tests never touch a running dev system's queues.

    The vhost gets the topology and this run's broker users with their permissions, from
    the same definitions `hrcase topology` applies; the admin user of RABBITMQ_URL (the
    tests' own connection: taps, dead-letter queues) gets full rights on it.
    """
    base = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@localhost:5672/")
    ctl = shutil.which("rabbitmqctl")
    parts = urlsplit(base)
    if ctl is None or parts.hostname not in ("localhost", "127.0.0.1"):
        return base
    user = unquote(parts.username or "guest")
    subprocess.run([ctl, "-q", "delete_vhost", vhost], capture_output=True)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))
    definitions = settings_definitions(Settings(rabbitmq_url=url), QUEUES)
    definitions["users"].append(
        {
            "name": IMPERSONATOR,
            "password_hash": password_hash(dev_rabbitmq_password(IMPERSONATOR)),
            "hashing_algorithm": HASHING_ALGORITHM,
            "tags": ["impersonator"],
        }
    )
    definitions["permissions"].append(
        {"user": IMPERSONATOR, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
    )
    apply_definitions(definitions, base)
    subprocess.run(
        [ctl, "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    return url


def _port_block() -> Iterator[int]:
    # Below the kernel's ephemeral range (32768+), where outgoing connections take their
    # ports: a port the OS lent for `bind(0)` could be taken by the other xdist worker's
    # connections before the service bound it (seen: "address already in use"). Each
    # worker of a run walks a block of its own; the pid spreads concurrent runs within it.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    block = 10_000 + (int(worker) % 10 if worker.isdigit() else 0) * 2_000
    offset = (os.getpid() % 20) * 100
    while True:
        yield from range(block + offset, block + 2_000)
        offset = 0


_PORTS = _port_block()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on, from this process's block."""
    for port in _PORTS:
        with closing(socket.socket()) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("unreachable")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with closing(socket.socket()) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class ServiceProcess:
    """One service running as its own OS process, as in production."""

    name: str
    env: dict[str, str]
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)
    _terminated: bool = field(default=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def partitions_held(self) -> int:
        """hrcase_partitions_held on this process's own metrics port (0 when absent):
        how many of its service's partitions it holds the lease of."""
        port = self.env[f"{self.name.upper()}_METRICS_PORT"]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        held = 0.0
        for line in text.splitlines():
            if line.startswith("hrcase_partitions_held{"):
                held += float(line.rsplit(" ", 1)[1])
        return int(held)

    def start(self, wait: bool = True) -> ServiceProcess:
        self._log = self.log_path.open("ab")
        self._terminated = False
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log_path}")
            try:
                if httpx.get(f"{self.base_url}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout}s: see {self.log_path}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def request_stop(self) -> None:
        """SIGTERM (a graceful shutdown) without waiting for it: a system asks all its
        services first, then `stop()` waits for each, so they shut down side by side."""
        if self.proc and self.proc.poll() is None and not self._terminated:
            self.proc.terminate()
            self._terminated = True

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.request_stop()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log:
            self._log.close()


def service_env(database_url: str, rabbitmq_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # Audit's signing key and checkpoints stay out of the repo's var/ during tests.
    audit_dir = Path(tempfile.gettempdir()) / f"hrcase-audit-{RUN_ID}"
    env.update(
        {
            "DATABASE_URL": database_url,
            "RABBITMQ_URL": rabbitmq_url,
            "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            "AUDIT_CHECKPOINT_DIR": str(audit_dir / "checkpoints"),
            "AUDIT_SIGNING_KEY_FILE": str(audit_dir / "keys" / "checkpoint-signing.key"),
        }
    )
    env.update(extra)
    return env


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    """Poll with a deadline (tests of a running system never sleep a fixed time)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")
