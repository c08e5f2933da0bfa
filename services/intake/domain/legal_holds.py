"""Legal holds as people place and release them (issue #14). Pure rules, no I/O.

A legal hold covers exactly one of: a case (`case_id`), a data subject (`subject`: an
employee id or an email address, kept and announced only as the subject id,
shared.privacy.keys.subject_for) or a matter (`matter`: a name and the cases it groups).
It carries a reason (1..2000 characters, not blank). While it is active, routing erases
nothing it covers when a retention period ends, and erasure requests wait. Only a
privacy officer or an HR manager places or releases one; releasing twice is a conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from services.intake.domain.case import IntakeInput
from shared.addresses import MailAddress
from shared.auth import Role

HOLD_ROLES: tuple[Role, ...] = ("privacy_officer", "hr_manager")
HoldKind = Literal["case", "subject", "matter"]
MAX_MATTER_CASES = 500


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Reason = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_not_blank)]


class _Strict(IntakeInput):
    """A request body: unknown keys refused, NUL in any string refused naming the field."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class HoldSubject(_Strict):
    """A data subject: their employee id, or (without one) their email address."""

    # Never an address: a subject id must not carry one (shared.events.SUBJECT_ID_PATTERN).
    employee_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[^@]*[^@\s][^@]*$"
    )
    email: MailAddress | None = None

    @model_validator(mode="after")
    def _one_identifier(self) -> HoldSubject:
        if (self.employee_id is None) == (self.email is None):
            raise ValueError("give exactly one of subject.employee_id or subject.email")
        return self


class HoldMatter(_Strict):
    """A matter: its name (kept in intake, never on the bus) and the cases it groups."""

    name: str = Field(min_length=1, max_length=200)
    case_ids: list[UUID] = Field(min_length=1, max_length=MAX_MATTER_CASES)


class NewLegalHold(_Strict):
    """POST /api/v1/privacy/legal-holds: exactly one of case_id, subject, matter; reason."""

    case_id: UUID | None = None
    subject: HoldSubject | None = None
    matter: HoldMatter | None = None
    reason: Reason

    @model_validator(mode="after")
    def _covers_one_thing(self) -> NewLegalHold:
        given = [self.case_id is not None, self.subject is not None, self.matter is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of case_id, subject or matter")
        return self

    @property
    def kind(self) -> HoldKind:
        if self.case_id is not None:
            return "case"
        return "subject" if self.subject is not None else "matter"


class HoldRelease(_Strict):
    """POST /api/v1/privacy/legal-holds/{id}/release: why the hold ends."""

    reason: Reason


def release_conflict(released_at: object) -> str | None:
    """Why a hold cannot be released (409), if so."""
    return "this legal hold was already released" if released_at is not None else None


@dataclass(frozen=True)
class LegalHoldCounts:
    """The dashboard's legal holds: active now, placed and released in the period. Counts
    of holds only (no case, no person), over every hold whatever the dashboard's filters
    (a hold may cover a person or a matter, not one team or category); not suppressed, as
    a count of holds says nothing about any one person."""

    active: int
    placed: int
    released: int
