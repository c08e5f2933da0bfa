"""What a valid mail address is, for every channel and every service: one rule, one place.

`MailAddress` is the annotated type of every address a person or peer gives us (API bodies,
portal and phone forms, the routing policy), `check_address` is the same rule for code that
is not a model (the inbound-mail sender), and `EventMailAddress` is the type of addresses in
event payloads (the same rule with single-label hosts always allowed, so no consumer
refuses what another service's door accepted). All run email-validator
(syntax, IDNA, length limits; never DNS) configured for a company's mail, not the public
internet's:

- Internal mail domains are addresses like any other: `.local` (mDNS-style corporate
  domains, `corp.local`), `.internal` and `.lan`. email-validator refuses `.local` as a
  special-use name on every call and has no per-call option for it; its documented way to
  permit one is to take it off `email_validator.SPECIAL_USE_DOMAIN_NAMES`, which this module
  does once, on import. The other special-use names (`localhost`, `invalid`, `test`,
  `onion`, `arpa`) stay refused: no person has a mailbox there.
- Single-label hosts (`pat@mailhost`) only with `MAIL_ALLOW_SINGLE_LABEL_DOMAINS=true`.
  Each door applies its own service's setting; event payloads accept them regardless.
- Internationalised addresses (RFC 6531/6532): non-ASCII local parts (`jürgen.groß@…`) and
  IDN domains (`…@bücher.de` or its A-label `…@xn--bcher-kva.de`). The stored form is
  email-validator's normalised one: the local part exactly as given (NFC), the domain in
  lower-case Unicode. Sending to a non-ASCII local part needs a relay that offers SMTPUTF8;
  an IDN domain with an ASCII local part can always go out as its A-label (`ascii_form`).

Invalid input raises pydantic's `value_error` ("value is not a valid email address: …"),
which the API answers with 422 naming the field, exactly as `EmailStr` did.
"""

from __future__ import annotations

from typing import Annotated, Final

import email_validator
from email_validator import EmailNotValidError, ValidatedEmail, validate_email
from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from shared.settings import get_settings

# Suffixes companies use for internal mail, accepted on every channel.
INTERNAL_MAIL_SUFFIXES: Final = ("local", "internal", "lan")

for _suffix in INTERNAL_MAIL_SUFFIXES:
    if _suffix in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        email_validator.SPECIAL_USE_DOMAIN_NAMES.remove(_suffix)


class InvalidAddress(ValueError):
    """Not an address mail can be written to; the message says why (no address in it)."""


def validated(value: str, *, allow_single_label: bool | None = None) -> ValidatedEmail:
    """email-validator's result for `value` under this system's rules.

    `allow_single_label`: None reads `MAIL_ALLOW_SINGLE_LABEL_DOMAINS` from the settings.
    Raises `InvalidAddress` with email-validator's reason.
    """
    if allow_single_label is None:
        allow_single_label = get_settings().mail_allow_single_label_domains
    if not isinstance(value, str):
        raise InvalidAddress("an email address must be text")
    try:
        return validate_email(
            value,
            check_deliverability=False,  # no DNS: internal domains do not resolve publicly
            allow_smtputf8=True,
            # False drops email-validator's "needs a period" and "public TLD" checks.
            globally_deliverable=not allow_single_label,
        )
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from exc


def check_address(value: str, *, allow_single_label: bool | None = None) -> str:
    """The normalised address (the form to store and compare), or `InvalidAddress`."""
    return validated(value, allow_single_label=allow_single_label).normalized


def ascii_form(address: str) -> str | None:
    """The address as pure ASCII (IDN domain as its A-label), or None when the local part
    is non-ASCII and so can only travel over SMTPUTF8. `address` must be valid."""
    return validated(address, allow_single_label=True).ascii_email


def _field(value: str, *, allow_single_label: bool | None) -> str:
    try:
        return check_address(value, allow_single_label=allow_single_label)
    except InvalidAddress as exc:
        raise PydanticCustomError(
            "value_error", "value is not a valid email address: {reason}", {"reason": str(exc)}
        ) from exc


def _door_field(value: str) -> str:
    return _field(value, allow_single_label=None)


def _event_field(value: str) -> str:
    return _field(value, allow_single_label=True)


# An address a person or a peer system gives us (API bodies, portal and phone forms, the
# routing policy): this deployment's rule. The JSON schema says `format: email`, as
# EmailStr did.
MailAddress = Annotated[
    str,
    AfterValidator(_door_field),
    WithJsonSchema({"type": "string", "format": "email"}),
]

# An address in an event payload: anything some service's door may have accepted, so a
# consumer never refuses (dead-letters) a peer's valid event over its own setting.
EventMailAddress = Annotated[
    str,
    AfterValidator(_event_field),
    WithJsonSchema({"type": "string", "format": "email"}),
]
