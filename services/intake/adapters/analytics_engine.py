"""The dashboard's query engine: an in-process DuckDB replica of intake.case_analytics.

Why DuckDB: the dashboard's figures are medians, p90s and group counts over up to a
million fact rows per question. Postgres answers them from the same table in 0.7-1.2 s per
percentile query (row store, one core per query); DuckDB's columnar, vectorised engine
answers them in tens of milliseconds (bench/analytics.py measures both in one run).
Postgres stays the one source of truth; this replica is a rebuildable cache.

How it stays exact: every fact row carries a `version` from a sequence, taken on each
insert and update. Before each answer the engine pulls the rows with a version above the
highest it holds (`COPY ... TO STDOUT` as CSV into a temporary file, then DuckDB's
delete-then-insert of those cases' rows from `read_csv(...)`), so every answer is as fresh as
Postgres at the moment it was asked. The first use loads every row the same way.

Versions are taken in statement order but committed in transaction order, so a watermark
alone could skip a row committed late with a lower version. Writers therefore hold a
shared advisory lock (VERSION_LOCK) for their transaction; the sync takes it exclusively
for an instant and reads the sequence: every version up to that value is committed (or
rolled back), so "version <= high" is complete and `high` becomes the next watermark.

Bounded memory: the database file lives under a cache directory (ANALYTICS_CACHE_DIR,
default a fresh temporary directory) with DuckDB's memory_limit (ANALYTICS_MEMORY_LIMIT),
spilling to disk beyond it. One engine per process; an asyncio lock serialises syncs and
queries, which run in a worker thread (asyncio.to_thread) off the event loop.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

if TYPE_CHECKING:
    # Imported when an engine is made (the first dashboard or the warm-up), not when
    # intake starts: the library alone is about 56 MB of a process's RSS.
    import duckdb

T = TypeVar("T")

# The advisory lock key fact writers share (adapters/analytics_sql.py) and the sync takes.
VERSION_LOCK = 0x13_A7A1


# The fact row as CSV: timestamps as microseconds since the epoch (UTC) and respondent ids
# joined by the unit separator, so the CSV holds plain numbers and text only.
def _us(column: str) -> str:
    return f"(extract(epoch FROM {column}) * 1000000)::bigint AS {column}"


EXPORT_SQL = f"""SELECT case_id, category, channel, team, department, reporter_key,
    array_to_string(respondent_ids, chr(31)) AS respondent_ids, restricted, status,
    {_us("submitted_at")}, {_us("first_response_at")}, {_us("first_response_due")},
    first_response_working_s, first_response_met, {_us("resolved_at")},
    {_us("resolution_due")}, resolution_working_s, resolution_met, reopen_count,
    first_response_breached, resolution_breached, escalations, process, stage, conference,
    version
    FROM intake.case_analytics WHERE version > $1 AND version <= $2"""

CSV_COLUMNS = {
    "case_id": "UUID",
    "category": "VARCHAR",
    "channel": "VARCHAR",
    "team": "VARCHAR",
    "department": "VARCHAR",
    "reporter_key": "VARCHAR",
    "respondent_ids": "VARCHAR",
    "restricted": "BOOLEAN",
    "status": "VARCHAR",
    "submitted_at": "BIGINT",
    "first_response_at": "BIGINT",
    "first_response_due": "BIGINT",
    "first_response_working_s": "BIGINT",
    "first_response_met": "BOOLEAN",
    "resolved_at": "BIGINT",
    "resolution_due": "BIGINT",
    "resolution_working_s": "BIGINT",
    "resolution_met": "BOOLEAN",
    "reopen_count": "INTEGER",
    "first_response_breached": "BOOLEAN",
    "resolution_breached": "BOOLEAN",
    "escalations": "INTEGER",
    "process": "VARCHAR",
    "stage": "VARCHAR",
    "conference": "VARCHAR",
    "version": "BIGINT",
}
TIMESTAMPS = (
    "submitted_at",
    "first_response_at",
    "first_response_due",
    "resolved_at",
    "resolution_due",
)

# The replica: timestamps are naive UTC (no time-zone extension needed). No primary key:
# DuckDB's index would cost more to keep than the delete-then-insert of a delta (_load).
CREATE_SQL = """CREATE TABLE IF NOT EXISTS facts (
    case_id UUID NOT NULL, category VARCHAR, channel VARCHAR, team VARCHAR,
    department VARCHAR, reporter_key VARCHAR, respondent_ids VARCHAR[], restricted BOOLEAN,
    status VARCHAR, submitted_at TIMESTAMP, first_response_at TIMESTAMP,
    first_response_due TIMESTAMP, first_response_working_s BIGINT, first_response_met BOOLEAN,
    resolved_at TIMESTAMP, resolution_due TIMESTAMP, resolution_working_s BIGINT,
    resolution_met BOOLEAN, reopen_count INTEGER, first_response_breached BOOLEAN,
    resolution_breached BOOLEAN, escalations INTEGER, process VARCHAR, stage VARCHAR,
    conference VARCHAR, version BIGINT)"""


def _select_from_csv(path: Path) -> str:
    types = ", ".join(f"'{name}': '{kind}'" for name, kind in CSV_COLUMNS.items())
    columns = []
    for name in CSV_COLUMNS:
        if name in TIMESTAMPS:
            columns.append(f"make_timestamp({name}) AS {name}")
        elif name == "respondent_ids":
            columns.append(
                "CASE WHEN coalesce(respondent_ids, '') = '' THEN []::VARCHAR[]"
                " ELSE string_split(respondent_ids, chr(31)) END AS respondent_ids"
            )
        else:
            columns.append(name)
    source = f"read_csv('{path}', header = true, columns = {{{types}}}, nullstr = '')"
    return f"SELECT {', '.join(columns)} FROM {source}"


class AnalyticsEngine:
    """The process's replica. `read(pool, query)` syncs, then runs `query(connection)` in a
    worker thread and returns its result; `close()` drops the cache."""

    def __init__(self, cache_dir: str | None = None, *, memory_limit: str = "256MB") -> None:
        base = Path(cache_dir) if cache_dir else None
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        import duckdb

        self._dir = Path(tempfile.mkdtemp(prefix="hrcase-analytics-", dir=base))
        self._db = duckdb.connect(
            str(self._dir / "case_analytics.duckdb"),
            config={"memory_limit": memory_limit, "threads": max(1, min(4, os.cpu_count() or 1))},
        )
        self._db.execute(CREATE_SQL)
        self._watermark = 0
        self._lock = asyncio.Lock()
        self.rows_held = 0

    @property
    def watermark(self) -> int:
        return self._watermark

    async def read(self, pool: asyncpg.Pool, query: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """`query`'s answer over the replica brought up to date with Postgres first."""
        async with self._lock:
            await self._sync(pool)
            return await asyncio.to_thread(query, self._db)

    async def _sync(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            async with conn.transaction():
                # Every writer holding the shared lock has committed once we hold it.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", VERSION_LOCK)
                seq = await conn.fetchrow(
                    "SELECT last_value, is_called FROM intake.case_analytics_version_seq"
                )
            high = int(seq["last_value"]) if seq["is_called"] else 0
            if high < self._watermark:  # the database was rebuilt: so is the replica
                await asyncio.to_thread(self._db.execute, "DELETE FROM facts")
                self._watermark = 0
            if high == self._watermark:
                return
            path = self._dir / f"delta-{self._watermark}-{high}.csv"
            try:
                await conn.copy_from_query(
                    EXPORT_SQL, self._watermark, high, output=str(path), format="csv", header=True
                )
                self.rows_held = await asyncio.to_thread(self._load, path, self._watermark)
            finally:
                await asyncio.to_thread(path.unlink, missing_ok=True)
            self._watermark = high

    def _load(self, path: Path, watermark: int) -> int:
        """Apply the delta in `path`: its cases' rows replaced (the first load: inserted)."""
        self._db.execute("BEGIN")
        try:
            if watermark == 0:
                self._db.execute(f"INSERT INTO facts {_select_from_csv(path)}")
            else:
                self._db.execute(f"CREATE TEMP TABLE delta AS {_select_from_csv(path)}")
                self._db.execute("DELETE FROM facts WHERE case_id IN (SELECT case_id FROM delta)")
                self._db.execute("INSERT INTO facts SELECT * FROM delta")
                self._db.execute("DROP TABLE delta")
            row = self._db.execute("SELECT count(*) FROM facts").fetchone()
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._db.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def rows_of(result: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return result.fetchall()
