"""Scrubbing JSON documents of a read model down to a case's anonymous skeleton.

Used when a case's personal data is erased (`privacy.retention_erased`): every string of
a JSON document is replaced by the erased marker except under the keys of the skeleton
(`keeps_json_key`: ids other than employee ids, instants, dates, states, kinds, roles).
One rule for every service: intake (`services/intake/adapters/case_scrub_sql.py`) and the
other services' read models.
"""

from __future__ import annotations

from typing import Any

from shared.privacy.fields import ERASED

_KEEP_KEYS = frozenset(
    {"id", "kind", "role", "status", "state", "category", "team", "priority", "sensitivity"}
    | {"channel", "clock", "stage", "process", "ending", "finding", "decision", "consent"}
    | {"from_status", "to_status", "time_zone", "strategy", "request_type", "outcome"}
)
_KEEP_SUFFIXES = ("_at", "_on", "_due", "_state", "_status", "_minutes", "_hours", "_days")


def keeps_json_key(key: str) -> bool:
    """Whether a JSON value under `key` belongs to the anonymous skeleton."""
    if "employee" in key or "email" in key or "name" in key:
        return False
    return key in _KEEP_KEYS or key.endswith(_KEEP_SUFFIXES) or key.endswith("_id")


def scrub_json(value: Any, *, keep: bool = False) -> Any:
    """`value` with every string outside the skeleton's keys replaced by ERASED
    (numbers, booleans and nulls stay; the shape stays)."""
    if isinstance(value, dict):
        return {k: scrub_json(v, keep=keeps_json_key(str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_json(v, keep=keep) for v in value]
    if isinstance(value, str) and not keep:
        return ERASED
    return value
