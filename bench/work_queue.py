# ruff: noqa: E501, SIM905  (tables of benchmark data and SQL read better on one line each)
"""Work-queue benchmark: the staff queue, a search and a case page over 200,000 cases.

    .venv/bin/python -m bench.work_queue [--cases 200000] [--runs 200] [--keep | --reuse]

Creates its own database (`<db>_bench_work_queue`), migrated like production, and fills
intake's read model with generate_series: a realistic mix of statuses (about a third
open), sensitivities (15 % restricted), teams and owners from routing's policy, channels,
two messages and a note per case, and English text (subject and 30-80 words of
description). Routing's roster is stored through intake's own projection code.

Then it times, with the application's own functions (the same SQL the app runs):
- the work queue (page + counts per scope) for several principals, scopes and filters;
- full-text searches (common words, a rare word, a reference prefix);
- a case page read (case row, access rule, messages, attachments, notes, links, clocks);
- a baseline in the same run: a primary-key lookup of a case.
It prints p50/p95 in ms, each p50's ratio to the baseline's, and EXPLAIN ANALYZE plans.
Targets: queue and search p95 <= 150 ms, case page p95 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.intake.adapters import roster, sql
from services.intake.adapters import work_queue as queue_sql
from services.intake.application import actions
from services.intake.application import work_queue as queue_app
from services.intake.domain.case import case_access
from services.intake.domain.work_queue import Viewer, WorkQueueQuery
from services.routing.application.policy import roster_of
from services.routing.domain.policy import load_policy
from shared.auth import Principal
from shared.db import create_pool
from tests.support.infra import admin_database_url, drop_database, recreate_database

PRIYA = Principal(subject="A-1001", roles=frozenset({"hr_agent"}), employee_id="A-1001")
HELEN = Principal(subject="A-3001", roles=frozenset({"investigator"}), employee_id="A-3001")
VICTOR = Principal(subject="M-9002", roles=frozenset({"hr_manager"}), employee_id="M-9002")

# (category, team, sensitivity, priority, weight, words the text is likely to carry)
CATEGORIES = [
    ("payroll_query", "hr_operations", "normal", "P4", 5, "payslip overtime salary tax deduction bonus"),
    ("leave_query", "hr_operations", "normal", "P4", 4, "leave holiday absence maternity sick balance"),
    ("policy_question", "hr_operations", "normal", "P4", 2, "policy handbook remote hybrid procedure"),
    ("general_query", "hr_operations", "normal", "P4", 2, "question pension address benefits"),
    ("grievance", "employee_relations", "confidential", "P3", 2, "grievance unfair workload bullying"),
    ("contract_dispute", "employee_relations", "confidential", "P3", 1, "contract notice probation hours"),
    ("wrongful_termination", "employee_relations", "confidential", "P2", 1, "dismissed redundancy terminated"),
    ("harassment", "investigations", "restricted", "P2", 1, "harassment comments intimidation"),
    ("discrimination", "investigations", "restricted", "P2", 1, "discrimination age gender religion"),
    ("misconduct", "investigations", "restricted", "P2", 1, "misconduct theft falsified timesheet"),
    ("workplace_injury", "injury_management", "confidential", "P2", 2, "injury accident slipped warehouse"),
]  # fmt: skip
MEMBERS = {
    "hr_operations": ["A-1001", "A-1002", "A-1003"],
    "employee_relations": ["A-2001", "A-2002"],
    "investigations": ["A-3001", "A-3002", "A-3003"],
    "injury_management": ["A-4001", "A-4002"],
}
VOCABULARY = (
    "the my manager team week month since after before again because please help need "
    "office site shift rota schedule email meeting colleague supervisor department store "
    "warehouse finance sales customer project report form system request approval late "
    "missing wrong change review update asked told said written verbal several times "
    "yesterday today monday friday morning evening night paid hours days weeks year "
    "payroll payslip overtime holiday leave sick contract policy training equipment safety"
).split()
SYLLABLES = "ba be co da di fe ga ho ka ki lo ma me no pa pe ri sa so ta te vo wi zu".split()


def vocabulary(size: int = 3000) -> list[str]:
    """Common words first, then `size` made-up words: drawn with a Zipf-like skew (the
    fill's power(random(), 2.5)), so a few words are everywhere and most are rare."""
    rng = random.Random(11)
    made: set[str] = set()
    while len(made) < size:
        made.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return VOCABULARY + sorted(made)


def _category_slots() -> list[tuple[Any, ...]]:
    slots = []
    for category, team, sensitivity, priority, weight, words in CATEGORIES:
        slots += [(category, team, sensitivity, priority, MEMBERS[team], words.split())] * weight
    return slots


FILL_CASES = """
INSERT INTO intake.cases (
    case_id, reference, channel, subject, description, reporter_employee_id, reporter_name,
    reporter_email, requested_category, status, category, sensitivity, priority,
    first_response_due, resolution_due, team, owner_id, owner_name, submitted_at, routed_at,
    assigned_at, updated_at, anonymous, logged_by, submitted_by, assignment_needed,
    first_response_state, first_response_left, resolution_state, resolution_left)
SELECT
    gen_random_uuid(), 'HR-' || extract(year FROM t.submitted_at) || '-' || lpad(g::text, 6, '0'),
    t.channel, t.subject, t.description,
    CASE WHEN t.anonymous THEN NULL ELSE 'E-' || (10000 + g % 40000) END,
    CASE WHEN t.anonymous THEN NULL ELSE 'Employee ' || (10000 + g % 40000) END,
    CASE WHEN t.anonymous THEN NULL ELSE 'e' || (10000 + g % 40000) || '@example.com' END,
    t.category, t.status, t.category, t.sensitivity,
    CASE WHEN g % 97 = 0 THEN 'P1' ELSE t.priority END,
    d.first_due, t.submitted_at + interval '10 days', t.team, t.owner_id,
    s.name, t.submitted_at, t.submitted_at + interval '1 second',
    t.submitted_at + interval '2 seconds', t.submitted_at + interval '1 hour', t.anonymous,
    CASE WHEN t.channel = 'phone' THEN 'A-1002' END,
    CASE WHEN g % 50 = 0 THEN 'A-1003' END,
    CASE WHEN t.owner_id IS NULL THEN 'every member of the team is conflicted out' END,
    CASE WHEN t.status IN ('routed', 'assigned') THEN 'running' ELSE 'stopped' END, NULL,
    CASE WHEN t.status IN ('routed', 'assigned', 'in_progress') THEN 'running'
         WHEN t.status = 'waiting_on_employee' THEN 'paused' ELSE 'stopped' END,
    CASE WHEN t.status = 'waiting_on_employee' THEN make_interval(hours => g % 40) END
FROM generate_series(1, $1::int) AS g
CROSS JOIN LATERAL (
    SELECT c.*, o.status,
        CASE WHEN o.status IN ('resolved', 'closed')
             THEN now() - make_interval(days => 30 + g % 700, mins => g % 1440)
             ELSE now() - make_interval(days => g % 14, mins => g % 1440) END AS submitted_at,
        CASE WHEN o.status IN ('routed', 'assigned', 'in_progress', 'waiting_on_employee')
             AND g % 33 = 0 THEN NULL
             ELSE c.members[1 + (g / 7) % array_length(c.members, 1)] END AS owner_id,
        (ARRAY['portal', 'portal', 'api', 'email', 'email', 'phone'])[1 + g % 6] AS channel,
        g % 31 = 0 AS anonymous,
        initcap(c.words[1 + g % array_length(c.words, 1)]) || ' '
            || (ARRAY['issue', 'problem', 'question', 'complaint', 'request'])[1 + g % 5]
            || ' ' || (ARRAY['this week', 'since March', 'again', 'for my team', ''])[1 + g % 5]
            AS subject,
        array_to_string(ARRAY(
            SELECT CASE WHEN random() < 0.15 THEN c.words[1 + floor(random() * array_length(c.words, 1))::int]
                        ELSE ($2::text[])[1 + floor(power(random(), 2.5) * array_length($2::text[], 1))::int] END
            FROM generate_series(1, 30 + (g * 7) % 50)
        ), ' ') || ' zeta' || (g % 5000) AS description
    FROM (SELECT * FROM bench_slots WHERE slot = (g * 7919) % (SELECT count(*) FROM bench_slots)) c
    CROSS JOIN LATERAL (SELECT CASE
        WHEN (g * 31) % 100 < 2 THEN 'routed' WHEN (g * 31) % 100 < 17 THEN 'assigned'
        WHEN (g * 31) % 100 < 27 THEN 'in_progress'
        WHEN (g * 31) % 100 < 32 THEN 'waiting_on_employee'
        WHEN (g * 31) % 100 < 50 THEN 'resolved' ELSE 'closed' END AS status) o
) t
LEFT JOIN intake.staff s ON s.staff_id = t.owner_id
CROSS JOIN LATERAL (SELECT t.submitted_at + make_interval(hours => 8 + g % 64) AS first_due) d
"""


async def fill(conn: asyncpg.Connection, cases: int) -> None:
    policy = load_policy()
    async with conn.transaction():
        await roster.replace_roster(conn, roster_of(policy), datetime.now(UTC))
    await conn.execute(
        "CREATE TEMP TABLE bench_slots (slot int, category text, team text, sensitivity text,"
        " priority text, members text[], words text[])"
    )
    await conn.executemany(
        "INSERT INTO bench_slots VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [(i, *slot) for i, slot in enumerate(_category_slots())],
    )
    await conn.execute(FILL_CASES, cases, vocabulary())
    await conn.execute(
        """INSERT INTO intake.case_messages (message_id, case_id, channel, sender_role, body,
               received_at)
           SELECT gen_random_uuid(), case_id, channel, CASE WHEN n = 1 THEN 'reporter'
                  ELSE 'agent' END, left(description, 300), submitted_at + make_interval(hours => n)
           FROM intake.cases, generate_series(1, 2) AS n"""
    )
    await conn.execute(
        """INSERT INTO intake.case_notes (note_id, case_id, author_id, body, internal, created_at)
           SELECT gen_random_uuid(), case_id, coalesce(owner_id, 'A-1001'),
                  'Called the employee; waiting for documents.', true,
                  submitted_at + interval '3 hours' FROM intake.cases"""
    )
    await conn.execute("VACUUM ANALYZE intake.cases")
    await conn.execute("ANALYZE intake.case_messages")
    await conn.execute("ANALYZE intake.case_notes")


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


async def timed(runs: int, call: Callable[[int], Awaitable[Any]]) -> tuple[float, float]:
    for i in range(5):  # warm the caches and the connection's statement cache
        await call(i)
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - start) * 1000)
    return percentiles(samples)


