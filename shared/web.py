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
  Their own CSP (`DOCS_CSP`) lets them fetch from this origin only (plus `data:` images
  and Redoc's `blob:` worker; inline scripts only by hash), and Redoc's bundle is served
  with its one hard-coded CDN image (the Redocly logo) replaced by an empty `data:` URL,
  so the page does not even try to reach the internet.
- `start_metrics_server`: Prometheus metrics on a port of their own, bound to
  `METRICS_HOST` (default 127.0.0.1), not on the public HTTP port.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import asyncpg
import fastapi_offline
import structlog
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import start_http_server
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db import UNREACHABLE_ERRORS, database_unreachable
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


# Where fastapi-offline mounts its copies of Swagger UI and Redoc, and where we serve
# Redoc's bundle without its CDN logo (outside that mount, which would shadow a route).
DOCS_STATIC = "/static-offline-docs"
DOCS_STATIC_DIR = Path(fastapi_offline.__file__).with_name("static")
LOCAL_REDOC_JS = "/docs-assets/redoc.standalone.js"
REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
# The docs pages' policy: this origin only. Styles may be inline (Swagger's and Redoc's
# styled components inject them); scripts may not, except those hashed in per page.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; font-src 'self' data:; connect-src 'self';"
    " worker-src 'self' blob:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_page(page: HTMLResponse) -> HTMLResponse:
    """`page` with DOCS_CSP, its own inline scripts allowed by their SHA-256."""
    html = bytes(page.body).decode("utf-8")
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in _INLINE_SCRIPT.findall(html)
    )
    page.headers["Content-Security-Policy"] = DOCS_CSP.format(hashes=hashes)
    return page


@cache
def local_redoc_bundle() -> bytes:
    """fastapi-offline's Redoc bundle with the Redocly logo's CDN address made an empty
    image (Redoc hides a logo that fails to load)."""
    bundle = (DOCS_STATIC_DIR / "redoc.standalone.js").read_bytes()
    return bundle.replace(REDOC_CDN_LOGO, b"data:,")


async def database_unreachable_answer(request: Request, exc: Exception) -> Response:
    """503 with Retry-After while the database cannot be reached (a restart, a failover):
    the request did nothing wrong and a retry will succeed, so not a 500. A client that
    sent an Idempotency-Key may retry a submission with it safely. Anything else that
    reaches here (an asyncpg InterfaceError of another kind) stays a server error."""
    if not database_unreachable(exc):
        raise exc
    log.warning("database unreachable", path=request.url.path, error=type(exc).__name__)
    return JSONResponse(
        {"detail": "the database is unreachable for a moment; retry shortly"},
        status_code=503,
        headers={"Retry-After": "1"},
    )


def offline_docs_app(title: str, **kwargs: Any) -> FastAPI:
    """A FastAPI app whose /docs and /redoc work without the internet (see DOCS_CSP)."""
    app = FastAPIOffline(
        title=title,
        # Swagger UI would otherwise ask an online validator about the schema.
        swagger_ui_parameters={"validatorUrl": None},
        # Only the static mount of fastapi-offline: the pages are ours, with their CSP.
        docs_url=None,
        redoc_url=None,
        static_url=DOCS_STATIC,
        **kwargs,
    )
    app.add_middleware(SecurityHeaders)
    for error in (*UNREACHABLE_ERRORS, asyncpg.InterfaceError):
        app.add_exception_handler(error, database_unreachable_answer)
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return docs_page(
            get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=oauth2_redirect_url,
                swagger_js_url=f"{root}{DOCS_STATIC}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{DOCS_STATIC}/swagger-ui.css",
                swagger_favicon_url=f"{root}{DOCS_STATIC}/favicon.png",
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return docs_page(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return docs_page(
            get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{LOCAL_REDOC_JS}",
                with_google_fonts=False,
                redoc_favicon_url=f"{root}{DOCS_STATIC}/favicon.png",
            )
        )

    @app.get(LOCAL_REDOC_JS, include_in_schema=False)
    async def redoc_bundle() -> Response:
        return Response(
            local_redoc_bundle(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

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
