"""HTTP hardening every service shares: security headers, offline API docs, private metrics.

- `SecurityHeaders` (pure ASGI, so streaming and the portal's own headers are untouched)
  adds to every response that lacks them: `X-Content-Type-Options: nosniff`,
  `Content-Security-Policy: frame-ancestors 'none'` (a page with its own, stricter policy,
  as the portal's, keeps it), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`,
  and `Strict-Transport-Security` when the request came over TLS: its scheme is https,
  which uvicorn also sets from `X-Forwarded-Proto` when the peer is one of
  `TRUSTED_PROXIES` (shared.service.run).
- `offline_docs_app`: /docs (Swagger UI) and /redoc load their scripts and styles from
  the service itself (the maintained `fastapi-offline` package ships them), never a CDN.
- `start_metrics_server`: Prometheus metrics on a port of their own, bound to
  `METRICS_HOST` (default 127.0.0.1), not on the public HTTP port.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from prometheus_client import start_http_server
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.settings import Settings

log = structlog.get_logger(__name__)

HSTS = b"max-age=31536000; includeSubDomains"
DEFAULT_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


class SecurityHeaders:
    """ASGI middleware: the security headers above on every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in DEFAULT_HEADERS if n not in present]
                if tls and b"strict-transport-security" not in present:
                    headers.append((b"strict-transport-security", HSTS))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def offline_docs_app(title: str, **kwargs: Any) -> FastAPI:
    """A FastAPI app whose /docs and /redoc work without the internet."""
    app = FastAPIOffline(
        title=title,
        # Swagger UI would otherwise ask an online validator about the schema.
        swagger_ui_parameters={"validatorUrl": None},
        **kwargs,
    )
    app.add_middleware(SecurityHeaders)
    return app


def start_metrics_server(service: str, settings: Settings) -> Callable[[], None] | None:
    """Serve /metrics on `settings.metrics_port(service)`; returns how to stop it.

    None when disabled (port 0) or the port is taken (logged: the service itself runs on,
    as a second replica on one host would otherwise refuse to start)."""
    port = settings.metrics_port(service)
    if port == 0:
        return None
    try:
        server, thread = start_http_server(port, addr=settings.metrics_host)
    except OSError as exc:
        log.error("metrics not served: port unavailable", port=port, error=str(exc))
        return None
    log.info("metrics served", host=settings.metrics_host, port=port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
