"""Helpers for the audit tests (importable; conftest.py holds the fixtures)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from shared.envelope import Actor, Envelope, new_envelope


def make_envelope(
    *,
    case_id: UUID | None = None,
    event_type: str = "audittest.something_happened",
    payload: dict[str, Any] | None = None,
    producer: str = "audit-tests",
    caused_by: Envelope | None = None,
) -> Envelope:
    return new_envelope(
        event_type=event_type,
        schema_version=1,
        payload=payload if payload is not None else {"n": 1, "note": "Grievance — résumé ✓"},
        producer=producer,
        actor=Actor(type="agent", id="agent-7"),
        case_id=case_id,
        caused_by=caused_by,
    )


async def wait_until(
    predicate: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, what: str = "condition"
) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")
