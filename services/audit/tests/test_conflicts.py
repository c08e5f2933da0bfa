"""append_batch tells a redelivery (duplicate) from another event under a used event_id."""

from __future__ import annotations

import asyncpg

from services.audit.adapters.sql import append_batch
from services.audit.domain.chain import ChainEntry
from services.audit.entrypoints.cli import verify_connection
from services.audit.tests.support import make_envelope
from shared.envelope import utcnow


async def test_same_event_id_with_other_content_is_a_conflict_not_a_duplicate(
    scratch_conn: asyncpg.Connection, scratch_chain: list[ChainEntry]
) -> None:
    original = make_envelope(payload={"note": "the statement as given"})
    altered = original.model_copy(update={"payload": {"note": "a rewritten statement"}})
    relabelled = original.model_copy(update={"producer": "routing"})
    # Within one batch: the first is written, the copy is a duplicate, the other a conflict.
    result = await append_batch(scratch_conn, [original, original, altered], utcnow())
    assert [e.event_id for e in result.appended] == [original.event_id]
    assert result.duplicates == [original.event_id]
    assert result.conflicts == [2]
    # Against the log: a redelivery is a duplicate, any changed member a conflict (a repeat
    # within the batch is judged against the log too, not against the batch's first).
    later = make_envelope()
    result = await append_batch(scratch_conn, [relabelled, later, original, altered], utcnow())
    assert [e.event_id for e in result.appended] == [later.event_id]
    assert result.duplicates == [original.event_id]
    assert sorted(result.conflicts) == [0, 3]
    stored = await scratch_conn.fetchval(
        "SELECT payload::text FROM audit.log WHERE event_id = $1", original.event_id
    )
    assert stored == '{"note":"the statement as given"}'
    assert (await verify_connection(scratch_conn)).ok
