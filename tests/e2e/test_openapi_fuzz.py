"""A bounded schemathesis run of intake's and audit's OpenAPI: no input gives a 5xx.

Schemathesis generates requests from each service's own /openapi.json (valid and invalid
bodies, path, query and header values) and sends them to the running services with a
token holding every role, so requests get past authentication and reach the handlers.
Bounded per operation (MAX_EXAMPLES) so the run stays well under a minute.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.support.auth import auth_headers
from tests.support.system import RunningSystem, running_system

MAX_EXAMPLES = 25
# One principal holding every role: each operation's role check passes, so the handlers
# themselves (not just the authentication layer) see the generated input.
EVERY_ROLE = auth_headers(
    "M-9002",
    "employee",
    "hr_agent",
    "hr_manager",
    "investigator",
    "auditor",
    "admin",
    "privacy_officer",
    employee_id="M-9002",
)
BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure reproduces
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def system(database_url: str, rabbitmq_url: str, logs_dir: Any) -> Iterator[RunningSystem]:
    with running_system(
        database_url, rabbitmq_url, logs_dir / "openapi-fuzz", only=("intake", "audit")
    ) as running:
        yield running


def fuzz(base_url: str) -> tuple[list[str], Counter[int]]:
    """Every generated request of every operation, positive and negative: the 5xx found,
    and how many answers had each status."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    found: list[str] = []
    statuses: Counter[int] = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @BOUNDED
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                response = case.call(headers=EVERY_ROLE, timeout=30)
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    found.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}\n"
                        f"{case.as_curl_command(headers=EVERY_ROLE)}\n{response.text[:500]}"
                    )

            try:
                run()
            except Unsatisfiable:  # no invalid input exists for this operation
                continue
    assert operations >= 3, "the schema lists no operations"
    return found, statuses


def test_intake_answers_every_generated_request_without_a_server_error(system):
    found, statuses = fuzz(system.url("intake"))
    assert not found, "\n\n".join(found)
    print(statuses)
    # The token took the requests past authentication: handlers answered, some accepted.
    assert sum(n for status, n in statuses.items() if status < 300) >= 10, statuses
    assert sum(statuses.values()) >= 300, statuses


def test_audit_answers_every_generated_request_without_a_server_error(system):
    found, statuses = fuzz(system.url("audit"))
    assert not found, "\n\n".join(found)
    print(statuses)
    assert sum(n for status, n in statuses.items() if status < 300) >= 10, statuses
