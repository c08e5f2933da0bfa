"""The fake unit of work keeps the real one's contract: events only from committed blocks."""

from __future__ import annotations

import pytest

from shared.envelope import Actor
from shared.events import RoutingPolicyLoaded, make_event
from shared.uow import FakeUnitOfWork, NotInTransaction


def _event() -> object:
    return make_event(
        RoutingPolicyLoaded(policy_hash="a" * 64, version=1, source="default.yaml"),
        producer="routing",
        actor=Actor(type="service", id="routing"),
        case_id=None,
    )


async def test_events_of_a_committed_block_are_kept() -> None:
    uow = FakeUnitOfWork(conn="repository")
    event = _event()
    async with uow:
        assert uow.conn == "repository"
        await uow.emit(event)  # type: ignore[arg-type]
        assert uow.emitted == []  # not before the commit
    assert uow.emitted == [event] and uow.commits == 1 and uow.rollbacks == 0


async def test_events_of_a_failed_block_are_dropped() -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(RuntimeError):
        async with uow:
            await uow.emit(_event())  # type: ignore[arg-type]
            raise RuntimeError("refused")
    assert uow.emitted == [] and uow.commits == 0 and uow.rollbacks == 1


async def test_outside_a_block_there_is_no_connection_and_no_emit() -> None:
    uow = FakeUnitOfWork(conn="repository")
    with pytest.raises(NotInTransaction):
        _ = uow.conn
    with pytest.raises(NotInTransaction):
        await uow.emit(_event())  # type: ignore[arg-type]


async def test_a_unit_of_work_is_not_entered_twice_at_once() -> None:
    uow = FakeUnitOfWork()
    async with uow:
        with pytest.raises(RuntimeError, match="already open"):
            await uow.__aenter__()
    async with uow:  # but again after it left
        pass
    assert uow.commits == 2
