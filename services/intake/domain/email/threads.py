"""Which case a message continues, and who may continue it. Pure: no I/O.

The confidentiality rule: only a party to a case (today: the reporter's address) may add
to it by email. A message that names a case it is not party to, by reference or by
In-Reply-To, opens a new case instead, so a guessed or leaked reference reveals nothing
and adds nothing to somebody else's case.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from shared.addresses import InvalidAddress, check_address
from shared.envelope import Actor
from shared.events import Reporter
from shared.mail import notification_message_id

EMPLOYEE_ID_MAX = 64


@dataclass(frozen=True)
class KnownCase:
    case_id: UUID
    reference: str
    reporter_email: str | None


def is_party(case: KnownCase, sender_address: str) -> bool:
    """Addresses compare case-insensitively: mail systems treat them so in practice."""
    return case.reporter_email is not None and case.reporter_email.lower() == sender_address


def choose_case(candidates: Sequence[KnownCase], sender_address: str) -> KnownCase | None:
    """The first candidate (headers before subject) that the sender is a party to."""
    for case in candidates:
        if is_party(case, sender_address):
            return case
    return None


def email_employee_id(address: str) -> str:
    """Intake has no directory: the address is the identity (`email:<address>`).

    Too long for an employee id (64): a stable hash of the address instead.
    """
    candidate = f"email:{address}"
    if len(candidate) <= EMPLOYEE_ID_MAX:
        return candidate
    return "email:sha256:" + hashlib.sha256(address.encode("utf-8")).hexdigest()[:48]


def sender_form(address: str) -> str:
    """The form intake keeps a mail sender's address in: email-validator's normalised one
    (NFC, domain in lower-case Unicode; `shared/addresses.py`), then all lower case, as mail
    systems compare in practice. Raises `InvalidAddress`."""
    return check_address(address).lower()


def sender_employee_id(address: str) -> str | None:
    """The reporter id of a case opened by mail from `address` (`email_employee_id` of its
    `sender_form`), or None when `address` is not one: whoever holds the address (a
    verified one) is that case's reporter."""
    try:
        return email_employee_id(sender_form(address))
    except InvalidAddress:
        return None


def email_actor(address: str) -> Actor:
    """Envelopes carry ids, never personal data: a pseudonymous id for an email sender."""
    digest = hashlib.sha256(address.encode("utf-8")).hexdigest()[:32]
    return Actor(type="employee", id=f"email-sender:{digest}")


def email_reporter(address: str, name: str) -> Reporter:
    return Reporter(employee_id=email_employee_id(address), name=name or address, email=address)


def acknowledgement_message_ids(submitted_event_id: UUID, domain: str) -> list[str]:
    """Message-IDs of the notification emails about a new case (so replies thread to it)."""
    return [notification_message_id(submitted_event_id, "reporter", domain)]
