"""deploy/compose.yaml: valid against the Compose Specification's JSON schema (as vendored
by check-jsonschema; and `docker compose config` where the Compose plugin is installed),
a broken file is refused, and each service is wired as it runs: its command, its real
health endpoint, its start order, a read-only root, the broker's definitions loaded."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from shared.settings import DEFAULT_HTTP_PORTS, SERVICES, rabbitmq_user
from tests.deploy.manifests import DEPLOY

COMPOSE = DEPLOY / "compose.yaml"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text("utf-8"))
    return loaded


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_compose_file_matches_the_compose_specification() -> None:
    done = check_jsonschema(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_compose_file_is_refused(tmp_path: Path) -> None:
    text = COMPOSE.read_text("utf-8")
    broken = tmp_path / "compose.yaml"
    # A start condition Compose does not know.
    broken.write_text(
        text.replace("condition: service_completed_successfully", "condition: service_done"),
        "utf-8",
    )
    done = check_jsonschema(broken)
    assert done.returncode == 1
    assert "service_done" in done.stdout


def _docker_compose() -> list[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI: `docker compose config` cannot run (schema check above)")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("the docker CLI has no Compose plugin (schema check above)")
    return [docker, "compose"]


def test_docker_compose_config_accepts_the_file() -> None:
    done = subprocess.run(
        [*_docker_compose(), "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_each_service_runs_its_module_checks_its_health_and_waits_for_its_dependencies() -> None:
    services = compose()["services"]
    for name in SERVICES:
        service = services[name]
        assert service["command"] == ["python", "-m", f"services.{name}"]
        probe = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{DEFAULT_HTTP_PORTS[name]}/health/ready" in probe
        conditions = {k: v["condition"] for k, v in service["depends_on"].items()}
        assert conditions["migrate"] == "service_completed_successfully"
        assert conditions["rabbitmq"] == conditions["postgres"] == "service_healthy"
        assert service["read_only"] is True
        assert service["user"] == "10001:10001"
        assert service["cap_drop"] == ["ALL"]
        assert "/tmp" in service["tmpfs"]
    assert services["migrate"]["command"] == ["hrcase", "migrate"]
    assert services["notifications"]["environment"]["SMTP_HOST"] == "mailpit"
    assert "8025:8025" in services["mailpit"]["ports"]


def test_the_broker_loads_the_generated_definitions_with_every_service_user() -> None:
    broker = compose()["services"]["rabbitmq"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in broker["volumes"]}
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text("utf-8")
    settings = dict(
        line.split(" = ", 1) for line in conf.splitlines() if line and not line.startswith("#")
    )
    assert settings["load_definitions"] == mounts["./rabbitmq/definitions.json"]
    assert mounts["./rabbitmq/rabbitmq.conf"] == "/etc/rabbitmq/rabbitmq.conf"
    definitions = yaml.safe_load((DEPLOY / "rabbitmq" / "definitions.json").read_text("utf-8"))
    users = {u["name"] for u in definitions["users"]}
    assert {rabbitmq_user(s) for s in SERVICES} <= users


def test_postgres_creates_each_service_role_with_the_password_the_service_uses() -> None:
    services = compose()["services"]
    postgres = services["postgres"]["environment"]
    init = [v for v in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init and (DEPLOY / init[0].split(":")[0]).is_file()
    for name in SERVICES:
        key = f"{name.upper()}_DATABASE_PASSWORD"
        assert services[name]["environment"][key] == postgres[key]


def test_audit_keeps_checkpoints_and_its_key_on_volumes() -> None:
    audit = compose()["services"]["audit"]
    targets = {v.split(":")[1] for v in audit["volumes"]}
    dockerfile = (DEPLOY / "Dockerfile").read_text("utf-8")
    image_env = dict(
        part.split("=", 1)
        for part in dockerfile.replace("\\\n", " ").split()
        if part.startswith("AUDIT_")
    )
    assert image_env["AUDIT_CHECKPOINT_DIR"] in targets
    assert str(PurePosixPath(image_env["AUDIT_SIGNING_KEY_FILE"]).parent) in targets
