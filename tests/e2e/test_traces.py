"""One case's journey from submit to audit is one trace (README "Traces").

The four services run as their own processes, exporting over OTLP/HTTP to a receiver in
this test (tests/support/otlp.py), as they would to a collector. A tap queue bound to
hr.events shows the `traceparent` the messages carry. Handlers' log lines name their trace.
The default configuration: tests/e2e/test_traces_off.py.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.support.auth import auth_headers
from tests.support.otlp import OtlpReceiver, ReceivedSpan, otlp_receiver
from tests.support.system import running_system

SERVER, PRODUCER, CONSUMER, INTERNAL = 2, 4, 5, 1
REPORTER = {"employee_id": "E-8101", "name": "Ira Novak", "email": "ira.novak@example.com"}
AS_REPORTER = auth_headers("u-ira", "employee", employee_id=REPORTER["employee_id"])
AS_AUDITOR = auth_headers("auditor-7", "auditor")
# The flow's events (tests/e2e/test_case_flow.py): all caused by the one submission.
FLOW_EVENTS = 8


@pytest.fixture(scope="module")
def receiver():
    with otlp_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def traced_system(database_url, rabbitmq_url, logs_dir, receiver):
    with running_system(
        database_url,
        rabbitmq_url,
        logs_dir / "traces-on",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.port}",
        # Export within 0.1 s of a span ending rather than the SDK's 5 s.
        OTEL_BSP_SCHEDULE_DELAY="100",
        # The consumer's "event handled" line is a debug one.
        LOG_LEVEL="DEBUG",
    ) as running:
        yield running


async def tap(amqp, routing_key: str):
    """An exclusive queue on hr.events that copies every `routing_key` message."""
    channel = await amqp.channel()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind("hr.events", routing_key=routing_key)
    return channel, queue


async def tapped_message(queue, case_id: str):
    """The tapped message about `case_id` (others, from earlier tests, are skipped)."""
    for _ in range(200):
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.1)
            continue
        if json.loads(message.body).get("case_id") == case_id:
            return message
    raise AssertionError(f"no case.submitted message for {case_id} on the tap")


async def submit_case(system) -> str:
    body = {
        "subject": "Safety concern on loading dock",
        "description": "The forklift brakes fail and nobody fixes them.",
        "reporter": REPORTER,
    }
    with system.client("intake", headers=AS_REPORTER) as client:
        response = await asyncio.to_thread(client.post, "/api/v1/cases", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["case_id"])


async def audited(system, case_id: str) -> list[dict]:
    """The case's audit trail once the whole flow is in it."""
    for _ in range(300):
        with system.client("audit", headers=AS_AUDITOR) as client:
            response = await asyncio.to_thread(client.get, f"/api/v1/audit/cases/{case_id}")
        entries = response.json()["entries"] if response.status_code == 200 else []
        if len(entries) >= FLOW_EVENTS:
            return list(entries)
        await asyncio.sleep(0.1)
    raise AssertionError(f"the audit trail of {case_id} stayed incomplete")


