"""The README's bus tables say what the code declares (they drifted once).

The services table (consumes / publishes) and the broker-users table (may publish / may
read) are compared with each service's SUBSCRIPTIONS (collected in hrcase.services) and
shared.topology.PUBLISHES.
"""

from __future__ import annotations

import re
from pathlib import Path

from hrcase.services import QUEUES
from shared.topology import PUBLISHES

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _types(cell: str) -> tuple[str, ...]:
    return tuple(re.findall(r"`([^`]+)`", cell))


def _rows(pattern: str) -> dict[str, list[str]]:
    rows = {}
    for line in README.splitlines():
        match = re.match(pattern, line)
        if match:
            rows[match.group(1)] = [c.strip() for c in line.strip().strip("|").split("|")]
    return rows


def test_the_services_table_lists_what_each_service_consumes_and_publishes() -> None:
    rows = _rows(r"^\| `services/(\w+)` \(")
    assert set(rows) == set(QUEUES)
    for service, cells in rows.items():
        consumes, publishes = cells[2], cells[3]
        assert _types(consumes) == QUEUES[service].binding_keys, service
        assert _types(publishes) == PUBLISHES[service], service


def test_the_broker_users_table_lists_what_each_user_may_publish_and_read() -> None:
    rows = _rows(r"^\| `hrcase-(\w+)`")
    assert set(rows) == set(PUBLISHES)
    for publisher, cells in rows.items():
        assert _types(cells[1]) == PUBLISHES[publisher], publisher
        reads = (f"{publisher}.events",) if publisher in QUEUES else ()
        assert _types(cells[2]) == reads, publisher
