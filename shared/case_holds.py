"""Per-case holds: a case whose event was dead-lettered takes no later event until the
dead-lettered ones are applied, in the order they were dead-lettered.

A consumer (shared.consumer.EventConsumer) that dead-letters an authenticated event of a
case records it in `<schema>.case_holds` (one row per held event; `position` gives the
order). While a case has rows, only its first held event (the *head*) may be applied;
applying it deletes its row in the same transaction. Any other event of the case is not
applied: it is dead-lettered with `x-error-type: CaseHeld`, its `x-error` naming the head,
and appended to the rows, so nothing passes unnoticed and nothing is lost. Replaying a
case's dead letters in dead-letter order (`hrcase dlq replay SERVICE --case ID`) applies
them one after the other and lifts the hold; an operator who decides the head is never to
be applied releases it (`hrcase holds release`), and the next row becomes the head.

The table (created by each consuming service's migration):
    case_id uuid, event_id uuid, position bigint identity, event_type text,
    error_type text, reason text, held_at timestamptz, failed_at timestamptz,
    PRIMARY KEY (case_id, event_id)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from prometheus_client import Gauge

from shared.envelope import Envelope
from shared.errors import PermanentError
from shared.metrics import Probe

CASES_HELD = Gauge(
    "hrcase_cases_held",
    "Cases whose events this service does not apply until their dead-lettered events are"
    " replayed (shared.case_holds); read from the database every METRICS_REFRESH_INTERVAL",
    ["service"],
)
EVENTS_HELD = Gauge(
    "hrcase_events_held",
    "Events in this service's dead-letter queue that hold a case (the blocking ones and"
    " those dead-lettered behind them)",
    ["service"],
)


class CaseHeld(PermanentError):
    """The event's case is held behind an earlier dead-lettered event: not applied."""

    def __init__(self, message: str, head: HeldEvent) -> None:
        super().__init__(message)
        self.head = head


@dataclass(frozen=True)
class HeldEvent:
    """One row of `<schema>.case_holds`: an event of a held case, in its dead letter queue."""

    case_id: UUID
    event_id: UUID
    position: int
    event_type: str
    error_type: str
    reason: str
    held_at: datetime
    failed_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> HeldEvent:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def held_reason(service: str, head: HeldEvent) -> str:
    """The x-error of an event dead-lettered behind `head`."""
    return (
        f"case {head.case_id} is held behind event {head.event_id} ({head.event_type}),"
        f" dead-lettered by {service} at {head.failed_at.isoformat()} with"
        f" {head.error_type}: {head.reason[:300]}; not applied. Replay the case's dead"
        f" letters in order once the cause is fixed (hrcase dlq replay {service}"
        f" --case {head.case_id}), or release that event (hrcase holds release)"
    )


async def check_hold(
    conn: asyncpg.Connection, schema: str, service: str, envelope: Envelope
) -> bool:
    """Inside the event's transaction, before its handler: may this event be applied?

    Returns True when the event is its held case's head (the caller applies it; its row is
    already deleted in this transaction, so the hold lifts with the commit when it was the
    last), False when the case is not held. Raises CaseHeld when the case is held behind
    another event. Rows of the case are locked (FOR UPDATE) so that two transactions
    cannot both take the head.
    """
    if envelope.case_id is None:
        return False
    row = await conn.fetchrow(
        f"SELECT * FROM {schema}.case_holds WHERE case_id = $1 ORDER BY position LIMIT 1"
        " FOR UPDATE",
        envelope.case_id,
    )
    if row is None:
        return False
    head = HeldEvent.from_row(row)
    if head.event_id != envelope.event_id:
        raise CaseHeld(held_reason(service, head), head)
    await conn.execute(
        f"DELETE FROM {schema}.case_holds WHERE case_id = $1 AND event_id = $2",
        head.case_id,
        head.event_id,
    )
    return True


async def record_hold(
    pool: asyncpg.Pool, schema: str, envelope: Envelope, *, error_type: str, reason: str
) -> None:
    """After the event's transaction rolled back: hold its case behind it (appended to the
    case's rows; a row already there keeps its place and takes the latest reason)."""
    assert envelope.case_id is not None
    await pool.execute(
        f"INSERT INTO {schema}.case_holds (case_id, event_id, event_type, error_type, reason)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (case_id, event_id) DO UPDATE"
        " SET error_type = EXCLUDED.error_type, reason = EXCLUDED.reason, failed_at = now()",
        envelope.case_id,
        envelope.event_id,
        envelope.event_type,
        error_type,
        reason[:2000],
    )


async def list_holds(conn: asyncpg.Connection | asyncpg.Pool, schema: str) -> list[HeldEvent]:
    """Every held event of `schema`, by case and then in dead-letter order."""
    rows = await conn.fetch(f"SELECT * FROM {schema}.case_holds ORDER BY case_id, position")
    return [HeldEvent.from_row(row) for row in rows]


async def release(
    conn: asyncpg.Connection | asyncpg.Pool,
    schema: str,
    case_id: UUID,
    event_id: UUID | None = None,
) -> int:
    """An operator's decision: stop waiting for `event_id` (or for every held event of the
    case when None). Returns the rows deleted. The released events stay in the DLQ; a
    released event replayed later is applied as any other (the inbox drops a duplicate)."""
    if event_id is None:
        result = await conn.execute(f"DELETE FROM {schema}.case_holds WHERE case_id = $1", case_id)
    else:
        result = await conn.execute(
            f"DELETE FROM {schema}.case_holds WHERE case_id = $1 AND event_id = $2",
            case_id,
            event_id,
        )
    return int(result.split()[-1])


def case_holds_probe(service: str, schema: str, pool: asyncpg.Pool) -> Probe:
    """MetricsRefresher probe: hrcase_cases_held and hrcase_events_held of `schema`."""

    async def probe() -> None:
        row = await pool.fetchrow(
            f"SELECT count(DISTINCT case_id) AS cases, count(*) AS events FROM {schema}.case_holds"
        )
        assert row is not None
        CASES_HELD.labels(service).set(row["cases"])
        EVENTS_HELD.labels(service).set(row["events"])

    return probe
