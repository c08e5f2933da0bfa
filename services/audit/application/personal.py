"""Personal data in the log, opened for display only.

The log keeps (and hashes) the sealed tokens events arrived with (shared.privacy): that
is what `hrcase audit verify` walks, so destroying a key never breaks the chain. The
console, the API's timeline and state, and a case file's readable parts show the clear
text, opened here with audit's key store; every key fetched is logged in
privacy_keys.key_access with the reader and the view as its purpose. A value whose key
is destroyed shows as ERASED ("[erased]"); a token that does not open (or no key store)
is shown as stored, sealed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from services.audit.domain.chain import ChainEntry, canonical_json, stored_object
from shared.privacy.keys import KeyStore
from shared.privacy.sealing import SealedDataError, open_payload


async def opened_entries(
    keys: KeyStore | None, entries: Sequence[ChainEntry], *, purpose: str
) -> list[ChainEntry]:
    """`entries` with their payloads' personal fields opened, for display: not for
    hashing (an opened entry's computed hash is not its entry_hash)."""
    if keys is None:
        return list(entries)
    found: dict[tuple[str, str], bytes | None] = {}
    shown: list[ChainEntry] = []
    for entry in entries:
        payload, problem = stored_object(entry.payload)
        if payload is None or problem is not None:
            shown.append(entry)
            continue
        try:
            opened = await open_payload(
                keys, entry.event_type, payload, entry.case_id, purpose=purpose, found=found
            )
        except (SealedDataError, ValueError):
            shown.append(entry)  # shown sealed, as stored
            continue
        if opened is payload:
            shown.append(entry)
        else:
            shown.append(dataclasses.replace(entry, payload=canonical_json(opened)))
    return shown
