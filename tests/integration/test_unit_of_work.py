"""PostgresUnitOfWork on the real database: one transaction, outbox rows, wake on commit."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import pytest

from shared.envelope import Actor
from shared.events import RoutingPolicyLoaded, make_event
from shared.outbox import UndeclaredEvent, take_written
from shared.uow import NotInTransaction, PostgresUnitOfWork


class Rollback(Exception):
    pass


def _policy_loaded() -> object:
    return make_event(
        RoutingPolicyLoaded(policy_hash=uuid4().hex * 2, version=1, source="uow-test"),
        producer="routing",
        actor=Actor(type="service", id="routing"),
        case_id=None,
    )


@pytest.fixture
async def scratch(admin_pool: asyncpg.Pool) -> str:
    table = f"public.uow_{uuid4().hex[:12]}"
    await admin_pool.execute(f"CREATE TABLE {table} (n int)")
    return table


async def _count(pool: asyncpg.Pool, sql: str, *args: object) -> int:
    return int(await pool.fetchval(sql, *args))


async def test_a_committed_block_keeps_its_writes_and_wakes_the_relay(
    admin_pool: asyncpg.Pool, scratch: str
) -> None:
    woken: list[bool] = []
    uow = PostgresUnitOfWork(admin_pool, "routing", on_commit=lambda: woken.append(True))
    async with uow:
        await uow.conn.execute(f"INSERT INTO {scratch} VALUES (1)")
        assert woken == []
    assert await _count(admin_pool, f"SELECT count(*) FROM {scratch}") == 1
    assert woken == [True]
    with pytest.raises(NotInTransaction):
        _ = uow.conn


async def test_emitted_events_are_outbox_rows_of_the_same_transaction(
    admin_pool: asyncpg.Pool, scratch: str
) -> None:
    woken: list[bool] = []
    uow = PostgresUnitOfWork(admin_pool, "routing", on_commit=lambda: woken.append(True))
    event = _policy_loaded()
    with pytest.raises(Rollback):
        async with uow:
            await uow.conn.execute(f"INSERT INTO {scratch} VALUES (1)")
            await uow.emit(event)  # type: ignore[arg-type]
            seen = await uow.conn.fetchval(
                "SELECT count(*) FROM routing.outbox WHERE event_id = $1",
                event.event_id,  # type: ignore[attr-defined]
            )
            assert seen == 1  # written inside the transaction...
            raise Rollback
    # ...and gone with it: state change and event roll back together, nothing is woken.
    assert await _count(admin_pool, f"SELECT count(*) FROM {scratch}") == 0
    assert (
        await _count(
            admin_pool,
            "SELECT count(*) FROM routing.outbox WHERE event_id = $1",
            event.event_id,  # type: ignore[attr-defined]
        )
        == 0
    )
    assert woken == []


async def test_an_undeclared_event_rolls_the_whole_block_back(
    admin_pool: asyncpg.Pool, scratch: str
) -> None:
    # An event of another producer: the broker would refuse it, so enqueue refuses it.
    forged = make_event(
        RoutingPolicyLoaded(policy_hash="b" * 64, version=1, source="uow-test"),
        producer="intake",
        actor=Actor(type="service", id="intake"),
        case_id=None,
    )
    uow = PostgresUnitOfWork(admin_pool, "routing")
    with pytest.raises(UndeclaredEvent):
        async with uow:
            await uow.conn.execute(f"INSERT INTO {scratch} VALUES (1)")
            await uow.emit(forged)
    assert await _count(admin_pool, f"SELECT count(*) FROM {scratch}") == 0


async def test_the_connection_goes_back_to_the_pool(admin_pool: asyncpg.Pool) -> None:
    size = admin_pool.get_size()
    for _ in range(size * 3):  # more blocks than connections: none is leaked
        async with PostgresUnitOfWork(admin_pool, "routing") as uow:
            await uow.conn.execute("SELECT 1")
    assert admin_pool.get_idle_size() == admin_pool.get_size()


async def test_the_relay_is_woken_only_after_a_commit_that_wrote_events(
    admin_pool: asyncpg.Pool, scratch: str
) -> None:
    """The runtime's wake-up (shared.service.Runtime.wake_relay) asks `take_written`: a
    commit without events, as most events intake consumes, costs no empty relay pass."""
    asked: list[bool] = []
    uow = PostgresUnitOfWork(admin_pool, "routing", on_commit=lambda: asked.append(take_written()))
    event = _policy_loaded()
    async with uow:
        await uow.conn.execute(f"INSERT INTO {scratch} VALUES (1)")
    async with uow:
        await uow.emit(event)  # type: ignore[arg-type]
    async with uow:
        await uow.conn.execute(f"INSERT INTO {scratch} VALUES (2)")
    with pytest.raises(Rollback):
        async with uow:
            await uow.emit(_policy_loaded())  # type: ignore[arg-type]
            raise Rollback
    # After a rolled-back emit the next commit wakes the relay for nothing: one empty
    # pass, never a missed event.
    async with uow:
        await uow.conn.execute(f"INSERT INTO {scratch} VALUES (3)")
    assert asked == [False, True, False, True]
    await admin_pool.execute(
        "DELETE FROM routing.outbox WHERE event_id = $1",
        event.event_id,  # type: ignore[attr-defined]
    )
