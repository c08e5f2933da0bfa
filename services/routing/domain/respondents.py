"""Resolving the respondents a case names against the employee directory. No I/O.

A named respondent resolves by exact employee id, else by a unique email match (case
does not matter), else by a unique name match (case, accents' composition and runs of
spaces do not matter). Anything else stays unresolved and is flagged for a person: it is
never guessed. An employee id nobody in the directory has is still kept out of the case
(conflict of interest is cheap to over-apply, dangerous to miss) and flagged.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from shared.events import RespondentNamed, RespondentResolution


@dataclass(frozen=True)
class Candidate:
    """One person respondents may resolve to (a directory row or HR staff)."""

    employee_id: str
    name: str
    email: str | None


def name_key(name: str) -> str:
    """The form names are compared in: NFKC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def email_key(email: str) -> str:
    return email.strip().casefold()


def resolve(
    named: RespondentNamed, position: int, people: Sequence[Candidate]
) -> RespondentResolution:
    """Match one named respondent among `people` (those the directory returned for it)."""
    if named.employee_id and any(p.employee_id == named.employee_id for p in people):
        return RespondentResolution(
            position=position, employee_id=named.employee_id, matched_by="employee_id"
        )
    ambiguous = False
    if named.email:
        wanted = email_key(str(named.email))
        found = {p.employee_id for p in people if p.email and email_key(p.email) == wanted}
        if len(found) == 1:
            return RespondentResolution(
                position=position, employee_id=found.pop(), matched_by="email"
            )
        ambiguous = len(found) > 1
    if named.name:
        wanted = name_key(named.name)
        found = {p.employee_id for p in people if name_key(p.name) == wanted}
        if len(found) == 1:
            return RespondentResolution(
                position=position, employee_id=found.pop(), matched_by="name"
            )
        ambiguous = ambiguous or len(found) > 1
    return RespondentResolution(
        position=position, problem="ambiguous" if ambiguous else "not_found"
    )


def named_respondents(
    respondents: Sequence[RespondentNamed], employee_ids: Sequence[str]
) -> list[RespondentNamed]:
    """Everyone a submission names: its `respondents`, then any id of the older
    `respondent_employee_ids` field that none of them carries."""
    named = list(respondents)
    carried = {r.employee_id for r in named}
    named += [
        RespondentNamed(employee_id=i) for i in dict.fromkeys(employee_ids) if i not in carried
    ]
    return named


def conflicted_respondent_ids(
    named: Sequence[RespondentNamed], resolutions: Sequence[RespondentResolution]
) -> tuple[str, ...]:
    """The ids to keep off the case: every resolved respondent, and every id named that
    the directory does not know (the chain of those is unknown, the person is not)."""
    ids = [r.employee_id for r in resolutions if r.employee_id]
    ids += [
        n.employee_id
        for n, r in zip(named, resolutions, strict=True)
        if n.employee_id and not r.employee_id
    ]
    return tuple(dict.fromkeys(ids))
