"""Who a single sign-on ID token says the person is, in hrcase's terms (pure rules).

The provider's groups give roles only through the configured map (OIDC_ROLE_MAP): a
group that is not in it gives nothing, so a new group at the provider never widens
anyone's access here. A person with no mapped role, or without the employee id that
links them to HR records, is refused (`SignInRefused`), never signed in with less.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# The ID token claims of the OpenID Connect back-channel logout event (RFC-style URI).
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class SignInRefused(Exception):
    """The provider vouched for the person but hrcase cannot let them in; `reason` is
    said to them on the refusal page (no claim values, only what is missing)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ClaimNames:
    """Where the ID token carries each fact (OIDC_*_CLAIM)."""

    groups: str = "groups"
    employee_id: str = "employee_id"
    email: str = "email"
    name: str = "name"


@dataclass(frozen=True)
class SsoIdentity:
    """A person signed in by the provider: hrcase's subject is their employee id (the id
    the routing policy, the directory and case records use); `provider_subject` and
    `provider_session` (`sub`, `sid`) are what a back-channel logout names."""

    subject: str
    roles: tuple[str, ...]
    employee_id: str
    name: str | None
    email: str | None
    # The provider's `email_verified` claim was true: only then may the address stand for
    # the person (e.g. follow a case opened by mail from it).
    email_verified: bool
    issuer: str
    provider_subject: str
    provider_session: str | None


def roles_for(groups: Iterable[str], role_map: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The roles the person's groups give through `role_map`, sorted; unknown groups give
    none (exact, case-sensitive group names, as providers send them)."""
    held = set(groups)
    return tuple(sorted({role for group, role in role_map if group in held}))


def _groups(value: Any) -> list[str]:
    # A provider sends a list; some send one group as a string.
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [g for g in value if isinstance(g, str)]
    return []


def _text(value: Any, limit: int) -> str | None:
    if isinstance(value, str) and value.strip() and len(value) <= limit:
        return value.strip()
    return None


def identity_from_claims(
    claims: Mapping[str, Any],
    *,
    names: ClaimNames,
    role_map: Iterable[tuple[str, str]],
) -> SsoIdentity:
    """The person a verified ID token (`claims`) describes.

    Raises SignInRefused when no group maps to a role, or when the employee id claim is
    missing (hrcase cannot link the person to their HR record without it)."""
    roles = roles_for(_groups(claims.get(names.groups)), role_map)
    if not roles:
        raise SignInRefused(
            "Your company account is not in any group that has access to HR Case Desk."
            " Ask your IT or HR team to add you to the right group."
        )
    employee_id = _text(claims.get(names.employee_id), 100)
    if employee_id is None:
        raise SignInRefused(
            "Your company account carries no employee id, so HR Case Desk cannot link it"
            " to your HR record. Ask your IT team to release it to HR Case Desk."
        )
    email = _text(claims.get(names.email), 320)
    return SsoIdentity(
        subject=employee_id,
        roles=roles,
        employee_id=employee_id,
        name=_text(claims.get(names.name), 200),
        email=email if email and "@" in email else None,
        email_verified=bool(email and "@" in email) and claims.get("email_verified") is True,
        issuer=str(claims["iss"]),
        provider_subject=str(claims["sub"]),
        provider_session=_text(claims.get("sid"), 500),
    )