QUEUE_CASES: list[tuple[str, Principal, dict[str, Any]]] = [
    ("agent, mine (landing page)", PRIYA, {}),
    ("agent, my team", PRIYA, {"scope": "team"}),
    ("agent, unassigned", PRIYA, {"scope": "unassigned"}),
    ("agent, all I may see", PRIYA, {"scope": "all"}),
    ("agent, all, P2 + grievance/contract", PRIYA, {"scope": "all", "priority": ["P2", "P3"], "category": ["grievance", "contract_dispute"]}),
    ("agent, all, SLA breached", PRIYA, {"scope": "all", "sla": "breached"}),
    ("agent, all, status closed, channel phone", PRIYA, {"scope": "all", "status": ["closed"], "channel": ["phone"]}),
    ("agent, all, submitted in one week", PRIYA, {"scope": "all", "submitted_from": "2026-06-01", "submitted_to": "2026-06-07", "status": ["resolved", "closed"]}),
    ("investigator, all", HELEN, {"scope": "all"}),
    ("manager, all, owner A-3002", VICTOR, {"scope": "all", "owner": "A-3002"}),
]  # fmt: skip
SEARCH_CASES: list[tuple[str, Principal, dict[str, Any]]] = [
    ("agent, 'overtime payslip'", PRIYA, {"scope": "all", "q": "overtime payslip"}),
    ("agent, 'harassment' (restricted hidden)", PRIYA, {"scope": "all", "q": "harassment comments"}),
    ("agent, rare word (open cases)", PRIYA, {"scope": "all", "q": "zeta4310"}),
    ("manager, rare word, every status", VICTOR, {"scope": "all", "q": "zeta1234", "status": ["new", "routed", "assigned", "in_progress", "waiting_on_employee", "resolved", "closed"]}),
    ("agent, reference prefix", PRIYA, {"scope": "all", "q": "HR-2026-00012"}),
]  # fmt: skip


