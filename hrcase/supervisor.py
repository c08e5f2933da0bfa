"""`hrcase run`: the whole system on one machine, one OS process per service.

Children's output is prefixed with their name; Ctrl-C (or SIGTERM) stops all of them,
politely first (SIGTERM, graceful shutdown), then firmly after a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from hrcase.demo import seed_demo_cases
from shared.settings import SERVICES, Settings

COLOURS = {"intake": 36, "routing": 33, "notifications": 35, "audit": 32, "mailsink": 34}


# Where the development mail sink listens unless SMTP_HOST/SMTP_PORT say otherwise.
DEFAULT_SINK_PORT = Settings.model_fields["smtp_port"].default
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


@dataclass(frozen=True)
class MailPlan:
    """Whether `hrcase run` starts its development sink, and where notification mail goes
    (the banner's line)."""

    start_sink: bool
    destination: str


def port_in_use(host: str, port: int) -> bool:
    """Something accepts TCP connections at host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def plan_outgoing_mail(
    host: str,
    port: int,
    maildir: str,
    *,
    default_port: int = DEFAULT_SINK_PORT,
    in_use: Callable[[str, int], bool] = port_in_use,
) -> MailPlan:
    """The sink is started only for the local default (a loopback host on the default
    port, nothing listening there yet). A real relay, or a local mail catcher already on
    the port, gets the mail instead, and the banner says so."""
    where = f"SMTP {host}:{port}"
    if host.lower() not in LOOPBACK or port != default_port:
        return MailPlan(False, f"{where} (SMTP_HOST/SMTP_PORT: mail is really sent there)")
    if in_use(host, port):
        return MailPlan(
            False, f"{where} (already listening there: mail goes to it, no sink started)"
        )
    return MailPlan(True, f"{where} -> development sink, kept in {maildir}/ (nothing is sent)")


@dataclass
class Child:
    name: str
    argv: list[str]
    process: asyncio.subprocess.Process | None = None


async def _pump(child: Child) -> None:
    assert child.process and child.process.stdout
    colour = COLOURS.get(child.name, 37) if sys.stdout.isatty() else None
    prefix = f"{child.name:>13} | "
    if colour:
        prefix = f"\x1b[{colour}m{prefix}\x1b[0m"
    async for raw in child.process.stdout:
        sys.stdout.write(prefix + raw.decode("utf-8", "replace"))
        sys.stdout.flush()


async def _wait_ready(settings: Settings, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    pending = set(SERVICES)
    async with httpx.AsyncClient(timeout=1) as client:
        while pending:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"not ready after {timeout}s: {sorted(pending)}")
            for service in list(pending):
                url = f"http://{settings.http_host}:{settings.http_port(service)}/health/ready"
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        pending.discard(service)
            await asyncio.sleep(0.3)


async def supervise(settings: Settings, *, seed: bool, maildir: str) -> int:
    env = dict(os.environ)
    env.setdefault("LOG_FORMAT", "console" if sys.stdout.isatty() else "json")
    env["PYTHONUNBUFFERED"] = "1"
    mail = plan_outgoing_mail(settings.smtp_host, settings.smtp_port, maildir)
    sink = [sys.executable, "-m", "hrcase.mailsink", "--port", str(settings.smtp_port)]
    children = [
        *([Child("mailsink", [*sink, "--maildir", maildir])] if mail.start_sink else []),
        *(Child(name, [sys.executable, "-m", f"services.{name}"]) for name in SERVICES),
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pumps = []
    for child in children:
        child.process = await asyncio.create_subprocess_exec(
            *child.argv,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        pumps.append(asyncio.create_task(_pump(child)))
    exited = [asyncio.create_task(c.process.wait()) for c in children if c.process]
    code = 0
    try:
        await _wait_ready(settings)
        if seed:
            intake = f"http://{settings.http_host}:{settings.http_port('intake')}"
            seeded = await asyncio.to_thread(seed_demo_cases, intake)
            print(f"seeded {len(seeded)} demo cases: {', '.join(c['reference'] for c in seeded)}")
        _banner(settings, mail)
        first_exit = asyncio.create_task(asyncio.wait(exited, return_when="FIRST_COMPLETED"))
        await asyncio.wait(
            [first_exit, asyncio.create_task(stop.wait())], return_when="FIRST_COMPLETED"
        )
        if not stop.is_set():
            print("a service exited unexpectedly; stopping the others", file=sys.stderr)
            code = 1
    except Exception as exc:
        print(f"start-up failed: {exc}", file=sys.stderr)
        code = 1
    finally:
        await _stop_all(children)
        for pump in pumps:
            pump.cancel()
    return code


async def _stop_all(children: list[Child]) -> None:
    for child in reversed(children):
        if child.process and child.process.returncode is None:
            child.process.terminate()
    for child in children:
        if child.process and child.process.returncode is None:
            try:
                await asyncio.wait_for(child.process.wait(), timeout=15)
            except TimeoutError:
                child.process.kill()
                await child.process.wait()


def portal_address(settings: Settings) -> str:
    """The portal's address as people and email links know it (PORTAL_BASE_URL)."""
    return f"{settings.portal_base_url.rstrip('/')}/portal/"


def _banner(settings: Settings, mail: MailPlan) -> None:
    host = settings.http_host
    lines = [
        "",
        "hrcase is running (Ctrl-C stops everything):",
        # The address email links use: a cookie set for one host name is not sent to another.
        f"  portal          {portal_address(settings)}",
        f"  intake API      http://{host}:{settings.http_port('intake')}/docs",
        f"  intake mail     SMTP {host}:{os.environ.get('INTAKE_SMTP_PORT', '2525')}"
        " (python -m services.intake.entrypoints.send_sample_email)",
        f"  audit API       http://{host}:{settings.http_port('audit')}/docs",
        f"  audit console   {settings.audit_console_address()} (sign in at the portal as an"
        " auditor)",
        "  metrics         "
        + ", ".join(
            f"{name} http://{settings.metrics_host}:{settings.metrics_port(name)}/metrics"
            for name in SERVICES
        ),
        f"  outgoing mail   {mail.destination}",
        f"  broker          {settings.rabbitmq_url.split('@')[-1]}",
        f"  database        {settings.database_url.split('@')[-1]}",
        "  tokens          .venv/bin/hrcase token mint --subject u-1 --role employee"
        " --employee-id E-1001",
        "  verify the log  .venv/bin/hrcase audit verify",
        "",
    ]
    print("\n".join(lines), flush=True)
