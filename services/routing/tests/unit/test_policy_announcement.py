"""announce_policy through the unit-of-work seam: once per content, nothing on failure."""

from __future__ import annotations

from typing import Any

import pytest

from services.routing.application.policy import announce_policy
from services.routing.domain.policy import load_policy
from shared.events import RoutingPolicyLoaded
from shared.uow import FakeUnitOfWork

POLICY = load_policy()


class PolicyLoads:
    """In-memory stand-in for routing.policy_loads (unique by content hash)."""

    def __init__(self) -> None:
        self.hashes: set[str] = set()

    async def record(self, conn: Any, policy_hash: str, version: int, source: str) -> bool:
        if policy_hash in self.hashes:
            return False
        self.hashes.add(policy_hash)
        return True


async def test_a_policy_is_announced_once_per_content() -> None:
    loads, uow = PolicyLoads(), FakeUnitOfWork()
    assert await announce_policy(uow, POLICY, "default.yaml", record_load=loads.record)
    assert not await announce_policy(uow, POLICY, "default.yaml", record_load=loads.record)
    assert uow.commits == 2
    [event] = uow.emitted
    assert event.event_type == "routing.policy_loaded"
    assert event.producer == "routing" and event.case_id is None
    payload = RoutingPolicyLoaded.model_validate(event.payload)
    assert payload.policy_hash == POLICY.source_hash
    assert payload.version == POLICY.version
    assert payload.source == "default.yaml"


async def test_a_failed_recording_emits_nothing() -> None:
    async def broken(conn: Any, policy_hash: str, version: int, source: str) -> bool:
        raise ConnectionError("database away")

    uow = FakeUnitOfWork()
    with pytest.raises(ConnectionError):
        await announce_policy(uow, POLICY, "default.yaml", record_load=broken)
    assert uow.emitted == [] and uow.rollbacks == 1 and uow.commits == 0
