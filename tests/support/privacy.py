"""Reading sealed personal data in tests as a service with key-store access does."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.privacy.keys import KeyStore, key_store_url
from shared.privacy.sealing import open_payload
from shared.settings import Settings


async def opened_payload(
    database_url: str, event_type: str, payload: dict[str, Any], case_id: UUID | str | None
) -> dict[str, Any]:
    """`payload` (as stored or sent: personal fields sealed) with those fields opened with
    the key store of the database at `database_url` (admin URL); "[erased]" where a key
    is destroyed."""
    keys = await KeyStore.open(key_store_url(Settings(database_url=database_url)), service="tests")
    try:
        return await open_payload(
            keys,
            event_type,
            payload,
            UUID(str(case_id)) if case_id is not None else None,
            purpose="test reads a stored payload",
        )
    finally:
        await keys.close()
