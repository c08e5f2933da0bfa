"""Marking personal fields on event models, and whose data each one is.

`Personal[T]` marks a field (or a list item) of an event model as personal data: the
outbox seals it (shared.privacy.sealing) before the event leaves its service. Its
validator accepts, unchanged and without the inner constraints, a sealed token
(`pd1:<subject_id>:<scope>:<base64url(nonce|ciphertext)>`: audit validates and hashes
ciphertext) and the ERASED marker (what a token opens to once its key is destroyed: a
handler then gets "[erased]" where an email, a name or a text was, rather than a
validation error that would dead-letter the event); a clear value is validated normally.

Whose data a personal field is (the key it is sealed with):
- inside a person model that declares `privacy_subject` (an `Identified`: which of its
  fields hold the employee id and the email) it is that person's
  (shared.privacy.keys.subject_for; neither given: `anonymous:<case_id>`);
- elsewhere on an event, the subject the event model names in `privacy_subjects`, per
  top-level field ("*" for the rest): the name of a person-model field of the event
  (e.g. CaseSubmitted's "reporter"; absent: `anonymous:<case_id>`), an `Identified` over
  the event's own fields, or CASE_REPORTER (the default): the subject recorded as the
  case's reporter when its case.submitted was sealed.
The scope is always the envelope's case id ("-" without one).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import GetJsonSchemaHandler, WrapValidator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

ERASED = "[erased]"
TOKEN_PREFIX = "pd1:"
# pd1:<subject kind>:<subject rest>:<case uuid or ->:<base64url, no padding>
TOKEN_RE = re.compile(
    r"^pd1:[a-z]+:\S+:(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|-)"
    r":[A-Za-z0-9_-]{38,}$"
)
CASE_REPORTER = "@case_reporter"
REPORTER_ROLE = "reporter"


@dataclass(frozen=True)
class Identified:
    """Which fields of a model identify the person its personal fields belong to."""

    employee_id: str | None = None
    email: str | None = None


# A person model whose fields are named employee_id and email.
PERSON = Identified(employee_id="employee_id", email="email")
SubjectRef = Identified | str


def is_sealed(value: object) -> bool:
    """A sealed token (shape only: opening proves it)."""
    return isinstance(value, str) and TOKEN_RE.match(value) is not None


def is_erased(value: object) -> bool:
    """The marker a token opens to once its key is destroyed."""
    return value == ERASED


class _PersonalMark:
    """The marker the sealer looks for; documents the field as personal in JSON schema."""

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["x-personal"] = True
        return json_schema

    def __repr__(self) -> str:
        return "PERSONAL"


PERSONAL = _PersonalMark()


class _AddressIdMark:
    """An id that is personal when it holds a mail address (`email:<address>`, intake's
    identity of an email sender): sealed then, clear otherwise."""

    def __repr__(self) -> str:
        return "ADDRESS_ID"


ADDRESS_ID = _AddressIdMark()


def _accept_sealed(value: Any, handler: Callable[[Any], Any]) -> Any:
    if isinstance(value, str) and (value == ERASED or TOKEN_RE.match(value)):
        return value
    return handler(value)


T = TypeVar("T")
Personal = Annotated[T, PERSONAL, WrapValidator(_accept_sealed)]
# An employee id that may be a pseudonymous address (see _AddressIdMark).
PersonalIfAddress = Annotated[T, ADDRESS_ID, WrapValidator(_accept_sealed)]
