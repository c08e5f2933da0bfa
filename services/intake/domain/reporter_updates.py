"""Which lifecycle moves a reporter sees on their case and follow-up pages. Pure.

The same rule as the reporter's mails (services/notifications/domain/notices.py): they
hear of in progress, waiting on them, resolved, closed and a reopening, and of the reason
staff gave only for waiting (what HR needs), resolved and closed (the outcome) — the status
form says that reason is shown to the employee. Routing's own bookkeeping reasons ("routed",
"first response sent", "reopened: the reporter replied") are never shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

StatusUpdateKind = Literal["in_progress", "waiting_on_employee", "resolved", "closed", "reopened"]
_KINDS: Final[dict[str, StatusUpdateKind]] = {
    "in_progress": "in_progress",
    "waiting_on_employee": "waiting_on_employee",
    "resolved": "resolved",
    "closed": "closed",
}
ENDED: Final = frozenset({"resolved", "closed"})
REASON_KINDS: Final = frozenset({"waiting_on_employee", "resolved", "closed"})


@dataclass(frozen=True)
class StatusUpdate:
    kind: StatusUpdateKind
    reason: str | None


def reporter_status_update(
    from_status: str, to_status: str, reason: str | None
) -> StatusUpdate | None:
    """What the reporter is shown of a case.status_changed, or None (not theirs to see)."""
    kind = _KINDS.get(to_status)
    if kind is None or from_status == to_status:
        return None
    if from_status in ENDED and kind == "in_progress":
        kind = "reopened"
    return StatusUpdate(kind, reason if kind in REASON_KINDS and reason else None)
