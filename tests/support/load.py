"""A steady load of case submissions through intake's API, as people would send them,
while a test breaks things: open-loop pacing (a new case every 1/rate s whether or not
earlier ones were answered), each case with its own Idempotency-Key, retried with that
key until intake answers 2xx. A case counts as submitted only on a 2xx; a retry after a
timeout that intake had in fact accepted comes back `Idempotent-Replayed`, the same case.

    load = SteadyLoad(intake_url, rate=15, tag="faults")
    load.start()
    ...                     # kill things
    load.stop_offering()
    load.wait_answered(timeout=60)
    load.accepted()         # the submissions intake acknowledged
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.auth import auth_headers

# Cases for many employees: an HR agent raises them on their behalf (one reporter address
# per case, so notifications' acknowledgement limit per address never holds one back).
AS_AGENT = auth_headers("A-1001", "hr_agent")
# Answers worth another try with the same key: intake down, restarting or overloaded, or
# its database gone for a moment.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass
class Submission:
    """One case the load offered, and what became of it."""

    index: int
    key: str
    body: dict[str, Any]
    offered_at: float
    attempts: int = 0
    failures: list[str] = field(default_factory=list)
    case_id: str | None = None
    reference: str | None = None
    replayed: bool = False
    answered_at: float | None = None
    refused: str | None = None  # a 4xx that no retry can change: the test's bug or intake's

    @property
    def reporter_email(self) -> str:
        return str(self.body["reporter"]["email"])


class SteadyLoad:
    """Submissions at `rate` cases/s from a thread of its own (its own event loop), so the
    test's blocking fault actions (kill, restart, waits) never stall the load."""

    def __init__(
        self,
        intake_url: str,
        *,
        rate: float,
        tag: str,
        request_timeout: float = 10.0,
        retry_pause: float = 0.5,
    ) -> None:
        self.intake_url = intake_url
        self.rate = rate
        self.tag = tag
        self.request_timeout = request_timeout
        self.retry_pause = retry_pause
        self.submissions: list[Submission] = []
        self._offering = threading.Event()
        self._give_up = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- control (from the test's thread) ------------------------------------------

    def start(self) -> SteadyLoad:
        self._offering.set()
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)
        self._thread.start()
        return self

    def stop_offering(self) -> None:
        """No new cases from now; the ones offered keep being retried until answered."""
        self._offering.clear()

    def wait_answered(self, timeout: float) -> None:
        """Wait until every offered case got its answer (2xx or a final refusal); after
        `timeout` the remaining retries give up (they show as `unanswered()`)."""
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._give_up.set()
            self._thread.join(self.request_timeout + 5)
        if self._error is not None:
            raise RuntimeError("the load generator failed") from self._error

    def abandon(self) -> None:
        """Stop offering and retrying at once (the test is failing anyway)."""
        self._offering.clear()
        self._give_up.set()
        if self._thread is not None:
            self._thread.join(self.request_timeout + 5)

    # -- results --------------------------------------------------------------------

    def accepted(self) -> list[Submission]:
        return [s for s in self.submissions if s.case_id is not None]

    def unanswered(self) -> list[Submission]:
        return [s for s in self.submissions if s.case_id is None and s.refused is None]

    def refused(self) -> list[Submission]:
        return [s for s in self.submissions if s.refused is not None]

    def answered_count(self) -> int:
        return sum(s.answered_at is not None for s in self.submissions)

    def summary(self) -> dict[str, Any]:
        accepted = self.accepted()
        reasons = Counter(f.split(":", 1)[0] for s in self.submissions for f in s.failures)
        return {
            "offered": len(self.submissions),
            "submitted": len(accepted),
            "retried_submissions": sum(s.attempts > 1 for s in accepted),
            "retry_attempts": sum(s.attempts - 1 for s in accepted),
            "replayed_after_retry": sum(s.replayed for s in accepted),
            "failed_attempts_by_reason": dict(reasons.most_common()),
            "refused": len(self.refused()),
            "unanswered": len(self.unanswered()),
        }

    # -- the load's own thread --------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._offer())
        except BaseException as exc:  # reported by wait_answered
            self._error = exc

    def _body(self, i: int) -> dict[str, Any]:
        return {
            "subject": f"{self.tag} {i}: overtime missing from my payslip",
            "description": "My overtime from last month is not on my payslip, please check.",
            "reporter": {
                "employee_id": f"E-{self.tag}-{i}",
                "name": "Load Reporter",
                "email": f"{self.tag}-{i}@example.com",
            },
        }

    async def _offer(self) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
        async with httpx.AsyncClient(
            base_url=self.intake_url,
            headers=AS_AGENT,
            timeout=self.request_timeout,
            limits=limits,
        ) as client:
            tasks = []
            started = time.monotonic()
            i = 0
            while self._offering.is_set():
                await asyncio.sleep(max(0.0, started + i / self.rate - time.monotonic()))
                submission = Submission(
                    i, str(uuid.uuid4()), self._body(i), offered_at=time.monotonic()
                )
                self.submissions.append(submission)
                tasks.append(asyncio.create_task(self._submit(client, submission)))
                i += 1
            await asyncio.gather(*tasks)

    async def _submit(self, client: httpx.AsyncClient, s: Submission) -> None:
        while not self._give_up.is_set():
            s.attempts += 1
            try:
                response = await client.post(
                    "/api/v1/cases", json=s.body, headers={"Idempotency-Key": s.key}
                )
            except httpx.TransportError as exc:  # refused, reset, timed out
                s.failures.append(f"{type(exc).__name__}: {exc}")
            else:
                if response.is_success:
                    answer = response.json()
                    s.case_id, s.reference = str(answer["case_id"]), answer["reference"]
                    s.replayed = response.headers.get("Idempotent-Replayed") == "true"
                    s.answered_at = time.monotonic()
                    return
                if response.status_code not in RETRY_STATUSES:
                    s.refused = f"{response.status_code}: {response.text[:300]}"
                    s.answered_at = time.monotonic()
                    return
                s.failures.append(f"HTTP {response.status_code}: {response.text[:120]}")
            await asyncio.sleep(self.retry_pause)
