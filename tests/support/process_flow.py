"""What the whole-system process tests share (tests/e2e/test_investigation_flow.py,
test_case_management_flow.py): intake's API as a person would call it, routing's answers
read back through the case's process view, the mails as their recipients read them, and
each person's page in Chromium."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, PNG_MAGIC
from tests.support.auth import auth_headers
from tests.support.infra import ROOT

DEADLINE = 60.0
AS_VICTOR = auth_headers("M-9002", "hr_manager", employee_id="M-9002")
AS_AUDITOR = auth_headers("AU-1001", "auditor")
SHOTS = Path(ROOT) / "docs" / "screenshots"


def needs(story: dict[str, Any], *keys: str) -> None:
    """Skip a later step when an earlier one did not get as far as it needs."""
    missing = [k for k in keys if k not in story]
    if missing:
        pytest.skip(f"an earlier step did not leave {', '.join(missing)}")


def client(system: Any, headers: dict[str, str] | None = None, service: str = "intake"):
    return httpx.AsyncClient(base_url=system.url(service), timeout=10, headers=headers)


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def post(
    headers: dict[str, str], system: Any, case_id: str, path: str, body: Any = None, code=202
) -> Any:
    """POST /api/v1/cases/{case_id}{path}; asserts the status and returns the JSON answer."""
    async with client(system, headers) as c:
        answer = await c.post(f"/api/v1/cases/{case_id}{path}", json=body or {})
    assert answer.status_code == code, (path, answer.status_code, answer.text)
    return answer.json()


async def process_of(system: Any, case_id: str) -> dict[str, Any]:
    """The case's process as an HR manager reads it (GET /api/v1/cases/{id}/process)."""
    async with client(system, AS_VICTOR) as c:
        got = await c.get(f"/api/v1/cases/{case_id}/process")
    assert got.status_code == 200, got.text
    return dict(got.json())


async def stage_becomes(system: Any, case_id: str, stage: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        view = await process_of(system, case_id)
        return view if (view["process"] or {}).get("stage") == stage else None

    return dict(await eventually(reached, f"stage {stage}"))


async def refused_with(system: Any, case_id: str, since: datetime, *words: str) -> str:
    """Routing's reason for the last process request refused after `since`, which must
    contain each of `words` (ignoring case)."""

    async def refused() -> str | None:
        refusal = (await process_of(system, case_id))["last_refusal"]
        if refusal and datetime.fromisoformat(refusal["refused_at"]) >= since:
            return str(refusal["reason"])
        return None

    reason: str = await eventually(refused, "routing's refusal")
    for word in words:
        assert word.lower() in reason.lower(), reason
    return reason


async def role_holder(system: Any, case_id: str, role: str) -> str | None:
    roles = (await process_of(system, case_id))["roles"]
    return next((r["staff_id"] for r in roles if r["role"] == role), None)


def text_of(message: EmailMessage) -> str:
    """A mail's subject, every text part and every attachment, decoded."""
    texts = [str(message["Subject"])]
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            texts.append(payload.decode("utf-8", "replace"))
    return "\n".join(texts)


def assert_no_secrets(system: Any, secrets: tuple[str, ...], *addresses: str) -> None:
    for address in addresses:
        for message in system.mail.messages_to(address):
            body = text_of(message)
            for secret in secrets:
                assert secret not in body, (address, message["Subject"])


async def audit_process_reaches(system: Any, case_id: str, stage: str) -> dict[str, Any]:
    """The process as the audit log's replay shows it, once it reached `stage`."""
    async with client(system, AS_AUDITOR, "audit") as c:

        async def reached() -> dict[str, Any] | None:
            got = await c.get(f"/api/v1/audit/cases/{case_id}/state")
            process = got.json()["state"].get("process") if got.status_code == 200 else None
            return process if process and process.get("stage") == stage else None

        return dict(await eventually(reached, f"stage {stage} in the audit log"))


async def screenshots(
    system: Any, tmp_path: Path, pages: list[tuple[str, str, str, tuple[str, ...], str]]
) -> None:
    """For each (who, path, shown, hidden, name): sign in as `who` on the development
    sign-in page, open `path`, check `shown` is on it and none of `hidden`, and save a
    full-page screenshot (also into docs/screenshots with HRCASE_UPDATE_SCREENSHOTS=1)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            for who, path, shown, hidden, name in pages:
                context = await browser.new_context(
                    base_url=system.url("intake"),
                    java_script_enabled=False,
                    viewport={"width": 1100, "height": 900},
                )
                page = await context.new_page()
                await page.goto("/portal/sign-in")
                await page.get_by_label(re.compile(who)).check()
                await page.get_by_role("button", name="Sign in").click()
                await page.wait_for_url(re.compile(r"/portal/(cases|work-queue)$"))
                await page.goto(path)
                content = await page.content()
                assert shown in content, (who, path)
                for text in hidden:
                    assert text not in content, (who, path, text)
                shot = tmp_path / f"{name}.png"
                await page.screenshot(path=str(shot), full_page=True)
                assert shot.read_bytes().startswith(PNG_MAGIC) and shot.stat().st_size > 1000
                if os.environ.get("HRCASE_UPDATE_SCREENSHOTS") == "1":
                    SHOTS.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(shot, SHOTS / f"{name}.png")
                await context.close()
        finally:
            await browser.close()
