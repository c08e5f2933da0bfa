"""The staff work queue's rules: who may use it, what each scope and filter means, and who
may see which case in it. No I/O: services.intake.adapters.work_queue turns these into SQL.

Visibility is `case_access` (domain/case.py) as a set: the adapter's SQL predicate must
select exactly the cases `case_access` allows (proved on a grid of cases and principals).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from services.intake.domain.case import CATEGORIES, RESTRICTED_READERS, STAFF_ROLES, reporter_ids
from shared.auth import Principal
from shared.events import Channel, Priority

Scope = Literal["mine", "team", "unassigned", "all"]
SCOPES: tuple[Scope, ...] = ("mine", "team", "unassigned", "all")
SCOPE_LABELS = {
    "mine": "Mine",
    "team": "My team",
    "unassigned": "Unassigned / needs a person",
    "all": "All I may see",
}
SlaState = Literal["breached", "due_soon"]
TeamKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")]
CaseStatus = Literal[
    "new", "routed", "assigned", "in_progress", "waiting_on_employee", "resolved", "closed"
]
# Without a status filter the queue shows the cases still to be worked.
OPEN_STATUSES: tuple[str, ...] = ("new", "routed", "assigned", "in_progress", "waiting_on_employee")
# Counts per scope are exact up to this many cases and say "more than" beyond it: a queue
# needs to know whether there are 12 or 1,000+ cases, and an exact count of tens of
# thousands of open cases would cost more than the page itself (bench/work_queue.py).
COUNT_LIMIT = 1000
MAX_PAGE = 100
DEFAULT_PAGE = 25
# A search that looks like a reference (or its start) also matches references by prefix.
REFERENCE_PREFIX = re.compile(r"^HR-[0-9-]{0,20}$", re.IGNORECASE)


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    """Where a page ends in deadline order: (queue_due, case_id) of its last row."""

    due: datetime
    case_id: UUID

    def encode(self) -> str:
        raw = json.dumps([self.due.isoformat(), str(self.case_id)]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            due, case_id = json.loads(raw)
            return cls(datetime.fromisoformat(due), UUID(case_id))
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
            raise BadCursor("not a cursor this queue gave out") from exc


class WorkQueueQuery(BaseModel):
    """What a member of staff asks the queue for (query parameters, also the portal form).

    Lists are OR-ed within a filter and filters are AND-ed. Dates are whole UTC days,
    both ends included. 422 naming the parameter for anything else.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    scope: Scope = "mine"
    status: list[CaseStatus] = Field(default_factory=list, max_length=10)
    priority: list[Priority] = Field(default_factory=list, max_length=4)
    category: list[str] = Field(default_factory=list, max_length=len(CATEGORIES))
    channel: list[Channel] = Field(default_factory=list, max_length=4)
    # The owning team (routing's team key): the HR dashboard's drill-down by team.
    team: list[TeamKey] = Field(default_factory=list, max_length=20)
    sla: SlaState | None = None
    owner: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
    submitted_from: date | None = None
    submitted_to: date | None = None
    q: str | None = Field(default=None, max_length=200)
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)

    @field_validator("category")
    @classmethod
    def _known_categories(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in CATEGORIES]
        if unknown:
            raise ValueError(f"unknown category {unknown[0]!r}; one of: {', '.join(CATEGORIES)}")
        return value

    @field_validator("q", "owner", "cursor", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        # An empty form field is no filter.
        return None if value == "" else value

    @field_validator("q")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    @field_validator("cursor")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        if value is not None:
            Cursor.decode(value)
        return value

    @field_validator("submitted_to")
    @classmethod
    def _dates_in_order(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("submitted_from")
        if value is not None and start is not None and value < start:
            raise ValueError("must not be before submitted_from")
        return value

    @property
    def statuses(self) -> tuple[str, ...] | None:
        """The statuses asked for, or None for the default (open cases)."""
        return tuple(self.status) or None

    @property
    def reference_prefix(self) -> str | None:
        if self.q and REFERENCE_PREFIX.match(self.q):
            return self.q.upper()
        return None

    def after(self) -> Cursor | None:
        return Cursor.decode(self.cursor) if self.cursor else None


@dataclass(frozen=True)
class Viewer:
    """Who is looking, as far as visibility and scopes go.

    `ids`: the ids a case may carry for them (owner, logged_by, submitted_by);
    `reporter_ids`: the reporter ids that are theirs (case.reporter_ids);
    `reads_restricted`: their role reads every restricted case; `teams`: the teams they
    belong to or lead, per routing's roster.
    """

    ids: tuple[str, ...]
    reporter_ids: tuple[str, ...]
    reads_restricted: bool
    teams: tuple[str, ...] = ()


def may_use_queue(principal: Principal) -> bool:
    """Staff only: employees (and auditors, admins) never see the queue."""
    return principal.has_any(*STAFF_ROLES)


def viewer_of(principal: Principal, teams: tuple[str, ...] = ()) -> Viewer:
    own = {principal.subject}
    if principal.employee_id is not None:
        own.add(principal.employee_id)
    ids = tuple(sorted(own))
    return Viewer(
        ids=ids,
        reporter_ids=reporter_ids(principal),
        reads_restricted=principal.has_any(*RESTRICTED_READERS),
        teams=teams,
    )
