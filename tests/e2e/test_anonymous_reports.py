"""Anonymous reports against a running intake: who a lockout hits, what a guesser learns.

Sources are told apart by `X-Forwarded-For`, which uvicorn honours from 127.0.0.1 (its
FORWARDED_ALLOW_IPS default), i.e. exactly as behind a local reverse proxy.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from pathlib import Path

import httpx
import pytest

from services.intake.application.actions import KEY_FAILURE_THRESHOLD
from services.intake.domain import anonymous_keys
from tests.support.auth import auth_headers
from tests.support.system import running_system

FIELD_CASE = Path(__file__).parents[1] / "fixtures/field_cases/anonymous-key-lockout.steps.txt"
REPORT = {"subject": "Safety shortcuts", "description": "Guards are removed from machines."}
AR_REFERENCE = re.compile(r"^AR-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(
        database_url, rabbitmq_url, logs_dir / "anonymous", only=("intake",)
    ) as running:
        yield running


def client(system) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.url("intake"), timeout=30)


def source(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def new_report(c: httpx.AsyncClient) -> tuple[str, str]:
    created = await c.post("/api/v1/anonymous-reports", json=REPORT)
    assert created.status_code == 201, created.text
    return created.json()["reference"], created.json()["secret_key"]


async def read(c: httpx.AsyncClient, reference: str, key: str, address: str) -> httpx.Response:
    return await c.get(
        f"/api/v1/anonymous-reports/{reference}",
        headers={"X-Report-Key": key, **source(address)},
    )


async def test_field_case_a_guesser_locks_out_only_themselves(system):
    """anonymous-key-lockout.steps.txt: 5 wrong keys, then the holder of the key reads."""
    steps = FIELD_CASE.read_text(encoding="utf-8")
    wrong_keys = int(re.search(r"(\d+)x GET", steps).group(1))
    assert wrong_keys == KEY_FAILURE_THRESHOLD == 5
    guesser, reporter = "203.0.113.66", "198.51.100.7"
    async with client(system) as c:
        reference, key = await new_report(c)
        for n in range(wrong_keys):
            wrong = await read(c, reference, f"wrong-key-{n}", guesser)
            assert wrong.status_code == 404
        # The guesser is now refused, whatever key they send...
        assert (await read(c, reference, "wrong-key-x", guesser)).status_code == 429
        locked = await read(c, reference, key, guesser)
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
        # ...and the holder of the key, from anywhere else, reads and replies as ever.
        ok = await read(c, reference, key, reporter)
        assert ok.status_code == 200, ok.text
        assert ok.json()["reference"] == reference
        reply = await c.post(
            f"/api/v1/anonymous-reports/{reference}/messages",
            headers={"X-Report-Key": key, **source(reporter)},
            json={"body": "Still happening."},
        )
        assert reply.status_code == 201
        # The guesser keeps going: the reporter is still never locked out.
        for n in range(10):
            assert (await read(c, reference, f"again-key-{n}", guesser)).status_code == 429
        assert (await read(c, reference, key, reporter)).status_code == 200
        # A typo by the reporter is forgiven once they get it right.
        for _ in range(KEY_FAILURE_THRESHOLD - 1):
            assert (await read(c, reference, "my-typo-key", reporter)).status_code == 404
        assert (await read(c, reference, key, reporter)).status_code == 200
        assert (await read(c, reference, "my-typo-key", reporter)).status_code == 404
        assert (await read(c, reference, key, reporter)).status_code == 200


async def test_a_known_and_an_unknown_reference_answer_alike(system):
    async with client(system) as c:
        known, _ = await new_report(c)
        unknown_ar, unknown_hr = anonymous_keys.new_reference(), "HR-2026-999999"
        answers: dict[str, list[httpx.Response]] = {}
        for number, reference in enumerate((known, unknown_ar, unknown_hr)):
            address = f"192.0.2.{10 + number}"
            answers[reference] = [
                await read(c, reference, f"WRONG-KEY-{n:04d}", address)
                for n in range(KEY_FAILURE_THRESHOLD + 2)
            ]
        shapes = {
            reference: [(r.status_code, r.json(), "retry-after" in r.headers) for r in found]
            for reference, found in answers.items()
        }
        assert shapes[known] == shapes[unknown_ar] == shapes[unknown_hr]
        assert [status for status, _, _ in shapes[known]] == [404] * 5 + [429] * 2

        # Timing: the same queries and the same scrypt work either way. Interleaved, one
        # attempt per source (no lockout), medians compared with room for a busy machine.
        timings: dict[str, list[float]] = {known: [], unknown_ar: []}
        for n in range(12):
            for reference in timings:
                started = time.perf_counter()
                answer = await read(c, reference, "WRONG-KEY-0000", f"198.18.{n}.{len(reference)}")
                timings[reference].append(time.perf_counter() - started)
                assert answer.status_code == 404
        ratio = statistics.median(timings[known]) / statistics.median(timings[unknown_ar])
        assert 0.5 < ratio < 2.0, timings


async def test_the_attempt_counter_is_atomic_under_concurrent_guesses(system):
    async with client(system) as c:
        reference, key = await new_report(c)
        guesses = 24
        answers = await asyncio.gather(
            *(read(c, reference, f"WRONG-KEY-{n:04d}", "203.0.113.99") for n in range(guesses))
        )
        statuses = sorted(a.status_code for a in answers)
        # Exactly the threshold's worth of keys were checked; every other guess was refused
        # unchecked. A check-then-count race would let more than five through.
        assert statuses == [404] * KEY_FAILURE_THRESHOLD + [429] * (guesses - KEY_FAILURE_THRESHOLD)
        assert (await read(c, reference, key, "198.51.100.99")).status_code == 200


async def test_anonymous_references_are_random_and_not_sequential(system):
    async with client(system) as c:
        references = [(await new_report(c))[0] for _ in range(16)]
        staff = await c.post(
            "/api/v1/cases",
            json={
                "subject": "Payslip question",
                "description": "My payslip is missing my overtime hours.",
                "reporter": {"employee_id": "E-1", "name": "Sam", "email": "sam@example.com"},
            },
            headers=auth_headers("A-1001", "hr_agent", employee_id="A-1001"),
        )
    assert all(AR_REFERENCE.match(r) for r in references), references
    assert len(set(references)) == len(references)
    # A counter keeps its leading characters; random references vary in every position.
    for position in range(3, len(references[0])):
        if references[0][position] != "-":
            assert len({r[position] for r in references}) > 1, (position, references)
    # Staff references keep their readable sequence: HR-YYYY-NNNNNN.
    assert staff.status_code == 202
    assert re.fullmatch(r"HR-\d{4}-\d{6,}", staff.json()["reference"])
