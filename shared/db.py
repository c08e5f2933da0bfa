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
