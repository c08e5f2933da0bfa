"""Pure triage rules: category, priority, owner choice, escalation targets. No I/O."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from services.routing.domain.policy import Policy, StaffMember
from shared.events import Channel, InjuryDetails, Priority, Sensitivity

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
    raises: tuple[tuple[Priority, str], ...] = ()

    @property
    def p1(self) -> bool:
        """P1 cases are shown and escalated differently."""
        return self.priority == "P1"


def _find_terms(text: str, terms: tuple[str, ...]) -> tuple[str, ...]:
    """Each term that occurs as whole words (a phrase and a word inside it both count)."""
    lowered = text.lower()
    return tuple(
        term
        for term, pattern in zip(terms, _term_patterns(terms), strict=True)
        if pattern.search(lowered)
    )


@functools.lru_cache(maxsize=256)
def _term_patterns(terms: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(rf"(?<!\w){re.escape(term.lower())}(?!\w)") for term in terms)


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


def urgency_raises(
    policy: Policy,
    *,
    text: str,
    channel: Channel | None = None,
    reporter_urgent: bool = False,
    injury: InjuryDetails | None = None,
) -> tuple[tuple[Priority, str], ...]:
    """What raises a case above its category default, each with the reason.

    Kept with the case so a re-categorisation re-applies them to the new default.
    """
    rules = policy.priority_rules
    raises: list[tuple[Priority, str]] = []
    for level in PRIORITY_ORDER:
        matched = _find_terms(text, rules.urgent_terms.get(level, ()))
        if matched:
            raises.append((level, "urgent terms " + ", ".join(matched)))
    if channel is not None and channel in rules.channels:
        raises.append((rules.channels[channel], f"reported by {channel}"))
    if reporter_urgent:
        raises.append((rules.reporter_urgent, "the reporter marked it urgent"))
    if injury is not None and injury.serious:
        raises.append((rules.serious_injury, "serious workplace injury"))
    return tuple(raises)


def prioritise(
    policy: Policy,
    *,
    category: str,
    text: str = "",
    channel: Channel | None = None,
    reporter_urgent: bool = False,
    injury: InjuryDetails | None = None,
    raises: tuple[tuple[Priority, str], ...] | None = None,
) -> Prioritisation:
    """Category default, raised (never lowered) by urgent terms, channel, flags and injury.

    Every raise is recorded with its reason so the P1 banner can say why.
    """
    if raises is None:
        raises = urgency_raises(
            policy, text=text, channel=channel, reporter_urgent=reporter_urgent, injury=injury
        )
    priority = policy.categories[category].priority
    reasons = [f"category {category} defaults to {priority}"]
    for level, why in raises:
        if PRIORITY_ORDER.index(level) < PRIORITY_ORDER.index(priority):
            priority = level
            reasons.append(f"raised to {level}: {why}")
    return Prioritisation(priority, tuple(reasons), raises)


def conference_reasons(injury: InjuryDetails | None) -> tuple[str, ...]:
    """Why a workplace-injury case conference is mandatory (empty when it is not)."""
    if injury is None:
        return ()
    reasons = []
    if injury.serious:
        reasons.append("serious injury")
    if injury.suitable_employment_available is False:
        reasons.append("no suitable employment with the pre-injury employer")
    return tuple(reasons)


class NoEligibleOwner(Exception):
    """Every candidate is conflicted out (or lacks the skills): a person must decide."""


def choose_owner(
    policy: Policy,
    *,
    team: str,
    category: str,
    conflicted: frozenset[str],
    open_cases: dict[str, int],
    cursor: int,
) -> StaffMember:
    """The owner by the team's strategy, never someone in `conflicted`.

    round_robin: the next eligible member from the team's cursor.
    least_loaded: fewest open cases; ties broken in round-robin order so load spreads.
    skill_match: members with every skill the category needs, then least loaded.
    """
    spec = policy.teams[team]
    members = spec.members
    # Round-robin order starting at the cursor: the tie-break of every strategy.
    rotated = [members[(cursor + i) % len(members)] for i in range(len(members))]
    eligible = [m for m in rotated if m.id not in conflicted]
    if spec.strategy == "skill_match":
        needed = set(policy.categories[category].required_skills)
        eligible = [m for m in eligible if needed <= set(m.skills)]
    if not eligible:
        raise NoEligibleOwner(f"no eligible member in team {team!r}")
    if spec.strategy == "round_robin":
        return eligible[0]
    return min(eligible, key=lambda m: open_cases.get(m.id, 0))  # min keeps the first of ties


def escalation_target(
    policy: Policy, *, team: str, level: int, conflicted: frozenset[str]
) -> tuple[int, StaffMember] | None:
    """The person for ladder `level` (1-based); a conflicted one passes to the next level up."""
    ladder = policy.escalation_ladders[policy.teams[team].escalation]
    for index in range(level - 1, len(ladder)):
        target_id = ladder[index].to
        if target_id == "team_lead":
            target_id = policy.teams[team].lead
        person = policy.person(target_id)
        if person is not None and person.id not in conflicted:
            return index + 1, person
    return None
