"""Every page and API of every service sends the security headers; /docs works offline;
/metrics is not public (issue 8, item 17). Real service processes behind real uvicorn."""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from shared.settings import SERVICES
from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.support.auth import auth_headers
from tests.support.infra import ServiceProcess, free_port, service_env, wait_for
from tests.support.system import running_system

# A page or API of each service: health, OpenAPI, docs, an API refusal, a missing page.
PATHS = {
    "intake": [
        "/api/v1/cases",  # 401 without a token
        "/portal/",
        "/portal/sign-in",
        "/portal/no-such-page",
    ],
    "routing": [],
    "notifications": [],
    "audit": ["/api/v1/audit/access"],
}
COMMON = ["/health/live", "/health/ready", "/openapi.json", "/docs", "/redoc", "/nowhere"]
# An API answering 200 to someone allowed to call it.
AUTHORISED = {
    "intake": ("/api/v1/cases", auth_headers("u-1", "employee", employee_id="E-1")),
    "audit": ("/api/v1/audit/access", auth_headers("aud-1", "auditor")),
}


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "http-hardening") as running:
        yield running


def _assert_security_headers(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url} -> {response.status_code}"
    headers = response.headers
    assert headers.get("x-content-type-options") == "nosniff", where
    assert "frame-ancestors 'none'" in headers.get("content-security-policy", ""), where
    assert headers.get("x-frame-options") == "DENY", where
    assert headers.get("referrer-policy") in ("no-referrer", "same-origin"), where


@pytest.mark.parametrize("service", SERVICES)
def test_every_page_and_api_sends_the_security_headers(system, service: str) -> None:
    with system.client(service) as client:
        for path in [*COMMON, *PATHS[service]]:
            response = client.get(path)
            _assert_security_headers(response)
            # Plain HTTP from a client: no HSTS (it would pin a scheme we do not serve).
            assert "strict-transport-security" not in response.headers, path
        if service in AUTHORISED:
            path, headers = AUTHORISED[service]
            answer = client.get(path, headers=headers)
            assert answer.status_code == 200, answer.text
            _assert_security_headers(answer)


def test_the_portal_keeps_its_stricter_policy(system) -> None:
    with system.client("intake") as client:
        page = client.get("/portal/sign-in")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers.get_list("content-security-policy") == [csp]  # one policy, not two