# The queries whose plans are printed.
EXPLAINED = {QUEUE_CASES[0][0], QUEUE_CASES[3][0], SEARCH_CASES[0][0], SEARCH_CASES[2][0]}


async def explain(pool: asyncpg.Pool, statement: str, values: list[Any]) -> str:
    rows = await pool.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {statement}", *values)
    return "\n".join("    " + row[0] for row in rows)


async def viewer(pool: asyncpg.Pool, principal: Principal) -> Viewer:
    return await queue_app.staff_viewer(pool, principal)


async def measure(pool: asyncpg.Pool, runs: int) -> None:
    ids = [row["case_id"] for row in await pool.fetch("SELECT case_id FROM intake.cases")]
    rng = random.Random(7)
    picks = [rng.choice(ids) for _ in range(runs + 10)]

    async def by_key(i: int) -> Any:
        return await pool.fetchrow("SELECT * FROM intake.cases WHERE case_id = $1", picks[i])

    base50, base95 = await timed(runs, by_key)
    print(f"\nbaseline: primary-key lookup of a case: p50 {base50:.2f} ms, p95 {base95:.2f} ms\n")
    print(f"{'query':48} {'p50 ms':>8} {'p95 ms':>8} {'p50/baseline':>13}  rows  counts")
    plans: list[tuple[str, str]] = []
    for title, cases in (("work queue", QUEUE_CASES), ("search", SEARCH_CASES)):
        print(f"-- {title} (page of 25 + counts per scope)")
        for label, principal, params in cases:
            query = WorkQueueQuery.model_validate(params)
            found = await queue_app.work_queue(pool, principal, query)

            async def one(
                _: int, principal: Principal = principal, query: WorkQueueQuery = query
            ) -> Any:
                return await queue_app.work_queue(pool, principal, query)

            p50, p95 = await timed(runs, one)
            print(
                f"{label:48} {p50:8.1f} {p95:8.1f} {p50 / base50:13.1f} {len(found.rows):5}  {found.counts}"
            )
            if label in (
                QUEUE_CASES[0][0],
                QUEUE_CASES[3][0],
                SEARCH_CASES[0][0],
                SEARCH_CASES[2][0],
            ):
                seen = await viewer(pool, principal)
                now = datetime.now(UTC)
                plans.append(
                    (f"{label}: page", await explain(pool, *queue_sql.page_sql(query, seen, now)))
                )
                plans.append(
                    (
                        f"{label}: counts",
                        await explain(pool, *queue_sql.counts_sql(query, seen, now)),
                    )
                )
        if title == "work queue":
            first = await queue_app.work_queue(pool, PRIYA, WorkQueueQuery(scope="all"))
            second = WorkQueueQuery(scope="all", cursor=first.next_cursor)

            async def page_two(_: int, second: WorkQueueQuery = second) -> Any:
                return await queue_app.work_queue(pool, PRIYA, second)

            p50, p95 = await timed(runs, page_two)
            print(
                f"{'agent, all, second page (cursor)':48} {p50:8.1f} {p95:8.1f} {p50 / base50:13.1f}"
            )

    async def case_page(i: int) -> Any:
        row = await sql.get_case(pool, picks[i])
        assert row is not None
        principal = VICTOR
        assert case_access(principal, actions.facts(row)).allowed
        found = await actions.details(pool, row, principal)
        return found, await queue_app.clocks_of_case(pool, row)

    p50, p95 = await timed(runs, case_page)
    print("-- case page (case, access rule, messages, attachments, notes, links, clocks)")
    print(f"{'manager opens a case':48} {p50:8.1f} {p95:8.1f} {p50 / base50:13.1f}")
    for label, plan in plans:
        print(f"\nEXPLAIN ANALYZE {label}\n{plan}")
    print("\nEXPLAIN ANALYZE case page: the case row")
    print(await explain(pool, "SELECT * FROM intake.cases WHERE case_id = $1", [picks[0]]))
    print("EXPLAIN ANALYZE case page: messages")
    print(await explain(pool, MESSAGES_SQL, [picks[0]]))


