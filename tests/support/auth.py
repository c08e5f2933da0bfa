"""Bearer tokens for tests, signed with the development key the services default to."""

from __future__ import annotations

from shared.auth import TokenService
from shared.settings import DEV_JWT_SECRET

TOKENS = TokenService(DEV_JWT_SECRET)


def token_for(
    subject: str, *roles: str, employee_id: str | None = None, email: str | None = None
) -> str:
    return TOKENS.mint(subject, roles, employee_id=employee_id, email=email)


def auth_headers(
    subject: str, *roles: str, employee_id: str | None = None, email: str | None = None
) -> dict[str, str]:
    token = token_for(subject, *roles, employee_id=employee_id, email=email)
    return {"Authorization": f"Bearer {token}"}
