"""Intake's handle on the key store (shared.privacy.keys): opened on first use with the
key store's own role, closed with the service."""

from __future__ import annotations

import asyncio

from shared.privacy.keys import KeyStore, key_store_url
from shared.service import Runtime

_STATE = "privacy_key_store"
_LOCK = "privacy_key_store_lock"


async def key_store(runtime: Runtime) -> KeyStore:
    """The service's KeyStore (service name "intake"); raises asyncpg errors when the key
    store cannot be reached."""
    lock = runtime.state.setdefault(_LOCK, asyncio.Lock())
    async with lock:
        store = runtime.state.get(_STATE)
        if store is None:
            store = await KeyStore.open(key_store_url(runtime.settings), service="intake")
            runtime.state[_STATE] = store
            runtime.closers.append(store.close)
    assert isinstance(store, KeyStore)
    return store
