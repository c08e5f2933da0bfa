"""The HR dashboard's figures on a known set of cases, through the doors (issue #13).

21 cases are raised through intake's API by employees of the demo directory and routed by
the real routing service on the bus, in a database of this module's own: payroll (6),
leave (3) and general (7) queries for HR Operations, whose calendar runs round the clock
(working time = wall time), and 5 restricted harassment complaints naming the same
respondent, for Investigations, whose calendar opens one hour a week on a day three days
away (no working time passes during the test). Owners answer some cases, a manager
resolves three payroll cases and reopens one, unanswered cases breach their
seconds-long first-response targets and escalate. The directory's feed gives intake the
reporters' departments.

Every expected figure is computed here from what the case API and the case history show
(and the directory file), independently of the projection, and compared with
/api/v1/analytics JSON and CSV: counts with small-cell suppression (3 -> "fewer than 5")
and secondary suppression, restricted cases counted, working time, % met, breaches,
escalations, reopen rate, backlog, recurring people (withheld for a viewer who may not
read restricted cases). Employees and HR agents get 403; bad parameters a 422 naming them.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import itertools
import statistics
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hrcase.demo import DEMO_DIRECTORY, publish_demo_directory
from services.routing.domain.policy import DEFAULT_POLICY_FILE
from shared.settings import Settings
from tests.support.auth import auth_headers
from tests.support.directory import load_demo_directory
from tests.support.infra import own_database
from tests.support.system import running_system

AS_MANAGER = auth_headers("M-9001", "hr_manager", employee_id="M-9001")
AS_ADMIN = auth_headers("ops-admin", "admin")
AS_AGENT = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
AS_EMPLOYEE = auth_headers("u-7001", "employee", employee_id="E-7001")
ALL_WEEK = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Seconds-long first-response targets (0.003 h = 10.8 s), resolution out of reach.
TARGETS = {
    p: {"first_response_hours": 0.003, "resolution_hours": 2} for p in ("P1", "P2", "P3", "P4")
}
THRESHOLD = 5
RESPONDENT = "E-7100"
CASES: list[tuple[str, str]] = (
    [("payroll_query", r) for r in ("E-7001", "E-7001", "E-7001", "E-1001", "E-1002", "E-1003")]
    + [("leave_query", r) for r in ("E-1004", "E-1005", "E-1006")]
    + [
        ("general_query", r)
        for r in ("E-7002", "E-7003", "E-7200", "E-1001", "E-1002", "E-1004", "E-0002")
    ]
    + [("harassment", r) for r in ("E-1003", "E-1005", "E-1006", "E-7002", "E-7200")]
)
TEAMS = {
    "payroll_query": "hr_operations",
    "leave_query": "hr_operations",
    "general_query": "hr_operations",
    "harassment": "investigations",
}
DEADLINE = 90.0


def directory() -> dict[str, dict[str, str]]:
    with DEMO_DIRECTORY.open(encoding="utf-8") as f:
        return {row["employee_id"]: row for row in csv.DictReader(f)}


def analytics_policy(path: Path) -> Path:
    raw = copy.deepcopy(yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8")))
    raw["calendars"]["uk_office"] = {"time_zone": "UTC", "hours": ALL_WEEK, "holidays": []}
    far_day = DAYS[(datetime.now(UTC).weekday() + 3) % 7]
    raw["calendars"]["investigations_desk"] = {
        "time_zone": "UTC",
        "hours": {far_day: ["09:00-10:00"]},
        "holidays": [],
    }
    raw["sla"] = {"warn_at": 0.5, "targets": TARGETS}
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A database of this module's own: the figures count every case in it."""
    with own_database("analytics") as url:
        yield url


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir, tmp_path_factory):
    policy = analytics_policy(tmp_path_factory.mktemp("analytics") / "policy.yaml")
    load_demo_directory(database_url, rabbitmq_url)
    with running_system(
        database_url,
        rabbitmq_url,
        logs_dir / "analytics",
        only=("intake", "routing"),
        ROUTING_POLICY_FILE=str(policy),
        ROUTING_TIMER_INTERVAL="0.2",
    ) as running:
        asyncio.run(publish_demo_directory(Settings(rabbitmq_url=rabbitmq_url)))
        yield running


