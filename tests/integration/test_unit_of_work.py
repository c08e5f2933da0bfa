"""PostgresUnitOfWork on the real database: one transaction, outbox rows, wake on commit."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import pytest

from shared.consumer import HandlerContext
from shared.envelope import Actor
from shared.events import RoutingPolicyLoaded, make_event
from shared.outbox import OutboxBuffer, UndeclaredEvent, enqueue, take_written
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
            # Buffered: its row is written with the block's other events at the commit.
            raise Rollback
    # The block rolled back: no state change, no event, nothing woken.
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
    async with uow:
        await uow.conn.execute(f"INSERT INTO {scratch} VALUES (1)")
        await uow.emit(event)  # type: ignore[arg-type]
    assert await _count(admin_pool, f"SELECT count(*) FROM {scratch}") == 1
    assert (
        await _count(
            admin_pool,
            "SELECT count(*) FROM routing.outbox WHERE event_id = $1",
            event.event_id,  # type: ignore[attr-defined]
        )
        == 1
    )
    assert woken == [True]


async def test_outbox_rows_keep_emit_order_with_helpers_that_enqueue_themselves(
    admin_pool: asyncpg.Pool,
) -> None:
    """Emits are buffered to one INSERT before the commit; a helper writing the outbox
    itself on the block's connection (intake's open_case) writes the buffered ones first,
    so outbox id order (publish order) is the order the block recorded them."""
    events = [_policy_loaded() for _ in range(5)]
    uow = PostgresUnitOfWork(admin_pool, "routing")
    async with uow:
        await uow.emit(events[0], events[1])  # type: ignore[arg-type]
        await enqueue(uow.conn, "routing", events[2])  # type: ignore[arg-type]
        await uow.emit(events[3])  # type: ignore[arg-type]
        await uow.emit(events[4])  # type: ignore[arg-type]
    rows = await admin_pool.fetch(
        "SELECT event_id FROM routing.outbox WHERE event_id = ANY($1::uuid[]) ORDER BY id",
        [e.event_id for e in events],  # type: ignore[attr-defined]
    )
    assert [r["event_id"] for r in rows] == [e.event_id for e in events]  # type: ignore[attr-defined]


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
    # A rolled-back block's emits were never written (buffered until the commit), so the
    # next commit without events wakes nothing either.
    async with uow:
        await uow.conn.execute(f"INSERT INTO {scratch} VALUES (3)")
    assert asked == [False, True, False, False]
    await admin_pool.execute(
        "DELETE FROM routing.outbox WHERE event_id = $1",
        event.event_id,  # type: ignore[attr-defined]
    )


async def test_a_handlers_emits_are_one_outbox_write_before_the_commit(
    admin_pool: asyncpg.Pool,
) -> None:
    """The consumer's transaction (shared.consumer._apply) buffers what its handler
    emits, also through a context a handler wraps around `ctx` without the buffer
    (routing's statutory-clock observer): nothing is in the outbox until the flush, then
    every event is, in emit order."""
    cause = _policy_loaded()
    async with admin_pool.acquire() as conn, conn.transaction():
        outbox = OutboxBuffer(conn, "routing")
        with outbox.active():
            ctx = HandlerContext(cause, conn, "routing", "routing", outbox)  # type: ignore[arg-type]
            wrapped = HandlerContext(cause, conn, "routing", "routing")  # type: ignore[arg-type]
            payload = RoutingPolicyLoaded(policy_hash="c" * 64, version=2, source="uow-test")
            emitted = [
                await ctx.emit(payload),
                await wrapped.emit(payload),
                await ctx.emit(payload),
            ]
            ids = [e.event_id for e in emitted]
            query = (
                "SELECT event_id FROM routing.outbox WHERE event_id = ANY($1::uuid[]) ORDER BY id"
            )
            assert await conn.fetch(query, ids) == []
            await outbox.flush()
            assert [r["event_id"] for r in await conn.fetch(query, ids)] == ids
            await conn.execute("DELETE FROM routing.outbox WHERE event_id = ANY($1::uuid[])", ids)
