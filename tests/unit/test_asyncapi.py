"""The AsyncAPI document: committed and fresh, every event type with its payload schema,
and each service serving its own channels with a page that needs no other host."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from hrcase.cli import main
from hrcase.services import QUEUES
from shared.asyncapi import bus_document, bus_yaml, consumed_event_types
from shared.events import EVENT_TYPES
from shared.service import ServiceSpec, create_app
from shared.topology import PUBLISHES

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "asyncapi.yaml"


def test_committed_document_is_the_generated_one() -> None:
    assert COMMITTED.exists(), "docs/asyncapi.yaml is missing: run `make asyncapi`"
    assert COMMITTED.read_text(encoding="utf-8") == bus_yaml(QUEUES), (
        "docs/asyncapi.yaml is stale: run `make asyncapi` and commit it"
    )


def test_check_command_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "asyncapi.yaml"
    stale.write_text(bus_yaml(QUEUES).replace("hr.events", "hr.other", 1), encoding="utf-8")
    result = CliRunner().invoke(main, ["asyncapi", "--check", str(stale)])
    assert result.exit_code == 1
    assert "stale" in result.output
    fresh = CliRunner().invoke(main, ["asyncapi", "--check", str(COMMITTED)])
    assert fresh.exit_code == 0, fresh.output


def _envelope_schema(document: dict[str, Any], event_type: str) -> dict[str, Any]:
    schemas = document["components"]["schemas"]
    found = [
        s
        for s in schemas.values()
        if s.get("properties", {}).get("event_type", {}).get("const") == event_type
    ]
    assert len(found) == 1, f"{event_type}: {len(found)} envelope schemas"
    return found[0]


@functools.cache
def _committed_document() -> dict[str, Any]:
    """docs/asyncapi.yaml as committed, parsed once for the module's ~100 event types
    (PyYAML takes about a second for it; the tests below only read it)."""
    document: dict[str, Any] = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    return document


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_type_is_documented_with_its_payload_schema(event_type: str) -> None:
    document = _committed_document()
    assert document["asyncapi"] == "3.0.0"
    envelope = _envelope_schema(document, event_type)
    payload_ref = envelope["properties"]["payload"]["$ref"].rsplit("/", 1)[-1]
    payload = document["components"]["schemas"][payload_ref]
    model_fields = set(EVENT_TYPES[event_type].model_fields)
    assert set(payload.get("properties", {})) == model_fields
    assert envelope["properties"]["schema_version"]["const"] == (
        EVENT_TYPES[event_type].schema_version
    )


def test_every_publisher_and_queue_is_an_operation() -> None:
    document = bus_document(QUEUES)
    operations = document["operations"]
    for publisher, event_types in PUBLISHES.items():
        for event_type in event_types:
            op = operations[f"{event_type}:{publisher}"]
            assert op["action"] == "send"
            amqp = op["bindings"]["amqp"]
            assert amqp["deliveryMode"] == 2 and amqp["mandatory"] is True
    for service, queue in QUEUES.items():
        # Each partition (README "Partitions by case") is a channel of its own.
        for name in queue.queue_names:
            op = operations[f"{name}:{service}"]
            assert op["action"] == "receive"
            channel = document["channels"][f"{name}:{service}"]
            assert channel["address"] == name
            payload = document["components"]["schemas"][f"{name}:{service}:Message:Payload"]
            refs = [r["$ref"] for r in payload.get("anyOf", [payload])]
            assert len(refs) == len(consumed_event_types(queue))


@pytest.mark.parametrize("service", sorted(QUEUES))
async def test_each_service_serves_its_own_channels_offline(service: str) -> None:
    app = create_app(ServiceSpec(name=service, subscriptions=QUEUES[service]))
    transport = httpx.ASGITransport(app=app)  # no lifespan: the document needs no broker
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        as_json = await client.get("/asyncapi.json")
        as_yaml = await client.get("/asyncapi.yaml")
        page = await client.get("/asyncapi")
    assert as_json.status_code == as_yaml.status_code == page.status_code == 200
    document = as_json.json()
    assert yaml.safe_load(as_yaml.text) == document
    addresses = {c["address"] for c in document["channels"].values()}
    consumed = set(QUEUES[service].queue_names)
    assert consumed <= addresses
    assert addresses - consumed == set(PUBLISHES.get(service, ()))
    assert page.headers["content-type"].startswith("text/html")
    # Works offline: no script, style or link to any other host.
    assert "<script" not in page.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text)
    for operation in document["operations"]:
        assert operation in page.text
