"""Demo data: a handful of realistic cases submitted through the public API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from shared.auth import TokenService
from shared.settings import Settings, get_settings

DEMO_FILE = Path(__file__).with_name("demo_cases.yaml")
# Routing's employee directory for the demo: HR staff (with their managers, so the
# conflict-of-interest rule has a chain to follow) and the demo identities.
DEMO_DIRECTORY = Path(__file__).with_name("demo_directory.csv")


async def seed_demo_directory(settings: Settings) -> int:
    """Load the demo directory into routing's tables (upsert: reseeding changes nothing;
    nobody else is marked inactive). Returns how many employees were loaded."""
    import asyncpg

    from services.routing.adapters.directory_csv import parse_directory_csv
    from services.routing.application.directory import import_directory
    from shared.uow import PostgresUnitOfWork

    employees = parse_directory_csv(DEMO_DIRECTORY.read_text(encoding="utf-8"), str(DEMO_DIRECTORY))
    pool = await asyncpg.create_pool(
        settings.service_database_url("routing"), min_size=1, max_size=1
    )
    try:
        await import_directory(PostgresUnitOfWork(pool, "routing"), employees, full_export=False)
    finally:
        await pool.close()
    return len(employees)


def seed_demo_cases(intake_url: str) -> list[dict[str, Any]]:
    """Submit the demo cases; each carries an Idempotency-Key so reseeding changes nothing.

    Each case is raised by its reporter, with a development token minted for them.
    """
    cases = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))
    tokens = TokenService.from_settings(get_settings())
    accepted = []
    with httpx.Client(base_url=intake_url, timeout=10) as client:
        for case in cases:
            body = {k: case[k] for k in ("subject", "description", "reporter")}
            reporter = case["reporter"]
            token = tokens.mint(
                f"demo-{reporter['employee_id']}",
                ["employee"],
                employee_id=reporter["employee_id"],
                name=reporter["name"],
            )
            headers = {"Idempotency-Key": case["key"], "Authorization": f"Bearer {token}"}
            response = client.post("/api/v1/cases", json=body, headers=headers)
            response.raise_for_status()
            accepted.append(response.json())
    return accepted
