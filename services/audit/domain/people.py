"""Names for the ids a case's log mentions, from what its own events say (pure).

Events carry staff as `{id, name, email}` (an owner, an escalation target) and the
reporter as `{employee_id, name, email}`; actors are ids only. The console shows a name
next to an id where the case's log itself names that person.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.audit.domain.chain import ChainEntry, stored_object


def _named(value: Any, id_key: str) -> tuple[str, str] | None:
    if isinstance(value, dict) and isinstance(value.get(id_key), str):
        name = value.get("name")
        if isinstance(name, str) and name:
            return value[id_key], name
    return None


def known_names(entries: Iterable[ChainEntry]) -> dict[str, str]:
    """id -> name, the latest an event gave (an id the log never names is absent)."""
    names: dict[str, str] = {}
    for entry in entries:
        payload = stored_object(entry.payload)[0] or {}
        for value, key in (
            (payload.get("owner"), "id"),
            (payload.get("escalated_to"), "id"),
            (payload.get("reporter"), "employee_id"),
        ):
            found = _named(value, key)
            if found:
                names[found[0]] = found[1]
    return names