@pytest.mark.parametrize("service", SERVICES)
def test_hsts_behind_a_tls_proxy(system, service: str) -> None:
    """uvicorn takes X-Forwarded-Proto from TRUSTED_PROXIES (default 127.0.0.1)."""
    with system.client(service) as client:
        response = client.get("/health/live", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


def test_forwarded_proto_from_an_untrusted_peer_is_ignored(
    database_url, rabbitmq_url, logs_dir: Path
) -> None:
    port = free_port()
    env = service_env(
        database_url,
        rabbitmq_url,
        ROUTING_HTTP_PORT=str(port),
        ROUTING_METRICS_PORT=str(free_port()),
        TRUSTED_PROXIES="10.9.9.9",
    )
    process = ServiceProcess("routing", env, port, logs_dir / "routing-untrusted-proxy.log")
    process.start()
    try:
        response = httpx.get(
            f"{process.base_url}/health/live", headers={"X-Forwarded-Proto": "https"}
        )
        _assert_security_headers(response)
        assert "strict-transport-security" not in response.headers
    finally:
        process.stop()


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_work_offline(system, service: str, page: str) -> None:
    base = system.url(service)
    with system.client(service) as client:
        html = client.get(page)
        assert html.status_code == 200
        parser = _References()
        parser.feed(html.text)
        # Whatever the page loads or names, by attribute or inside its scripts.
        named = parser.urls + re.findall(r"""(?:url|spec-url)\s*[:=]\s*['"]([^'"]+)""", html.text)
        absolute = re.findall(r"(?:https?:)?//[\w.-]+", html.text)
        assert absolute == [], f"{page} names another host: {absolute}"
        assert parser.urls, "the page loads nothing?"
        for url in named:
            target = urljoin(f"{base}{page}", url)
            assert urlsplit(target).netloc == urlsplit(base).netloc, target
            asset = client.get(target)
            assert asset.status_code == 200, (target, asset.status_code)
            assert len(asset.content) > 0


@pytest.mark.parametrize("service", SERVICES)
def test_metrics_are_not_public(system, service: str) -> None:
    with system.client(service) as client:
        assert client.get("/metrics").status_code == 404
    metrics = httpx.get(system.metrics_url(service), timeout=10)
    assert metrics.status_code == 200 and "hrcase_" in metrics.text
    # The metrics listener is bound to the loopback interface only.
    port = system.metrics_ports[service]
    listening = [
        line.split()[1]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if line.split()[3] == "0A" and line.split()[1].endswith(f":{port:04X}")
    ]
    assert listening == [f"0100007F:{port:04X}"], listening


# --- /docs and /redoc: every fetch from this origin (issue: Redoc's CDN logo) -----------

# Their titles: Swagger UI's and Redoc's own rendering of the OpenAPI document.
RENDERED = {"/docs": "#swagger-ui .opblock", "/redoc": "redoc h1"}


@pytest.fixture(scope="module")
async def docs_browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


@needs_chromium
@pytest.mark.parametrize("service", ["intake", "audit"])
@pytest.mark.parametrize("page_path", ["/docs", "/redoc"])
async def test_docs_render_with_the_internet_blocked_and_never_reach_for_it(
    system, docs_browser, service: str, page_path: str
) -> None:
    base = system.url(service)
    here = urlsplit(base).netloc

    def local(url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("data", "blob", "about") or parts.netloc == here

    requested: list[str] = []
    blocked: list[str] = []
    console: list[str] = []
    context = await docs_browser.new_context(base_url=base)

    async def only_local(route) -> None:
        if local(route.request.url):
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort("blockedbyclient")

    await context.route("**/*", only_local)
    page = await context.new_page()
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
    response = await page.goto(page_path)
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp, csp
    assert "img-src 'self' data:" in csp and "frame-ancestors 'none'" in csp, csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0], csp
    await page.wait_for_selector(RENDERED[page_path], timeout=60_000)
    assert "hrcase" in await page.content()
    await page.wait_for_load_state("networkidle")
    assert [url for url in requested if not local(url)] == [], requested
    assert blocked == []
    assert [m for m in console if "Content Security Policy" in m] == [], console
    await context.close()


# --- Test systems keep off the developer's SMTP port -------------------------------------


def _listening_ports(pid: int) -> set[int]:
    """TCP ports process `pid` listens on (its socket inodes matched in /proc/net)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_a_test_system_does_not_listen_on_2525(system) -> None:
    intake = system.services["intake"]
    assert intake.proc is not None
    ports = _listening_ports(intake.proc.pid)
    assert system.smtp_port in ports and intake.port in ports, ports
    assert 2525 not in ports
    with smtplib.SMTP("127.0.0.1", system.smtp_port, timeout=20) as smtp:
        assert smtp.noop()[0] == 250


def test_a_second_intake_on_a_taken_smtp_port_refuses_to_start(system, logs_dir: Path) -> None:
    """No SO_REUSEPORT: it fails loudly instead of taking a share of another's mail."""
    port = free_port()
    log = logs_dir / "http-hardening" / "intake-second.log"
    second = ServiceProcess(
        "intake",
        {
            **system.services["intake"].env,
            "INTAKE_HTTP_PORT": str(port),
            "INTAKE_METRICS_PORT": str(free_port()),
        },
        port,
        log,
    )
    second.start(wait=False)
    try:
        assert second.proc is not None
        code = wait_for(lambda: second.proc.poll(), timeout=60, what="second intake exits")
        assert code != 0
    finally:
        second.stop()
    said = log.read_text(errors="replace")
    assert f"intake SMTP cannot listen on 127.0.0.1:{system.smtp_port}" in said, said[-2000:]
