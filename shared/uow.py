"""The unit of work: one transaction, the events it emits, and the relay woken on commit.

Use cases in a service's `application/` open every transaction through it:

    async with uow:
        row = await sql.get_case(uow.conn, case_id)
        await uow.emit(event)        # into the outbox, in this transaction
    # committed: the outbox relay has been woken

Leaving the block by an exception rolls back the state change and the emitted events
together, and nothing is woken. A unit of work is single-use per block but may be entered
again after it has left (each entry is a new transaction); it is not shared between
concurrent tasks, so entrypoints create one per request (`unit_of_work(runtime)`).

`FakeUnitOfWork` is the seam for unit tests: no database, events collected in memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

import asyncpg

from shared.envelope import Envelope
from shared.outbox import OutboxBuffer

if TYPE_CHECKING:
    from shared.service import Runtime


class UnitOfWork(Protocol):
    """What a use case needs: a connection in a transaction and a way to emit events."""

    @property
    def conn(self) -> Any: ...

    async def emit(self, *events: Envelope) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class NotInTransaction(RuntimeError):
    """`conn` or `emit` was used outside `async with uow:`."""


class PostgresUnitOfWork:
    """A pooled connection in a transaction; emitted events go to `<schema>.outbox`.

    `on_commit` (the relay's wake-up) runs after every successful commit, not only after
    `emit`: helpers that write the outbox on `uow.conn` themselves (intake's `open_case`)
    are not missed (the runtime's wake-up skips a commit whose task enqueued nothing:
    shared.outbox.take_written). It must not raise.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        *,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._on_commit = on_commit
        self._conn: asyncpg.Connection | None = None
        self._tx: Any = None
        self._outbox: OutboxBuffer | None = None
        self._scope = contextlib.ExitStack()

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise NotInTransaction("use the connection inside `async with uow:`")
        return self._conn

    async def emit(self, *events: Envelope) -> None:
        """Record `events` in the outbox inside this transaction: written with the
        block's other events by one statement just before the commit (shared.outbox.
        OutboxBuffer). Raises UndeclaredEvent at once for a type this service may not
        publish."""
        if self._outbox is None:
            raise NotInTransaction("emit inside `async with uow:`")
        self._outbox.add(*events)

    async def __aenter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError("a unit of work is already open; create one per task")
        conn = await self._pool.acquire()
        try:
            tx = conn.transaction()
            await tx.start()
        except BaseException:
            await self._pool.release(conn)
            raise
        self._conn, self._tx = conn, tx
        self._outbox = self._scope.enter_context(OutboxBuffer(conn, self._schema).active())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, tx, outbox = self._conn, self._tx, self._outbox
        assert conn is not None and tx is not None and outbox is not None
        committed = False
        try:
            if exc_type is None:
                try:
                    await outbox.flush()
                except BaseException:
                    await tx.rollback()
                    raise
                await tx.commit()
                committed = True
            else:
                await tx.rollback()
        finally:
            self._conn, self._tx, self._outbox = None, None, None
            self._scope.close()
            await self._pool.release(conn)
        if committed and self._on_commit is not None:
            self._on_commit()


def unit_of_work(runtime: Runtime) -> PostgresUnitOfWork:
    """A fresh unit of work on the service's own schema, waking its outbox relay."""
    return PostgresUnitOfWork(runtime.pool, runtime.name, on_commit=runtime.wake_relay)


class FakeUnitOfWork:
    """In-memory unit of work for unit tests: no database, events collected.

    `emitted` holds the events of committed blocks only; `commits` and `rollbacks` count
    blocks. `conn` is whatever fake the test hands in (a repository double), or None.
    """

    def __init__(self, conn: Any = None) -> None:
        self._conn = conn
        self._open = False
        self._pending: list[Envelope] = []
        self.emitted: list[Envelope] = []
        self.commits = 0
        self.rollbacks = 0

    @property
    def conn(self) -> Any:
        if not self._open:
            raise NotInTransaction("use the connection inside `async with uow:`")
        return self._conn

    async def emit(self, *events: Envelope) -> None:
        if not self._open:
            raise NotInTransaction("emit inside `async with uow:`")
        self._pending.extend(events)

    async def __aenter__(self) -> Self:
        if self._open:
            raise RuntimeError("a unit of work is already open; create one per task")
        self._open, self._pending = True, []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._open = False
        if exc_type is None:
            self.emitted.extend(self._pending)
            self.commits += 1
        else:
            self.rollbacks += 1
        self._pending = []