MESSAGES_SQL = """SELECT m.message_id, m.channel, m.sender_role, m.body, m.received_at,
                  coalesce(array_agg(a.filename ORDER BY a.filename)
                           FILTER (WHERE a.attachment_id IS NOT NULL), '{}') AS attachments
           FROM intake.case_messages m
           LEFT JOIN intake.attachments a ON a.message_id = m.message_id
           WHERE m.case_id = $1
           GROUP BY m.message_id ORDER BY m.received_at"""


async def run(cases: int, runs: int, keep: bool, reuse: bool) -> None:
    database_url = admin_database_url("bench_work_queue")
    if reuse:  # a database an earlier --keep run filled: measure again
        pool = await create_pool(database_url, size=2)
        try:
            await measure(pool, runs)
        finally:
            await pool.close()
        return
    await asyncio.to_thread(recreate_database, database_url)
    try:
        conn = await asyncpg.connect(database_url)
        for typename in ("json", "jsonb"):  # as the service's pools (shared.db)
            await conn.set_type_codec(
                typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )
        try:
            start = time.perf_counter()
            await fill(conn, cases)
            count = await conn.fetchval("SELECT count(*) FROM intake.cases")
            mix = await conn.fetch(
                "SELECT status, count(*) FROM intake.cases GROUP BY 1 ORDER BY 2 DESC"
            )
            size = await conn.fetchval(
                "SELECT pg_size_pretty(pg_total_relation_size('intake.cases'))"
            )
        finally:
            await conn.close()
        print(
            f"filled {count:,} cases in {time.perf_counter() - start:.0f} s ({size} with indexes)"
        )
        print("  " + ", ".join(f"{r['status']} {r['count']:,}" for r in mix))
        pool = await create_pool(database_url, size=2)
        try:
            await measure(pool, runs)
        finally:
            await pool.close()
    finally:
        if not keep:
            await asyncio.to_thread(drop_database, database_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure a kept database again")
    args = parser.parse_args()
    asyncio.run(run(args.cases, args.runs, args.keep, args.reuse))


if __name__ == "__main__":
    main()
