"""What intake's HTTP doors share: the runtime, the caller's client, refusals as HTTP.

`RefusalRoute` is the route class of every intake router: a use case's `Refused` becomes
the HTTPException FastAPI answers with (JSON `{"detail": ...}`), so no route repeats the
mapping and the use cases never see FastAPI.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from services.intake.application.actions import Client, Download
from services.intake.domain.documents import content_disposition
from services.intake.domain.refusals import RefusalKind, Refused
from shared.service import Runtime

# Plain numbers: Starlette renamed the 413 and 422 constants (deprecation warnings).
STATUS_OF: dict[RefusalKind, int] = {
    "not_found": 404,
    "forbidden": 403,
    "conflict": 409,
    "invalid": 422,
    "too_large": 413,
    "too_many_attempts": 429,
}


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def client_of(request: Request) -> Client:
    """The peer address (behind a proxy, the X-Forwarded-For address uvicorn trusts from
    FORWARDED_ALLOW_IPS) and the user agent, cut to 512 characters."""
    return Client(
        ip=request.client.host if request.client else None,
        user_agent=(request.headers.get("user-agent") or "")[:512] or None,
        forwarded_for=(request.headers.get("x-forwarded-for") or "")[:512] or None,
    )


def http_error(refused: Refused) -> HTTPException:
    headers = None
    if refused.retry_after_seconds is not None:
        headers = {"Retry-After": str(refused.retry_after_seconds)}
    return HTTPException(STATUS_OF[refused.kind], refused.detail, headers=headers)


def as_http_error(exc: HTTPException | Refused) -> HTTPException:
    return http_error(exc) if isinstance(exc, Refused) else exc


def attachment_response(download: Download) -> Response:
    """A stored file, always as a download (RFC 6266), never sniffed, never a page: an
    uploaded HTML or SVG file must not run as our origin (its type is already
    application/octet-stream, see domain/documents.served_type)."""
    return Response(
        download.content,
        media_type=download.content_type,
        headers={
            "Content-Disposition": content_disposition(download.filename),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox; frame-ancestors 'none'",
            "Cross-Origin-Resource-Policy": "same-origin",
            "Referrer-Policy": "no-referrer",
        },
    )


class RefusalRoute(APIRoute):
    """An APIRoute whose handler answers a use case's `Refused` as its HTTP status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def refusing_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Refused as refused:
                raise http_error(refused) from None

        return refusing_handler
