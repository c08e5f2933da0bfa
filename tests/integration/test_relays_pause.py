"""`hrcase relays pause` (README "Runbook", "Add a routing partition"): while it runs, no
outbox relay of a service can take its batch lock, so events stay in the outboxes; once it
ends (Ctrl-C) the relays go on."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import asyncpg

from shared.outbox import relay_lock_name

LOCKED = "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))"


async def test_relays_pause_holds_every_relay_lock_until_interrupted(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    pause = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hrcase.cli",
        "relays",
        "pause",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert pause.stdout is not None
        line = (await asyncio.wait_for(pause.stdout.readline(), 60)).decode()
        assert line.startswith("relays paused: intake, routing, notifications"), line
        conn = await asyncpg.connect(database_url)
        try:
            for service in ("intake", "routing", "notifications"):
                async with conn.transaction():
                    assert not await conn.fetchval(LOCKED, relay_lock_name(service)), service
            pause.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(pause.wait(), 20) == 0
            assert "relays resumed" in (await pause.stdout.read()).decode()
            for service in ("intake", "routing", "notifications"):
                async with conn.transaction():
                    assert await conn.fetchval(LOCKED, relay_lock_name(service)), service
        finally:
            await conn.close()
    finally:
        if pause.returncode is None:
            pause.kill()
            await pause.wait()
