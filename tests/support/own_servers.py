"""A RabbitMQ node and a Postgres cluster private to one test, which it may stop, kill and
restart: the machine's broker (5672) and database (5432) are shared with other runs and
must never be restarted by a test.

    with own_rabbitmq(tmp / "rabbit") as broker, own_postgres() as pg:
        broker.restart()            # stop the node, start it again on the same data dir
        pg.restart(mode="immediate")  # a crash-like stop (no shutdown checkpoint)

Both come from the installed servers (Debian paths, or RABBITMQ_SBIN / PG_BINDIR):
`MissingServer` says which binary is missing and how to install it.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.support.infra import RUN_ID, free_port, port_open

# Debian/Ubuntu packages: rabbitmq-server keeps the unwrapped scripts here (the ones on
# PATH switch to the `rabbitmq` user and its node); postgresql-<major> keeps its tools here.
RABBITMQ_SBIN = Path(os.environ.get("RABBITMQ_SBIN", "/usr/lib/rabbitmq/bin"))
PG_BINDIRS = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin")
START_TIMEOUT = float(os.environ.get("HRCASE_OWN_SERVER_START_TIMEOUT", "90"))


class MissingServer(RuntimeError):
    """A server binary the test needs is not installed."""


def _pg_bindir() -> Path:
    configured = os.environ.get("PG_BINDIR")
    candidates = [Path(configured)] if configured else []
    for pattern in PG_BINDIRS:
        root = Path(pattern.split("*")[0])
        if "*" in pattern and root.is_dir():
            # The newest major first (e.g. /usr/lib/postgresql/15/bin).
            majors = sorted(
                (p for p in root.iterdir() if p.name.isdigit()), key=lambda p: -int(p.name)
            )
            candidates += [p / "bin" for p in majors]
        elif "*" not in pattern:
            candidates.append(Path(pattern))
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    raise MissingServer(
        "Postgres server binaries (initdb, pg_ctl) not found in "
        f"{', '.join(str(c) for c in candidates) or '/usr/lib/postgresql/<major>/bin'}:"
        " install postgresql (Debian: apt-get install postgresql) or set PG_BINDIR"
    )


def _rabbitmq_scripts() -> tuple[Path, Path]:
    server, ctl = RABBITMQ_SBIN / "rabbitmq-server", RABBITMQ_SBIN / "rabbitmqctl"
    if not (server.is_file() and ctl.is_file()):
        raise MissingServer(
            f"rabbitmq-server/rabbitmqctl not found in {RABBITMQ_SBIN}: install"
            " rabbitmq-server (Debian: apt-get install rabbitmq-server) or set RABBITMQ_SBIN"
        )
    return server, ctl


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class OwnRabbitMQ:
    """A single RabbitMQ node of the test's own: its port, node name, data and cookie.

    The node runs as the current user with HOME in its directory (its own Erlang cookie),
    no plugins (no management port to clash with the machine's), and ignores
    /etc/rabbitmq. Quorum queues on one node survive its restart on the same data dir."""

    directory: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    node: str = field(default_factory=lambda: f"hrcase-fault-{RUN_ID}-{secrets.token_hex(3)}")
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.server, self.ctl_path = _rabbitmq_scripts()
        self.node = f"{self.node}@localhost"
        self.directory.mkdir(parents=True, exist_ok=True)
        cookie = self.directory / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(20).upper())
            cookie.chmod(0o400)
        (self.directory / "rabbitmq-env.conf").write_text("")
        (self.directory / "enabled_plugins").write_text("[].\n")
        (self.directory / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n")

    @property
    def env(self) -> dict[str, str]:
        d = self.directory
        return {
            **os.environ,
            "HOME": str(d),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def url(self, vhost: str = "/", user: str = "guest", password: str = "guest") -> str:
        path = "/" + quote(vhost, safe="") if vhost != "/" else "/"
        return (
            f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}{path}"
        )

    def ctl(self, *args: str, timeout: float = 60, check: bool = True) -> str:
        """`rabbitmqctl -n <node> ...`; its stdout. RuntimeError with its output if it fails."""
        done = subprocess.run(
            [str(self.ctl_path), "-q", "-n", self.node, *args],
            env=self.env,
            capture_output=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl {' '.join(args)} on {self.node} failed ({done.returncode}): "
                + (done.stderr or done.stdout).decode(errors="replace")[:800]
            )
        return done.stdout.decode(errors="replace")

    def start(self) -> None:
        """Start the node and wait until it accepts AMQP connections."""
        log = (self.directory / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [str(self.server)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"RabbitMQ node {self.node} exited ({self.proc.returncode}):\n"
                    + _tail(self.directory / "server.log")
                )
            # The AMQP listener opens last in the boot; the node answering the CLI as
            # started confirms it (the CLI may not reach a node that just registered).
            if port_open(self.port) and self.running():
                return
            time.sleep(0.2)
        raise TimeoutError(
            f"RabbitMQ node {self.node} not up after {START_TIMEOUT}s:\n"
            + _tail(self.directory / "server.log")
        )

    def running(self) -> bool:
        """The node answers the CLI and its RabbitMQ application is running."""
        return self.ctl("eval", "rabbit:is_running().", check=False).strip() == "true"

    def stop(self) -> None:
        """A clean shutdown (`rabbitmqctl stop`), waiting for the node's process to end."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.ctl("stop", check=False)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the node: its script and the Erlang VM (a process group of their own;
        the VM's helper programs exit with it)."""
        if self.proc is None:
            return
        with suppress(ProcessLookupError):  # the group may be gone already
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        # The kernel closes a killed VM's sockets a moment later: a start before that
        # would meet the old listener (and the old name in epmd).
        deadline = time.monotonic() + 10
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def import_definitions(self, definitions: Mapping[str, Any]) -> None:
        """Users, vhosts, permissions and topology (RabbitMQ's definitions format)."""
        path = self.directory / "definitions.json"
        path.write_text(json.dumps(definitions))
        self.ctl("import_definitions", str(path))

    def queue_depths(self, vhost: str) -> dict[str, int]:
        """Ready + unacknowledged messages per queue of `vhost`."""
        out = self.ctl("list_queues", "-p", vhost, "--no-table-headers", "name", "messages")
        depths = {}
        for line in out.splitlines():
            name, _, count = line.rpartition("\t")
            if name and count.strip().isdigit():
                depths[name] = int(count)
        return depths


@contextmanager
def own_rabbitmq(directory: Path) -> Iterator[OwnRabbitMQ]:
    """A started private node; stopped (killed if it does not stop) afterwards."""
    broker = OwnRabbitMQ(directory)
    broker.start()
    try:
        yield broker
    finally:
        try:
            broker.stop()
        finally:
            broker.kill()


@dataclass
class OwnPostgres:
    """A Postgres cluster of the test's own (initdb in a temporary directory), trust auth
    on 127.0.0.1 and its own port. As root, the server runs as the `postgres` user
    (initdb refuses root); otherwise as the current user."""

    directory: Path
    port: int = field(default_factory=free_port)
    max_connections: int = 200

    def __post_init__(self) -> None:
        self.bindir = _pg_bindir()
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.owner = "postgres" if os.geteuid() == 0 else None
        if self.owner:
            try:
                entry = pwd.getpwnam(self.owner)
            except KeyError as exc:
                raise MissingServer(
                    "running as root needs a `postgres` user to own the cluster"
                ) from exc
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        command = [str(self.bindir / tool), *args]
        if self.owner:
            command = ["runuser", "-u", self.owner, "--", *command]
        done = subprocess.run(command, capture_output=True, timeout=timeout, cwd=self.directory)
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed ({done.returncode}): "
                + (done.stderr or done.stdout).decode(errors="replace")[:800]
                + "\n"
                + _tail(self.log)
            )

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self.directory}"
            f" -c max_connections={self.max_connections}"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
            "-t", str(int(START_TIMEOUT)), "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast|smart|immediate` (immediate: no shutdown checkpoint, WAL
        recovery on the next start, as after a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "immediate", pause: float = 0.0) -> None:
        self.stop(mode)
        time.sleep(pause)
        self.start()


@contextmanager
def own_postgres(max_connections: int = 200) -> Iterator[OwnPostgres]:
    """A started private cluster, stopped and removed afterwards. Its directory is made
    under the system's temporary directory (the server's user must reach it)."""
    directory = Path(tempfile.mkdtemp(prefix=f"hrcase-pg-{RUN_ID}-"))
    try:
        server = OwnPostgres(directory, max_connections=max_connections)
        server.init()
        server.start()
        try:
            yield server
        finally:
            try:
                server.stop("fast")
            except RuntimeError:
                server.stop("immediate")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
