"""The raw-MIME HTTP hook: `POST /api/v1/inbound-email`, as hosted mail providers forward.

Authenticated by the shared secret header `X-Inbound-Email-Token` (INTAKE_INBOUND_EMAIL_TOKEN)
or a bearer token with the `admin` role. The body is the message itself
(`message/rfc822` or `application/octet-stream`); `X-Envelope-From` may carry the SMTP
envelope sender (`<>` for a bounce).
"""

from __future__ import annotations

import hmac
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.intake.application.email_ingest import receive
from services.intake.config import EmailConfig
from services.intake.domain.email.parsing import too_large
from shared.auth import InvalidToken, TokenService, bearer_token
from shared.service import Runtime
from shared.uow import unit_of_work

router = APIRouter(prefix="/api/v1", tags=["email"])
ACCEPTED_TYPES = frozenset({"message/rfc822", "application/octet-stream"})
_HTTP_STATUS = {
    "opened": status.HTTP_201_CREATED,
    "appended": status.HTTP_201_CREATED,
    "duplicate": status.HTTP_200_OK,
    "automatic": status.HTTP_202_ACCEPTED,
    "loop": status.HTTP_202_ACCEPTED,
    "deferred": status.HTTP_503_SERVICE_UNAVAILABLE,
}


class InboundEmailResult(BaseModel):
    outcome: str
    reference: str | None = None
    case_id: UUID | None = None
    detail: str


def _config(request: Request) -> EmailConfig:
    runtime: Runtime = request.app.state.runtime
    config = runtime.state.get("email_config")
    if not isinstance(config, EmailConfig):
        config = EmailConfig.from_env(runtime.settings)
        runtime.state["email_config"] = config
    return config


def _authorise(request: Request, config: EmailConfig, token: str | None) -> None:
    if token is not None and hmac.compare_digest(
        token.encode("utf-8"), config.inbound_token.encode("utf-8")
    ):
        return
    bearer = bearer_token(request)
    if bearer is not None:
        runtime: Runtime = request.app.state.runtime
        try:
            principal = TokenService.from_settings(runtime.settings).verify(bearer)
        except InvalidToken as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid token") from exc
        if principal.has_any("admin"):
            return
        raise HTTPException(status.HTTP_403_FORBIDDEN, "requires the admin role")
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong inbound email token")


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None once it exceeds `limit` (we stop reading, not buffer it all)."""
    chunks = bytearray()
    async for chunk in request.stream():
        chunks.extend(chunk)
        if len(chunks) > limit:
            return None
    return bytes(chunks)


@router.post(
    "/inbound-email",
    response_model=InboundEmailResult,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "Already received (same Message-ID)"},
        202: {"description": "Automatic message (auto-reply, bounce) or mail loop: no case"},
        401: {"description": "Missing or wrong token"},
        413: {"description": "Message or attachment too large"},
        415: {"description": "Not message/rfc822 or application/octet-stream"},
        422: {"description": "Refused: malformed or abusive structure, no valid sender"},
        503: {"description": "Temporarily unable to record it: retry"},
    },
)
async def inbound_email(
    request: Request,
    x_inbound_email_token: Annotated[str | None, Header()] = None,
    x_envelope_from: Annotated[str | None, Header(max_length=300)] = None,
) -> JSONResponse:
    """Record one raw message exactly as the SMTP listener would."""
    config = _config(request)
    _authorise(request, config, x_inbound_email_token)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_TYPES:
        raise HTTPException(
            415,
            "send the raw message as message/rfc822 or application/octet-stream",
        )
    raw = await _read_capped(request, config.limits.max_message_bytes)
    if raw is None:
        refusal = too_large(config.limits.max_message_bytes)
        raise HTTPException(413, refusal.reason)
    runtime: Runtime = request.app.state.runtime
    outcome = await receive(
        unit_of_work(runtime),
        raw,
        config=config,
        envelope_sender=x_envelope_from,
        entrypoint="http",
    )
    if outcome.kind == "refused":
        code = 413 if outcome.code == 552 else 422
        raise HTTPException(code, outcome.text)
    result = InboundEmailResult(
        outcome=outcome.kind,
        reference=outcome.reference,
        case_id=outcome.case_id,
        detail=outcome.text,
    )
    headers = {"Retry-After": "30"} if outcome.kind == "deferred" else None
    return JSONResponse(
        result.model_dump(mode="json"), status_code=_HTTP_STATUS[outcome.kind], headers=headers
    )
