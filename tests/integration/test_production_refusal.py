"""ENVIRONMENT=production with the development token signing key refuses to start
(issue 8, item 16): every service process and the `hrcase` CLI exit non-zero at once,
saying why, before touching the database or the broker.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shared.settings import DEV_JWT_SECRET, SERVICES
from tests.support.infra import ROOT, free_port

STRONG_KEY = "a-production-signing-key-of-forty-characters"


def _env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("AUTH_JWT_SECRET", None)
    env.update(
        {
            # Nowhere to connect: a process that got past the check would fail differently.
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere",
            "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1/",
            "PYTHONUNBUFFERED": "1",
            **{f"{s.upper()}_HTTP_PORT": str(free_port()) for s in SERVICES},
        }
    )
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


# The key unset (the built-in default) or set to the published value; any spelling of
# "production".
UNSAFE = [
    {"ENVIRONMENT": "production", "AUTH_JWT_SECRET": None},
    {"ENVIRONMENT": "production", "AUTH_JWT_SECRET": DEV_JWT_SECRET},
    {"ENVIRONMENT": "Production ", "AUTH_JWT_SECRET": None},
]


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("changes", UNSAFE[:2], ids=["unset", "published"])
def test_service_refuses_to_start(service: str, changes: dict[str, str | None]) -> None:
    result = _run(["-m", f"services.{service}"], _env(**changes))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "refusing to start: ENVIRONMENT=production" in result.stderr
    assert "AUTH_JWT_SECRET" in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["token", "mint", "--subject", "u-1", "--role", "admin"],
        ["audit", "verify", "--no-checkpoints"],
        ["migrate"],
    ],
    ids=["token-mint", "audit-verify", "migrate"],
)
@pytest.mark.parametrize("changes", UNSAFE, ids=["unset", "published", "spelled-Production"])
def test_cli_refuses_to_start(argv: list[str], changes: dict[str, str | None]) -> None:
    result = _run(["-m", "hrcase.cli", *argv], _env(**changes))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "refusing to start: ENVIRONMENT=production" in result.stderr
    assert result.stdout == ""  # no token minted, nothing done


def test_a_real_key_in_production_is_accepted() -> None:
    result = _run(
        ["-m", "hrcase.cli", "token", "mint", "--subject", "u-1", "--role", "admin"],
        _env(ENVIRONMENT="production", AUTH_JWT_SECRET=STRONG_KEY),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(".") == 2  # a JWT


def test_a_short_key_is_refused_in_any_environment() -> None:
    result = _run(["-m", "services.routing"], _env(AUTH_JWT_SECRET="short"))
    assert result.returncode == 2
    assert "shorter than 32 characters" in result.stderr
