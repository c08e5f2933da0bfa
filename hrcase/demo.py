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


async def publish_demo_directory(settings: Settings) -> int:
    """Publish the demo directory on the bus as the HR system's feed would
    (`directory.employee_updated`, producer `directory`, over its own broker user), so every
    consumer of the feed (notifications keeps the addresses on file) knows the demo people.
    Repeating it changes nothing. Returns how many records were published."""
    import aio_pika

    from services.routing.adapters.directory_csv import parse_directory_csv
    from shared.bus import build_message
    from shared.envelope import Actor
    from shared.events import DirectoryEmployeeUpdated, make_event
    from shared.topology import EXCHANGE

    employees = parse_directory_csv(DEMO_DIRECTORY.read_text(encoding="utf-8"), str(DEMO_DIRECTORY))
    connection = await aio_pika.connect_robust(settings.service_rabbitmq_url("directory"))
    async with connection, connection.channel(publisher_confirms=True) as channel:
        exchange = await channel.get_exchange(EXCHANGE, ensure=False)
        for employee in employees:
            envelope = make_event(
                DirectoryEmployeeUpdated(
                    employee_id=employee.employee_id,
                    name=employee.name,
                    email=employee.email,
                    manager_id=employee.manager_id,
                    department=employee.department,
                    active=employee.active,
                ),
                producer="directory",
                actor=Actor(type="system", id="demo-directory"),
                case_id=None,
            )
            await exchange.publish(
                build_message(
                    envelope.to_json_bytes(),
                    event_id=str(envelope.event_id),
                    event_type=envelope.event_type,
                    correlation_id=None,
                    user_id=settings.rabbitmq_user("directory"),
                ),
                routing_key=envelope.event_type,
            )
    return len(employees)


def demo_case_body(case: dict[str, Any]) -> dict[str, Any]:
    """The API body of one demo case (hrcase/demo_cases.yaml): subject, description and
    reporter, and for the injury claim its category and injury facts (which make a case
    conference required)."""
    body = {k: case[k] for k in ("subject", "description", "reporter")}
    return body | {k: case[k] for k in ("category", "injury") if k in case}


def seed_demo_cases(intake_url: str) -> list[dict[str, Any]]:
    """Submit the demo cases; each carries an Idempotency-Key so reseeding changes nothing.

    Each case is raised by its reporter, with a development token minted for them.
    """
    cases = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))
    tokens = TokenService.from_settings(get_settings())
    accepted = []
    with httpx.Client(base_url=intake_url, timeout=10) as client:
        for case in cases:
            body = demo_case_body(case)
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
