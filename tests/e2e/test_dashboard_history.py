"""The dashboard over three years of history: the page shows what the JSON API answers.

The analytics projection (`intake.case_analytics`) is filled with the benchmark's
generator (bench/analytics.py FILL_SQL: a realistic mix of categories, channels, teams,
open and resolved cases, working times, breaches, reopenings, respondents) before the
system starts; raising thousands of cases through the doors would take minutes and
prove nothing more than tests/e2e/test_dashboard.py does. An HR manager opens the
dashboard in Chromium; every table on the page is compared with
GET /api/v1/analytics/dashboard for the same period, the charts carry the same figures,
and the page's screenshot is the README's (`HRCASE_UPDATE_SCREENSHOTS=1` rewrites
docs/screenshots/dashboard.png).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bench.analytics import FILL_SQL
from tests.e2e.test_agent_actions import AS_MANAGER, client
from tests.e2e.test_dashboard import browser, signed_in, table_rows  # noqa: F401 (fixture)
from tests.e2e.test_portal import PNG_MAGIC, needs_chromium
from tests.support.infra import own_database
from tests.support.system import running_system

CASES = 20_000  # over 2024-01-01 .. 2026-11-29: about 1,650 in the period below
PERIOD = {"from": "2026-08-31", "to": "2026-11-28"}
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "dashboard.png"
COUNT_FIGURES = (
    "volume_by_week",
    "volume_by_category",
    "volume_by_channel",
    "volume_by_team",
    "backlog_by_age",
    "cases_by_stage",
    "conferences",
)


@pytest.fixture(scope="module")
def database_url(database_url):
    """A database of its own holding the generated history (and nothing else)."""
    with own_database("dashboard_history") as url:
        with psycopg.connect(url.replace("+asyncpg", ""), autocommit=True) as conn:
            # The generator's one parameter is the number of cases (asyncpg's $1).
            conn.execute(FILL_SQL.replace("$1", str(CASES)).encode())
        yield url


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "dashboard-history") as running:
        yield running


@pytest.fixture(scope="module")
async def answer(system) -> dict[str, Any]:
    async with client(system, AS_MANAGER) as manager:
        found = await manager.get("/api/v1/analytics/dashboard", params=PERIOD)
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.json()
    return body


@needs_chromium
async def test_the_page_shows_what_the_api_answers(system, answer, browser, tmp_path) -> None:  # noqa: F811
    context, page = await signed_in(browser, system, "Victor Almeida")
    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.goto(f"/portal/dashboard?from={PERIOD['from']}&to={PERIOD['to']}")
    assert await page.get_by_role("heading", level=1).inner_text() == "Dashboard"
    total = answer["volume_by_category"]["total"]
    assert not total["suppressed"] and total["count"] > 1000
    headline = await page.get_by_role("definition").first.inner_text()
    assert headline == total["display"]

    team_names = {}
    for figure in COUNT_FIGURES:
        table = answer[figure]
        on_page = await table_rows(page.locator(f"section#{figure}"))
        displays = [row["count"]["display"] for row in table["rows"]]
        assert list(on_page.values()) == displays, figure
        if figure == "volume_by_team":  # the page names teams as the roster does
            team_names = dict(zip((r["key"] for r in table["rows"]), on_page, strict=True))
        else:
            assert list(on_page) == [row["label"] for row in table["rows"]], figure
        total_cell = page.locator(f"section#{figure} tfoot td")
        assert await total_cell.inner_text() == table["total"]["display"], figure
    assert team_names["hr_operations"] == "HR Operations"
    # Thousands of cases: the big figures are drawn as bars, not hidden.
    categories = answer["volume_by_category"]["rows"]
    assert all(not row["count"]["suppressed"] for row in categories)
    desc = await page.locator("section#volume_by_category svg desc").text_content() or ""
    for row in categories:
        assert f"{row['label']}: {row['count']['display']}" in desc

    sla_rows = await page.locator("section#sla_by_team table tbody tr").all()
    assert len(sla_rows) == len(answer["sla_by_team"]["rows"])
    for row, expected in zip(sla_rows, answer["sla_by_team"]["rows"], strict=True):
        cells = [c.strip() for c in await row.locator("th, td").all_inner_texts()]
        assert cells[0] == team_names.get(expected["team"], expected["team"])
        assert cells[1] == expected["cases"]["display"]
        for text, key, unit in (
            (cells[2], "first_response_median_h", " h"),
            (cells[4], "first_response_met_pct", "%"),
            (cells[7], "resolution_met_pct", "%"),
        ):
            value = expected[key]
            assert text == ("—" if value is None else f"{value:,.1f}{unit}"), key
        assert cells[8] == expected["breaches"]["display"]
    reopen = await page.locator("section#reopen_rate").inner_text()
    assert answer["reopen_rate"]["reopened"]["display"] in reopen
    assert re.search(r"\d", await page.locator("section#recurring").inner_text())

    shot = tmp_path / "dashboard.png"
    # The README's picture: the headline figures and the first charts.
    await page.screenshot(
        path=str(shot), full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": 2300}
    )
    assert shot.read_bytes().startswith(PNG_MAGIC)
    await page.screenshot(path=str(tmp_path / "dashboard-full.png"), full_page=True)
    # Refreshed on request: HRCASE_UPDATE_SCREENSHOTS=1 pytest tests/e2e/test_dashboard_history.py
    if os.environ.get("HRCASE_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, SCREENSHOT)
    await context.close()
