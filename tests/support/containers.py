"""Where the tests' RabbitMQ and Postgres come from: the local services or pinned containers.

`choose_infrastructure` is the rule (pure, unit-tested): a component gets a container only
when its URL (RABBITMQ_URL / DATABASE_URL) is not set AND a Docker engine answers;
otherwise the tests use the URL, or the local default, as they always did (CI here has no
Docker engine). `start_containers` starts what was chosen with testcontainers and returns
the environment to use (URLs, and a `rabbitmqctl` on PATH that runs inside the broker's
container, so the per-run vhost and broker users are made the same way as locally).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Pinned: a test run is reproducible, and a new broker/database version is a deliberate change.
RABBITMQ_IMAGE = "rabbitmq:3.13.7-management-alpine"
POSTGRES_IMAGE = "postgres:16.4-alpine"
# RabbitMQ refuses `guest` from anything but loopback, and a container's port is not loopback.
CONTAINER_RABBITMQ_USER = "hrcase-admin"


@dataclass(frozen=True)
class InfrastructureChoice:
    """Which components run in containers this session, and why (shown in the header)."""

    rabbitmq_container: bool
    postgres_container: bool
    reason: str

    @property
    def any_container(self) -> bool:
        return self.rabbitmq_container or self.postgres_container


def choose_infrastructure(env: Mapping[str, str], docker_reachable: bool) -> InfrastructureChoice:
    """Containers only for a component whose URL is unset, and only with a Docker engine."""
    rabbit_set = bool(env.get("RABBITMQ_URL", "").strip())
    database_set = bool(env.get("DATABASE_URL", "").strip())
    if not docker_reachable:
        return InfrastructureChoice(False, False, "no Docker engine: local services")
    reason = ", ".join(
        f"{name}: {'URL given' if given else 'container'}"
        for name, given in (("RabbitMQ", rabbit_set), ("Postgres", database_set))
    )
    return InfrastructureChoice(not rabbit_set, not database_set, reason)


def docker_reachable(timeout: float = 2.0) -> bool:
    """True when a Docker engine answers a ping (DOCKER_HOST or the default socket)."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=int(max(timeout, 1)))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextlib.contextmanager
def start_containers(choice: InfrastructureChoice) -> Iterator[dict[str, str]]:
    """Start the chosen containers; yield environment updates; stop them afterwards."""
    env: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        if choice.postgres_container:
            env.update(stack.enter_context(_postgres()))
        if choice.rabbitmq_container:
            env.update(stack.enter_context(_rabbitmq()))
        yield env


@contextlib.contextmanager
def _postgres() -> Iterator[dict[str, str]]:
    from testcontainers.postgres import PostgresContainer

    container: Any = PostgresContainer(
        POSTGRES_IMAGE, username="postgres", password="postgres", dbname="hrcase", driver=None
    )
    # Trust, like the local server: the services' own roles connect without passwords.
    container.with_env("POSTGRES_HOST_AUTH_METHOD", "trust")
    with container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(5432)
        yield {"DATABASE_URL": f"postgresql://postgres@{host}:{port}/hrcase"}


@contextlib.contextmanager
def _rabbitmq() -> Iterator[dict[str, str]]:
    from testcontainers.rabbitmq import RabbitMqContainer

    container: Any = RabbitMqContainer(
        RABBITMQ_IMAGE, username=CONTAINER_RABBITMQ_USER, password=CONTAINER_RABBITMQ_USER
    )
    with container, tempfile.TemporaryDirectory(prefix="hrcase-ctl-") as shim_dir:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(5672)
        container_id = container.get_wrapped_container().id
        yield {
            "RABBITMQ_URL": (
                f"amqp://{CONTAINER_RABBITMQ_USER}:{CONTAINER_RABBITMQ_USER}@{host}:{port}/"
            ),
            "PATH": f"{rabbitmqctl_shim(Path(shim_dir), container_id)}{os.pathsep}"
            + os.environ.get("PATH", ""),
        }


def rabbitmqctl_shim(directory: Path, container_id: str) -> Path:
    """A `rabbitmqctl` that runs in the container (stdin passed: import_definitions)."""
    shim = directory / "rabbitmqctl"
    shim.write_text(f'#!/bin/sh\nexec docker exec -i {container_id} rabbitmqctl "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return directory