async def eventually(check: Any, what: str, timeout: float = DEADLINE) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


def as_reporter(employee_id: str) -> dict[str, str]:
    return auth_headers(f"u-{employee_id}", "employee", employee_id=employee_id)


async def raise_cases(c: httpx.AsyncClient) -> list[dict[str, Any]]:
    people = directory()
    raised = []
    for index, (category, reporter) in enumerate(CASES):
        person = people[reporter]
        body: dict[str, Any] = {
            "subject": f"Analytics case {index}",
            "description": f"A {category.replace('_', ' ')} raised for the dashboard test.",
            "reporter": {"employee_id": reporter, "name": person["name"], "email": person["email"]},
            "category": category,
        }
        if category == "harassment":
            body["respondents"] = [{"employee_id": RESPONDENT}]
        accepted = await c.post("/api/v1/cases", json=body, headers=as_reporter(reporter))
        assert accepted.status_code == 202, accepted.text
        raised.append(
            {"case_id": accepted.json()["case_id"], "category": category, "reporter": reporter}
        )
    return raised


async def view(c: httpx.AsyncClient, case_id: str) -> dict[str, Any]:
    response = await c.get(f"/api/v1/cases/{case_id}", headers=AS_MANAGER)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def history(c: httpx.AsyncClient, case_id: str) -> list[dict[str, Any]]:
    response = await c.get(f"/api/v1/cases/{case_id}/history", headers=AS_MANAGER)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


