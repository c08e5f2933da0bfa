"""Pure triage rules: category, priority, SLA deadlines and owner choice. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from services.routing.domain.policy import Member, Policy
from shared.events import Priority, Sensitivity

PRIORITY_ORDER: tuple[Priority, ...] = ("P1", "P2", "P3", "P4")


@dataclass(frozen=True)
class Classification:
    category: str
    source: Literal["reporter", "rules", "default"]
    matched_terms: tuple[str, ...]
    sensitivity: Sensitivity


@dataclass(frozen=True)
class Prioritisation:
    priority: Priority
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Deadlines:
    first_response_due: datetime
    resolution_due: datetime


def _find_terms(text: str, terms: tuple[str, ...]) -> tuple[str, ...]:
    lowered = text.lower()
    return tuple(
        term for term in terms if re.search(rf"(?<!\w){re.escape(term.lower())}(?!\w)", lowered)
    )


def classify(policy: Policy, *, text: str, requested: str | None) -> Classification:
    """The reporter's category when it is a known one, else the best keyword match.

    Ties go to the more sensitive category: mis-filing harassment as a grievance
    exposes it to the wrong people; the reverse only costs a re-categorisation.
    """
    if requested and requested in policy.categories:
        return Classification(requested, "reporter", (), policy.categories[requested].sensitivity)
    rank = {"restricted": 2, "confidential": 1, "normal": 0}
    best: tuple[int, int, str, tuple[str, ...]] | None = None
    for name, category in policy.categories.items():
        matched = _find_terms(text, category.keywords)
        if not matched:
            continue
        score = (len(matched), rank[category.sensitivity], name, matched)
        if best is None or score[:2] > best[:2]:
            best = score
    if best is None:
        default = policy.default_category
        return Classification(default, "default", (), policy.categories[default].sensitivity)
    _, _, name, matched = best
    return Classification(name, "rules", matched, policy.categories[name].sensitivity)


def prioritise(policy: Policy, *, category: str, text: str) -> Prioritisation:
    """Category default, raised by urgent terms anywhere in the text (never lowered)."""
    priority = policy.categories[category].priority
    reasons = [f"category {category} defaults to {priority}"]
    for level in PRIORITY_ORDER:
        matched = _find_terms(text, policy.urgent_terms.get(level, ()))
        if matched and PRIORITY_ORDER.index(level) < PRIORITY_ORDER.index(priority):
            priority = level
            reasons.append(f"raised to {level}: {', '.join(matched)}")
    return Prioritisation(priority, tuple(reasons))


def sla_deadlines(policy: Policy, *, priority: Priority, start: datetime) -> Deadlines:
    target = policy.priorities[priority]
    return Deadlines(
        first_response_due=start + timedelta(hours=target.first_response_hours),
        resolution_due=start + timedelta(hours=target.resolution_hours),
    )


def round_robin(policy: Policy, *, team: str, cursor: int) -> tuple[Member, int]:
    """The member at `cursor` (mod team size) and the next cursor value."""
    members = policy.teams[team].members
    return members[cursor % len(members)], cursor + 1
