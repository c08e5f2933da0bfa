"""Retention of closed cases (issue #14): how long after its closure a case keeps its
personal data, per category. Pure rules, no I/O.

The policy's `retention:` section (validated at load, services.routing.domain.policy):

    retention:
      default: {years: 6}                # every category not listed
      categories:
        payroll_query: {years: 2}
        harassment: {years: 7}

A period is exactly one of `years` (calendar years: 29 February falls back to the 28th)
or `days` (calendar days of 24 hours). When it is due, routing destroys the keys of the
case's scope and announces `privacy.retention_erased` with the rule's text
(`RetentionPolicy.rule_for`), unless a legal hold covers the case (domain rule
`hold_covers`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RetentionPeriod(BaseModel):
    """How long after closure: exactly one of `years` (1..100) or `days` (1..36500)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    years: int | None = Field(default=None, ge=1, le=100)
    days: int | None = Field(default=None, ge=1, le=36500)

    @model_validator(mode="after")
    def _exactly_one(self) -> RetentionPeriod:
        if (self.years is None) == (self.days is None):
            raise ValueError("give exactly one of years or days")
        return self

    def due_after(self, closed_at: datetime) -> datetime:
        """The instant the period ends, counted from `closed_at` (aware, UTC kept)."""
        if self.days is not None:
            return closed_at + timedelta(days=self.days)
        assert self.years is not None
        try:
            return closed_at.replace(year=closed_at.year + self.years)
        except ValueError:  # 29 February into a year without one
            return closed_at.replace(year=closed_at.year + self.years, day=28)

    def describe(self) -> str:
        if self.years is not None:
            return f"{self.years} year{'s' if self.years != 1 else ''}"
        return f"{self.days} day{'s' if self.days != 1 else ''}"


class RetentionPolicy(BaseModel):
    """`retention:` of the routing policy: a default and per-category periods."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    default: RetentionPeriod = RetentionPeriod(years=6)
    categories: dict[str, RetentionPeriod] = Field(default_factory=dict)

    def period_for(self, category: str) -> RetentionPeriod:
        return self.categories.get(category, self.default)

    def rule_for(self, category: str) -> str:
        """The rule's text as events and the audit log record it, e.g.
        "retention: payroll_query 2 years after closure" ("(default)" when not listed)."""
        period = self.period_for(category)
        which = category if category in self.categories else f"{category} (default)"
        return f"retention: {which} {period.describe()} after closure"


@dataclass(frozen=True)
class Hold:
    """A legal hold as routing keeps it: exactly what it covers (a case, a data subject,
    or a matter's cases)."""

    hold_id: UUID
    case_id: UUID | None
    subject_id: str | None
    case_ids: tuple[UUID, ...]


def hold_covers(hold: Hold, *, case_id: UUID, subject_ids: Iterable[str]) -> bool:
    """Whether `hold` covers the case: by the case itself, a matter containing it, or a
    data subject of the case (reporter, respondent, anyone with a key in its scope)."""
    if hold.case_id == case_id or case_id in hold.case_ids:
        return True
    return hold.subject_id is not None and hold.subject_id in set(subject_ids)


# --- When the retention period starts (issue #14 follow-up) ---
# A case ends when it is resolved or closed. Nothing closes a resolved case by itself
# (no auto-close in the lifecycle: domain/lifecycle.py), so a case left resolved would
# otherwise keep its personal data forever: the period starts at the first of the two,
# and a later closure starts it again from the closure (a case is never kept less than
# its period after its formal closure). A reopening (back to in_progress) stops it.
ENDED_STATUSES = frozenset({"resolved", "closed"})
RetentionMove = Literal["arm", "cancel", "none"]


def retention_move(from_status: str, to_status: str) -> RetentionMove:
    """What a status move does to the case's retention timer: "arm" (or re-arm from this
    instant) when the case is resolved or closed, "cancel" when an ended case moves back
    to an open status, else "none"."""
    if to_status in ENDED_STATUSES and to_status != from_status:
        return "arm"
    if from_status in ENDED_STATUSES and to_status not in ENDED_STATUSES:
        return "cancel"
    return "none"