def ancestry(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    """`span`, its parent, its parent's parent... up to the root (AssertionError on a gap)."""
    chain = [span]
    while chain[-1].parent_span_id:
        parent = by_id.get(chain[-1].parent_span_id)
        assert parent is not None, f"{chain[-1].name} ({chain[-1].service}) lost its parent"
        chain.append(parent)
    return chain


async def spans_of_trace(receiver: OtlpReceiver, trace_id: str, wanted) -> list[ReceivedSpan]:
    for _ in range(100):
        spans = [s for s in receiver.received() if s.trace_id == trace_id]
        if wanted(spans):
            return spans
        await asyncio.sleep(0.1)
    spans = [s for s in receiver.received() if s.trace_id == trace_id]
    raise AssertionError(
        "trace incomplete: " + ", ".join(sorted(f"{s.service}:{s.name}" for s in spans))
    )


async def test_a_case_from_submit_to_audit_is_one_trace(traced_system, receiver, amqp):
    channel, queue = await tap(amqp, "case.submitted")
    try:
        case_id = await submit_case(traced_system)
        message = await tapped_message(queue, case_id)
    finally:
        await channel.close()

    # The message carries the W3C trace context: version 00, trace id, parent id, flags
    # (sampled).
    traceparent = str((message.headers or {}).get("traceparent", ""))
    version, trace_id, parent_id, flags = traceparent.split("-")
    assert (version, len(trace_id), len(parent_id)) == ("00", 32, 16)
    assert int(flags, 16) & 1

    entries = await audited(traced_system, case_id)
    event_ids = {e["event_id"]: e["event_type"] for e in entries}

    def complete(spans: list[ReceivedSpan]) -> bool:
        audit_ids = {
            s.attributes.get("messaging.message.id") for s in spans if s.service == "audit"
        }
        handled = {(s.service, s.name) for s in spans}
        return (
            set(event_ids) <= audit_ids
            and {
                ("routing", "routing handle case.submitted"),
                ("notifications", "notifications handle case.submitted"),
                ("notifications", "notifications handle case.assigned"),
            }
            <= handled
        )

    spans = await spans_of_trace(receiver, trace_id, complete)
    by_id = {s.span_id: s for s in spans}

    # The root: intake's HTTP server span of the submission.
    roots = [s for s in spans if not s.parent_span_id]
    assert len(roots) == 1
    root = roots[0]
    assert (root.service, root.kind, root.attributes.get("http.route")) == (
        "intake",
        SERVER,
        "/api/v1/cases",
    )
    # Every span of the trace hangs off that root: no span lost its parent on the way.
    for span in spans:
        assert ancestry(span, by_id)[-1] is root

    # Intake's outbox relay published case.submitted in the request's trace; the message's
    # traceparent names the producer span that the publish span and routing both hang off.
    producer = by_id[parent_id]
    assert (producer.service, producer.kind, producer.parent_span_id) == (
        "intake",
        PRODUCER,
        root.span_id,
    )
    publish = [
        s for s in spans if s.service == "intake" and s.name == "hr.events.case.submitted publish"
    ]
    assert [s.parent_span_id for s in publish] == [producer.span_id]

    # Routing's handler: its own span under the broker's "process" span, whose parent is
    # the producer span named in the message headers.
    handler = next(s for s in spans if s.name == "routing handle case.submitted")
    assert handler.attributes["hrcase.case_id"] == case_id
    assert handler.attributes["hrcase.outcome"] == "processed"
    process = by_id[handler.parent_span_id]
    assert (process.service, process.kind, process.parent_span_id) == (
        "routing",
        CONSUMER,
        producer.span_id,
    )

    # Notifications' handler of case.assigned (published by routing) is reached through
    # a routing span: the trace crossed routing's outbox too.
    assigned = next(s for s in spans if s.name == "notifications handle case.assigned")
    services = [s.service for s in ancestry(assigned, by_id)]
    assert services[:2] == ["notifications", "notifications"]
    assert "routing" in services and services[-1] == "intake"

    # Audit recorded every event of the flow in this one trace, each under the producer
    # span of the service that published it.
    for event_id, event_type in event_ids.items():
        (recorded,) = [
            s
            for s in spans
            if s.service == "audit" and s.attributes.get("messaging.message.id") == event_id
        ]
        assert recorded.kind == CONSUMER
        assert recorded.name == f"audit record {event_type}"
        assert by_id[recorded.parent_span_id].kind == PRODUCER

    # Routing's log line about handling the event names the handler's trace and span.
    lines = traced_system.services["routing"].log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    (handled,) = [
        r
        for r in records
        if r.get("event") == "event handled"
        and r.get("case_id") == case_id
        and r.get("event_type") == "case.submitted"
    ]
    assert (handled["trace_id"], handled["span_id"]) == (trace_id, handler.span_id)
