"""Bearer tokens for tests, signed with the development key the services default to."""

from __future__ import annotations

from shared.auth import TokenService
from shared.settings import DEV_JWT_SECRET

TOKENS = TokenService(DEV_JWT_SECRET)


def token_for(subject: str, *roles: str, employee_id: str | None = None) -> str:
    return TOKENS.mint(subject, roles, employee_id=employee_id)


def auth_headers(subject: str, *roles: str, employee_id: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(subject, *roles, employee_id=employee_id)}"}
