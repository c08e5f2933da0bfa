"""The whole system as separate OS processes, wired to the test database and vhost."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from hrcase.mailsink import MailSink
from shared.settings import SERVICES
from tests.support.infra import ServiceProcess, free_port, service_env


@dataclass
class RunningSystem:
    services: dict[str, ServiceProcess]
    mail: MailSink
    database_url: str
    rabbitmq_url: str

    def url(self, service: str) -> str:
        return self.services[service].base_url

    def client(self, service: str) -> httpx.Client:
        return httpx.Client(base_url=self.url(service), timeout=10)


@contextmanager
def running_system(
    database_url: str,
    rabbitmq_url: str,
    logs_dir: Path,
    *,
    only: tuple[str, ...] = SERVICES,
    **extra_env: str,
) -> Iterator[RunningSystem]:
    """Start a mail sink and the given services; stop everything afterwards."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    mail_port = free_port()
    ports = {name: free_port() for name in SERVICES}
    env = service_env(
        database_url,
        rabbitmq_url,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(mail_port),
        **{f"{name.upper()}_HTTP_PORT": str(port) for name, port in ports.items()},
        **extra_env,
    )
    mail = MailSink(host="127.0.0.1", port=mail_port)
    mail.start()
    services = {
        name: ServiceProcess(name, env, ports[name], logs_dir / f"{name}.log") for name in SERVICES
    }
    try:
        for name in only:
            services[name].start(wait=False)
        for name in only:
            services[name].wait_ready()
        yield RunningSystem(services, mail, database_url, rabbitmq_url)
    finally:
        for process in services.values():
            process.stop()
        mail.stop()
