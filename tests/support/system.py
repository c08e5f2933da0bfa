"""The whole system as separate OS processes, wired to the test database and vhost."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hrcase.mailsink import MailSink
from shared.settings import SERVICES
from tests.support.bus import KEY_STORE_DATABASES
from tests.support.infra import ServiceProcess, free_port, port_open, service_env, wait_for


@dataclass
class RunningSystem:
    services: dict[str, ServiceProcess]
    mail: MailSink
    database_url: str
    rabbitmq_url: str
    metrics_ports: dict[str, int] = field(default_factory=dict)
    # Intake's SMTP listener: a free port of this system's own, never the developer's 2525.
    smtp_port: int = 0
    # The services' environment, and the extra replicas `add_replica` started.
    env: dict[str, str] = field(default_factory=dict)
    replicas: list[ServiceProcess] = field(default_factory=list)
    logs_dir: Path | None = None

    def add_replica(self, service: str, index: int, **extra_env: str) -> ServiceProcess:
        """Start another replica of `service` (HTTP and metrics ports of its own, consumer
        priority rotation `index`: BUS_REPLICA_INDEX); not waited for (`wait_ready`).
        Stopped with the system."""
        port = free_port()
        env = {
            **self.env,
            f"{service.upper()}_HTTP_PORT": str(port),
            f"{service.upper()}_METRICS_PORT": str(free_port()),
            # A second SMTP listener on the same port would not start.
            "INTAKE_SMTP_PORT": str(free_port()),
            "BUS_REPLICA_INDEX": str(index),
            **extra_env,
        }
        logs = self.logs_dir or Path(".")
        replica = ServiceProcess(service, env, port, logs / f"{service}-replica-{index}.log")
        self.replicas.append(replica)
        return replica.start(wait=False)

    def url(self, service: str) -> str:
        return self.services[service].base_url

    def metrics_url(self, service: str) -> str:
        """Prometheus metrics: their own port on localhost, not the public HTTP port."""
        return f"http://127.0.0.1:{self.metrics_ports[service]}/metrics"

    def client(self, service: str, headers: dict[str, str] | None = None) -> httpx.Client:
        """An HTTP client for one service; pass `auth_headers(...)` to act as someone."""
        return httpx.Client(base_url=self.url(service), timeout=10, headers=headers)


@contextmanager
def running_system(
    database_url: str,
    rabbitmq_url: str,
    logs_dir: Path,
    *,
    only: tuple[str, ...] = SERVICES,
    mail_in_process: bool = True,
    **extra_env: str,
) -> Iterator[RunningSystem]:
    """Start a mail sink and the given services; stop everything afterwards."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    mail_port = free_port()
    ports = {name: free_port() for name in SERVICES}
    metrics_ports = {name: free_port() for name in SERVICES}
    smtp_port = int(extra_env.get("INTAKE_SMTP_PORT") or free_port())
    env = service_env(
        database_url,
        rabbitmq_url,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(mail_port),
        **{f"{name.upper()}_HTTP_PORT": str(port) for name, port in ports.items()},
        # Links in notification mails point at this system's intake (unless a test says).
        **{f"{name.upper()}_METRICS_PORT": str(port) for name, port in metrics_ports.items()},
        **{
            "PORTAL_BASE_URL": f"http://127.0.0.1:{ports['intake']}",
            "INTAKE_SMTP_PORT": str(smtp_port),
            **extra_env,
        },
    )
    # Tests read mail from an in-process sink; the benchmark keeps the sink in its own
    # process so it does not compete with the load generator for the GIL.
    mail = MailSink(host="127.0.0.1", port=mail_port)
    sink_process = None
    if mail_in_process:
        mail.start()
    else:
        sink_process = subprocess.Popen(
            [sys.executable, "-m", "hrcase.mailsink", "--port", str(mail_port)],
            env={**env, "LOG_LEVEL": "WARNING"},
        )
        wait_for(lambda: port_open(mail_port), what="mail sink listening")
    services = {
        name: ServiceProcess(name, env, ports[name], logs_dir / f"{name}.log") for name in SERVICES
    }
    KEY_STORE_DATABASES.append(database_url)
    system: RunningSystem | None = None
    try:
        for name in only:
            services[name].start(wait=False)
        for name in only:
            services[name].wait_ready()
        system = RunningSystem(
            services, mail, database_url, rabbitmq_url, metrics_ports, smtp_port, env=env
        )
        system.logs_dir = logs_dir
        yield system
    finally:
        KEY_STORE_DATABASES.remove(database_url)
        extra = system.replicas if system is not None else []
        for process in [*services.values(), *extra]:
            process.request_stop()
        for process in [*services.values(), *extra]:
            process.stop()
        if sink_process:
            sink_process.terminate()
            sink_process.wait(10)
        else:
            mail.stop()