async def until_status(c: httpx.AsyncClient, case_id: str, status: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        seen = await view(c, case_id)
        return seen if seen["status"] == status else None

    found: dict[str, Any] = await eventually(reached, f"{case_id} {status}")
    return found


# --- The figures as the test computes them -------------------------------------------------


def expected_cell(count: int) -> dict[str, Any]:
    if 0 < count < THRESHOLD:
        return {
            "count": None,
            "suppressed": True,
            "why": "small",
            "display": f"fewer than {THRESHOLD}",
        }
    return {"count": count, "suppressed": False, "why": None, "display": f"{count:,}"}


HIDDEN = {"count": None, "suppressed": True, "why": "complement", "display": "hidden"}


def first_response(entries: list[dict[str, Any]]) -> datetime | None:
    routed = next(
        (
            datetime.fromisoformat(e["occurred_at"])
            for e in entries
            if e["event_type"] == "case.routed"
        ),
        None,
    )
    answers = []
    for e in entries:
        at = datetime.fromisoformat(e["occurred_at"])
        if e["kind"] == "status_changed" and e["summary"].get("to_status") in (
            "in_progress",
            "resolved",
            "closed",
        ):
            answers.append(at)
        if (
            e["kind"] == "message"
            and e["summary"].get("sender_role") == "agent"
            and routed is not None
            and at >= routed
        ):
            answers.append(at)
    return min(answers, default=None)


def submitted(entries: list[dict[str, Any]]) -> datetime:
    return next(
        datetime.fromisoformat(e["occurred_at"]) for e in entries if e["kind"] == "submitted"
    )


def h(seconds: float) -> float:
    return round(seconds / 3600, 1)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def expected_sla(cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    rows = {}
    for team in ("hr_operations", "investigations"):
        mine = [c for c in cases if c["team"] == team]
        answered = [c for c in mine if c["first_response_at"] is not None]
        # HR Operations' calendar runs round the clock: working time is wall time.
        # Investigations' opens on a day three days away: none passes in the test.
        work = [
            (c["first_response_at"] - c["submitted_at"]).total_seconds()
            if team == "hr_operations"
            else 0.0
            for c in answered
        ]
        met = [c for c in answered if c["first_response_at"] <= c["first_response_due"]]
        enough = len(answered) >= THRESHOLD
        rows[team] = {
            "cases": expected_cell(len(mine)),
            "first_response_median_h": h(statistics.median(work)) if enough else None,
            "first_response_p90_h": h(quantile(work, 0.9)) if enough else None,
            "first_response_met_pct": round(100 * len(met) / len(answered), 1) if enough else None,
            # Two cases stay resolved: fewer than 5, withheld.
            "resolution_median_h": None,
            "resolution_p90_h": None,
            "resolution_met_pct": None,
            "breaches": expected_cell(sum(len(c["breached"]) for c in mine)),
            "escalations": expected_cell(sum(c["escalations"] for c in mine)),
        }
    return rows


async def observed_cases(
    c: httpx.AsyncClient, raised: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    cases = []
    for case in raised:
        entries = await history(c, case["case_id"])
        seen = await view(c, case["case_id"])
        cases.append(
            {
                **case,
                "team": seen["assignment"]["team"],
                "status": seen["status"],
                "submitted_at": submitted(entries),
                "first_response_at": first_response(entries),
                "first_response_due": datetime.fromisoformat(seen["sla"]["first_response_due"]),
                "breached": {e["summary"]["clock"] for e in entries if e["kind"] == "sla_breached"},
                "escalations": sum(1 for e in entries if e["kind"] == "escalated"),
                "reopened": any(e["kind"] == "reopened" for e in entries),
                "resolved_once": any(
                    e["kind"] == "status_changed" and e["summary"].get("to_status") == "resolved"
                    for e in entries
                ),
            }
        )
    return cases


def category_rows(counts: Counter[str]) -> dict[str, dict[str, Any]]:
    """Primary and complementary suppression, worked out here by brute force: hide the
    smallest shown counts until every small count could be at least two values given the
    total, the shown counts, 1..4 for a small one and 5..(smallest still shown) for a
    hidden one."""
    cells = {k: expected_cell(n) for k, n in counts.items()}
    small = [k for k, n in counts.items() if 0 < n < THRESHOLD]
    shown = sorted((n, k) for k, n in counts.items() if n >= THRESHOLD)
    hidden: list[str] = []

    def pinned() -> bool:
        cap = shown[0][0] if shown else sum(counts.values())
        ranges = [range(1, THRESHOLD)] * len(small) + [range(THRESHOLD, cap + 1)] * len(hidden)
        target = sum(counts[k] for k in small + hidden)
        worlds = [v for v in itertools.product(*ranges) if sum(v) == target]
        return any(len({w[i] for w in worlds}) < 2 for i in range(len(small)))

    while small and pinned():
        _n, key = shown.pop(0)
        hidden.append(key)
        cells[key] = HIDDEN
    return cells


# --- The test ------------------------------------------------------------------------------------


async def test_the_dashboard_figures_match_the_known_cases(system):
    today = datetime.now(UTC).date().isoformat()
    period = {"from": today, "to": today}
    async with httpx.AsyncClient(base_url=system.url("intake"), timeout=20) as c:
        raised = await raise_cases(c)
        owners = {}
        for case in raised:
            seen = await until_status(c, case["case_id"], "assigned")
            owners[case["case_id"]] = seen["assignment"]["owner_id"]
        payroll = [x for x in raised if x["category"] == "payroll_query"]
        general = [x for x in raised if x["category"] == "general_query"]
        # Owners answer every payroll query and two general ones: the first response.
        for case in payroll + general[:2]:
            owner = owners[case["case_id"]]
            answered = await c.post(
                f"/api/v1/cases/{case['case_id']}/messages",
                json={"body": "Thank you, we are looking into it."},
                headers=auth_headers(owner, "hr_agent", employee_id=owner),
            )
            assert answered.status_code == 201, answered.text
        for case in payroll + general[:2]:
            await until_status(c, case["case_id"], "in_progress")
        # A manager resolves three payroll queries and reopens one.
        for case in payroll[:3]:
            moved = await c.post(
                f"/api/v1/cases/{case['case_id']}/status",
                json={"to_status": "resolved", "reason": "answered"},
                headers=AS_MANAGER,
            )
            assert moved.status_code == 202, moved.text
            await until_status(c, case["case_id"], "resolved")
        reopened = await c.post(
            f"/api/v1/cases/{payroll[0]['case_id']}/status",
            json={"to_status": "reopened", "reason": "the reporter came back"},
            headers=AS_MANAGER,
        )
        assert reopened.status_code == 202, reopened.text
        await until_status(c, payroll[0]["case_id"], "in_progress")

        # The unanswered HR Operations cases breach their first response and escalate.
        unanswered = [x for x in raised if x["category"] == "leave_query"] + general[2:]

        async def all_breached() -> bool:
            for case in unanswered:
                if not any(e["kind"] == "escalated" for e in await history(c, case["case_id"])):
                    return False
            return True

        await eventually(all_breached, "the unanswered cases breached and escalated")

        # The figures settle: compare once the histories stop changing.
        async def settled() -> list[dict[str, Any]] | None:
            before = await observed_cases(c, raised)
            await asyncio.sleep(3)
            after = await observed_cases(c, raised)
            return after if before == after else None

        cases = await eventually(settled, "the histories to settle")
        assert {c_["team"] for c_ in cases} == {"hr_operations", "investigations"}

        async def api(
            path: str, headers: dict[str, str] = AS_MANAGER, **params: str
        ) -> httpx.Response:
            return await c.get(
                f"/api/v1/analytics/{path}", params={**period, **params}, headers=headers
            )

        # --- Counts: a cell of 3 is "fewer than 5"; the lone hidden cell takes the next.
        by_category = Counter(category for category, _reporter in CASES)
        answer = answer_category = (await api("cases", group_by="category")).json()
        rows = {r["key"]: r["count"] for r in answer["rows"]}
        expected_categories = category_rows(by_category)
        for key, expected in expected_categories.items():
            assert rows[key] == expected, key
        assert rows["leave_query"]["display"] == "fewer than 5"
        assert rows["harassment"]["suppressed"]  # secondary: 5 is the next smallest
        assert rows["grievance"] == expected_cell(0)
        assert answer["total"] == expected_cell(len(CASES))  # restricted ones counted
        csv_rows = list(
            csv.reader(io.StringIO((await api("cases", group_by="category", format="csv")).text))
        )
        assert csv_rows[0] == ["category", "label", "cases"]
        csv_by_key = {r[0]: r[2] for r in csv_rows[1:]}
        assert csv_by_key["leave_query"] == "fewer than 5"
        assert csv_by_key["payroll_query"] == "6"
        assert csv_by_key["total"] == str(len(CASES))

        by_team = Counter(TEAMS[x[0]] for x in CASES)
        answer = answer_team = (await api("cases", group_by="team")).json()
        assert {r["key"]: r["count"] for r in answer["rows"]} == {
            t: expected_cell(n) for t, n in by_team.items()
        }
        answer = (await api("cases", group_by="channel")).json()
        assert {r["key"]: r["count"]["count"] for r in answer["rows"]}["api"] == len(CASES)
        answer = (await api("cases", group_by="week")).json()
        assert [r["count"] for r in answer["rows"]] == [expected_cell(len(CASES))]
        filtered = (await api("cases", group_by="category", team="investigations")).json()
        assert filtered["total"] == expected_cell(5)

        # --- Drill-down: the row's link opens the work queue, whose own rules apply.
        team_link = next(r["link"] for r in answer_team["rows"] if r["key"] == "investigations")
        query = team_link.split("?", 1)[1]
        as_manager = await c.get(f"/api/v1/work-queue?{query}&limit=100", headers=AS_MANAGER)
        assert as_manager.status_code == 200, as_manager.text
        assert len(as_manager.json()["items"]) == 5  # restricted: an hr_manager reads them
        as_agent = await c.get(f"/api/v1/work-queue?{query}&limit=100", headers=AS_AGENT)
        assert as_agent.status_code == 200 and as_agent.json()["items"] == []
        leave_link = next(r["link"] for r in answer_category["rows"] if r["key"] == "leave_query")
        leave = await c.get(f"/api/v1/work-queue?{leave_link.split('?', 1)[1]}", headers=AS_MANAGER)
        assert len(leave.json()["items"]) == 3

        # --- SLA per team, in working time.
        sla = {r["team"]: r for r in (await api("sla", group_by="team")).json()["rows"]}
        for team, expected in expected_sla(cases).items():
            assert {k: sla[team][k] for k in expected} == expected, team
        assert sla["hr_operations"]["breaches"]["count"] >= 6  # the unanswered ones at least
        csv_sla = list(
            csv.reader(io.StringIO((await api("sla", group_by="team", format="csv")).text))
        )
        ops = next(r for r in csv_sla if r[0] == "hr_operations")
        assert ops[1] == "HR Operations"  # the team's name, as on the page
        assert ops[2] == "16"
        assert ops[9] == expected_sla(cases)["hr_operations"]["breaches"]["display"]

        # --- The whole dashboard.
        board = (await api("dashboard")).json()
        for name in ("category", "channel", "week", "team"):  # the same tables as the doors
            door = (await api("cases", group_by=name)).json()
            assert board[f"volume_by_{name}"]["rows"] == door["rows"], name
            assert board[f"volume_by_{name}"]["total"] == door["total"], name
        assert board["reopen_rate"] == {
            "reopened": expected_cell(sum(1 for x in cases if x["reopened"])),
            "resolved": expected_cell(sum(1 for x in cases if x["resolved_once"])),
            "rate_pct": None,  # from 3 resolved cases: withheld
        }
        open_now = sum(1 for x in cases if x["status"] not in ("resolved", "closed"))
        backlog = {r["key"]: r["count"] for r in board["backlog_by_age"]["rows"]}
        assert backlog == {"lt_1w": expected_cell(open_now), "1w_4w": expected_cell(0),
                           "1m_3m": expected_cell(0), "gt_3m": expected_cell(0)}  # fmt: skip
        respondents = board["recurring"]["respondents"]
        assert respondents == [
            {"person_id": RESPONDENT, "label": RESPONDENT, "cases": expected_cell(5)}
        ]
        repeated = Counter(r for _c, r in CASES)
        reporters = {p["person_id"]: p["cases"] for p in board["recurring"]["reporters"]}
        assert reporters == {r: expected_cell(n) for r, n in repeated.items() if n >= 2}
        people = directory()
        per_department = Counter((people[r]["department"], cat) for cat, r in CASES)
        rising = {
            (x["department"], x["category"]): x["current"] for x in board["recurring"]["rising"]
        }
        assert rising == {k: expected_cell(n) for k, n in per_department.items() if n >= 2}
        # No case reference and no name anywhere in the figures.
        text = (await api("dashboard")).text
        assert "HR-" not in text and "Jordan" not in text and "Lee" not in text

        # An admin reads the figures but not restricted cases: the respondent named only in
        # restricted cases is withheld, still counted.
        as_admin = (await api("dashboard", headers=AS_ADMIN)).json()
        assert as_admin["recurring"]["respondents"] == [
            {
                "person_id": None,
                "label": "Withheld (restricted cases only)",
                "cases": expected_cell(5),
            }
        ]
        assert as_admin["volume_by_team"]["total"] == expected_cell(len(CASES))

        # --- Who may ask, and what is refused.
        for headers in (AS_EMPLOYEE, AS_AGENT):
            for path in ("cases", "sla", "dashboard"):
                assert (await api(path, headers=headers)).status_code == 403
        bad = await api("cases", group_by="colour")
        assert bad.status_code == 422 and "group_by" in bad.text
        backwards = await c.get(
            "/api/v1/analytics/cases",
            params={
                "from": today,
                "to": (datetime.now(UTC) - timedelta(days=1)).date().isoformat(),
            },
            headers=AS_MANAGER,
        )
        assert backwards.status_code == 422 and "to" in backwards.text
        too_long = await c.get(
            "/api/v1/analytics/sla",
            params={"from": "2020-01-01", "to": "2026-01-01"},
            headers=AS_MANAGER,
        )
        assert too_long.status_code == 422 and "at most" in too_long.text
        not_a_date = await c.get(
            "/api/v1/analytics/sla", params={"from": "2026-13-01"}, headers=AS_MANAGER
        )
        assert not_a_date.status_code == 422 and "from" in not_a_date.text
        # `from` alone, too far back for the default end (today): a 422 on `from`, at
        # every door, never a 500 when the figures are read.
        for path in ("cases", "sla", "dashboard"):
            far_back = await c.get(
                f"/api/v1/analytics/{path}", params={"from": "2000-01-01"}, headers=AS_MANAGER
            )
            assert far_back.status_code == 422, (path, far_back.text)
            [error] = far_back.json()["detail"]
            assert error["loc"] == ["query", "from"], error
            assert "at most" in error["msg"] and "defaults to today" in error["msg"]
