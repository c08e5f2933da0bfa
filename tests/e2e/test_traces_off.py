"""With the default configuration nothing is traced: no export, no trace context on the bus.

The exporter's endpoint points at a receiver all the same (tests/support/otlp.py), so an
exporter installed by mistake would be seen.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.test_traces import FLOW_EVENTS, audited, submit_case, tap, tapped_message
from tests.support.otlp import otlp_receiver
from tests.support.system import running_system


@pytest.fixture(scope="module")
def receiver():
    with otlp_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def untraced_system(database_url, rabbitmq_url, logs_dir, receiver):
    mp = pytest.MonkeyPatch()
    mp.delenv("OTEL_TRACES_EXPORTER", raising=False)  # the default, whatever the shell says
    try:
        with running_system(
            database_url,
            rabbitmq_url,
            logs_dir / "traces-off",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.port}",
            OTEL_BSP_SCHEDULE_DELAY="100",
            LOG_LEVEL="DEBUG",
        ) as running:
            yield running
    finally:
        mp.undo()


async def test_by_default_nothing_is_traced_or_exported(untraced_system, receiver, amqp):
    channel, queue = await tap(amqp, "case.submitted")
    try:
        case_id = await submit_case(untraced_system)
        message = await tapped_message(queue, case_id)
    finally:
        await channel.close()
    assert not {"traceparent", "tracestate"} & set(message.headers or {})
    entries = await audited(untraced_system, case_id)
    assert len(entries) >= FLOW_EVENTS
    # Well past the exporters' schedule delay: not one export request came.
    await asyncio.sleep(1.0)
    assert receiver.requests == 0
    # Log lines carry no trace ids either.
    log = untraced_system.services["routing"].log_path.read_text()
    assert f'"case_id": "{case_id}"' in log
    assert '"trace_id"' not in log
