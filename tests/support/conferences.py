"""Case conference helpers for tests that drive a conference past its planning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

# How long after its planning the conference "took place": short, so that the instant is
# already past when the test records attendance at "now".
_AFTER_PLANNING = timedelta(minutes=1)


async def conference_day_has_come(
    database_url_or_pool: str | asyncpg.Pool, conference_id: UUID | str
) -> datetime:
    """Make a planned conference's scheduled start lie in the past, so that attendance
    recorded at "now" passes routing's hold rule (not before the scheduled start, less
    `conferences.hold_early_minutes`).

    Days cannot pass in a test: this simulates the passage of time in routing's own table,
    as the timer tests move an action's due instant (`routing.conference_actions.due_at`).
    It sets the `scheduled_for` of the plan (jsonb) in `routing.conferences` — the only
    place routing reads the scheduled start from — to one minute after the row's
    `planned_at`, or to now if that is sooner, so it is never before the planning nor in
    the future. Intake's projection and the mails already sent keep the original date.

    `database_url_or_pool`: the admin database URL (asyncpg DSN) or an asyncpg pool on it.
    Returns the new scheduled start (UTC). Raises AssertionError when routing has no such
    conference or it is no longer planned (wait for `conference.planned` first).
    """
    if isinstance(database_url_or_pool, str):
        conn = await asyncpg.connect(database_url_or_pool)
        try:
            return await _move(conn, UUID(str(conference_id)))
        finally:
            await conn.close()
    async with database_url_or_pool.acquire() as conn:
        return await _move(conn, UUID(str(conference_id)))


async def _move(conn: asyncpg.Connection, conference_id: UUID) -> datetime:
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT status, planned_at, now() AS now FROM routing.conferences"
            " WHERE conference_id = $1 FOR UPDATE",
            conference_id,
        )
        assert row is not None, f"routing has no conference {conference_id}"
        assert row["status"] == "planned", f"conference {conference_id} is {row['status']}"
        planned_at: datetime = row["planned_at"]
        now: datetime = row["now"]
        start = min(planned_at + _AFTER_PLANNING, now).astimezone(UTC)
        # The plan column holds ConferencePlan.model_dump(mode="json"): ISO 8601 text.
        await conn.execute(
            "UPDATE routing.conferences"
            " SET plan = jsonb_set(plan, '{scheduled_for}', to_jsonb($2::text))"
            " WHERE conference_id = $1",
            conference_id,
            start.isoformat().replace("+00:00", "Z"),
        )
    return start
