"""The inbound-message claim on the real database: Message-ID and content digest together."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from services.intake.adapters import email_store as store


def new_id() -> str:
    return f"<{uuid.uuid4()}@example.com>"


async def claim(admin_pool, message_id: str, digest: str) -> bool:
    async with admin_pool.acquire() as conn, conn.transaction():
        return await store.claim_message(conn, message_id, digest)


async def test_only_the_same_id_and_digest_is_a_redelivery(admin_pool) -> None:
    message_id = new_id()
    assert await claim(admin_pool, message_id, "a" * 64)
    assert not await claim(admin_pool, message_id, "a" * 64)  # re-delivery
    assert await claim(admin_pool, message_id, "b" * 64)  # another message, same id


async def test_concurrent_deliveries_of_one_message_claim_it_once(admin_pool) -> None:
    message_id = new_id()
    results = await asyncio.gather(*(claim(admin_pool, message_id, "c" * 64) for _ in range(6)))
    assert sorted(results) == [False] * 5 + [True]


async def test_rows_from_before_digests_stand_for_their_message_while_it_may_be_retried(
    admin_pool,
) -> None:
    recent, old = new_id(), new_id()
    await admin_pool.executemany(
        "INSERT INTO intake.email_messages (message_id, direction, recorded_at)"
        " VALUES ($1, 'inbound', now() - $2::interval)",
        [(recent, timedelta(hours=2)), (old, store.LEGACY_REDELIVERY_WINDOW + timedelta(hours=1))],
    )
    assert not await claim(admin_pool, recent, "d" * 64)  # a retry of the legacy message
    assert await claim(admin_pool, old, "d" * 64)  # long past any retry: a new message
    # The acknowledgement Message-IDs we expect (digest '') never swallow inbound mail.
    expected = new_id()
    await admin_pool.execute(
        "INSERT INTO intake.email_messages (message_id, direction) VALUES ($1, 'notification')",
        expected,
    )
    assert await claim(admin_pool, expected, "e" * 64)
