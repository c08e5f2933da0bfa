"""asyncpg pools: one per service, connected as the service's own database role."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without the default reset query (CLOSE ALL, UNLISTEN, RESET ALL, unlocks).

    asyncpg still rolls back an open transaction first. Services keep no session state
    (no LISTEN, session advisory locks, SET or held cursors), so the extra round trip on
    every release would buy nothing: it was a visible share of each event's cost.
    """


async def create_pool(dsn: str, *, size: int = 10, json_codecs: bool = True) -> asyncpg.Pool:
    """A pool; JSON columns decode to Python unless `json_codecs` is off (raw text)."""
    kwargs: dict[str, Any] = {
        "min_size": 1,
        "max_size": size,
        "command_timeout": 30,
        "reset": _keep_session,
    }
    if json_codecs:
        kwargs["init"] = _init_connection
    pool = await asyncpg.create_pool(dsn, **kwargs)
    assert pool is not None
    return pool


# The database is unreachable for a while (restart, failover, network, connection slots
# full): the error says nothing about the work being done, which will succeed once it is
# back. (08: connection exceptions; 57P01-03: shutdown or starting up; 53300.)
UNREACHABLE_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, broken pipe (not every OSError: a missing file is not)
    asyncpg.PostgresConnectionError,  # incl. ConnectionDoesNotExistError
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)
# How long work waits in place for an unreachable database before failing as usual.
UNREACHABLE_WAIT_SECONDS = 300.0


def database_unreachable(exc: BaseException) -> bool:
    """True when `exc` means "the database cannot be reached now", not "this work failed":
    a connection refused, reset or closed under a query, a server shutting down or still
    starting, or no free connection slot."""
    if isinstance(exc, UNREACHABLE_ERRORS):
        return True
    # asyncpg's plain InterfaceError for a transaction whose connection the server dropped.
    return isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc)


def unreachable_pause(attempt: int) -> float:
    """Seconds to wait before the `attempt`-th retry (1, 2, ...) against an unreachable
    database: 0.2 s doubling, at most 5 s."""
    return min(0.2 * 2.0 ** (attempt - 1), 5.0)
