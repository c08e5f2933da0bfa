"""Demo data: a handful of realistic cases submitted through the public API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

DEMO_FILE = Path(__file__).with_name("demo_cases.yaml")


def seed_demo_cases(intake_url: str) -> list[dict[str, Any]]:
    """Submit the demo cases; each carries an Idempotency-Key so reseeding changes nothing."""
    cases = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))
    accepted = []
    with httpx.Client(base_url=intake_url, timeout=10) as client:
        for case in cases:
            body = {k: case[k] for k in ("subject", "description", "reporter")}
            response = client.post(
                "/api/v1/cases", json=body, headers={"Idempotency-Key": case["key"]}
            )
            response.raise_for_status()
            accepted.append(response.json())
    return accepted
