"""What tracing adds to one event's path, off (the default) and on, measured in-process.

    .venv/bin/python -m bench.tracing_overhead --events 50000

The end-to-end benchmark (bench.e2e, with and without OTEL_TRACES_EXPORTER=otlp and
bench.otlp_sink) is the real comparison but swings by more than the difference on a
shared machine; this times the code tracing puts on every event's path, per event:
- recording: `enqueue`'s capture of the active context (shared.tracing.trace_headers,
  encode_trace_context) inside a request span;
- relaying: decoding the row's context and publishing inside it (restored), with the
  FastStream-like producer spans (create + publish) made and injected into headers;
- consuming: the broker's process span from the headers, the handler span with its id
  attributes (shared.consumer), one log line's trace ids (add_trace_ids).
"Off" runs exactly the calls the services make with tracing off (no provider installed,
no span made); "on" installs an SDK provider with a batch processor and an
exporter that drops the spans (the OTLP encoding and the network are not included).
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Sequence
from contextlib import nullcontext

from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import shared.tracing
from shared.tracing import (
    add_trace_ids,
    decode_trace_context,
    encode_trace_context,
    restored,
    span_when_tracing,
    trace_headers,
)


class Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def one_event(tracer: trace.Tracer, case_id: str, event_id: str, on: bool) -> None:
    # Recording (intake's request, or a handler): the outbox row's trace_context. Off, the
    # HTTP app is not instrumented: no request span.
    request = tracer.start_as_current_span("POST /api/v1/cases") if on else nullcontext()
    with request:
        stored = encode_trace_context(trace_headers())
    # Relaying: the row published inside its context; the middleware's producer spans.
    headers: dict[str, str] = {}
    with restored(decode_trace_context(stored)):
        if on:
            with tracer.start_as_current_span("hr.events.case.submitted create"):
                propagate.inject(headers)
            with tracer.start_as_current_span("hr.events.case.submitted publish"):
                pass
    # Consuming: the process span from the headers (on), the handler span, one log line.
    if on:
        parent = propagate.extract(headers)
        with tracer.start_as_current_span("hr.events.case.submitted process", context=parent):
            handle(case_id, event_id)
    else:
        handle(case_id, event_id)


def handle(case_id: str, event_id: str) -> None:
    """As shared.consumer.EventConsumer does around a handler."""

    def attributes() -> dict[str, str]:
        return {
            "hrcase.event_type": "case.submitted",
            "hrcase.event_id": event_id,
            "hrcase.correlation_id": event_id,
            "hrcase.case_id": case_id,
        }

    with span_when_tracing("routing handle case.submitted", attributes) as span:
        add_trace_ids(None, "debug", {"event": "event handled"})
        span.set_attribute("hrcase.outcome", "processed")


def per_event_us(tracer: trace.Tracer, events: int, on: bool) -> float:
    case_id, event_id = str(uuid.uuid4()), str(uuid.uuid4())
    started = time.perf_counter()
    for _ in range(events):
        one_event(tracer, case_id, event_id, on)
    return (time.perf_counter() - started) / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50000)
    args = parser.parse_args()

    # Off: what the services call with no provider installed (the API's no-op tracer).
    off_tracer = trace.get_tracer("hrcase")
    per_event_us(off_tracer, 1000, False)  # warm-up
    off = min(per_event_us(off_tracer, args.events, False) for _ in range(3))
    print(f"tracing off: {off:.2f} µs per event (no span, no context stored or sent)")

    provider = TracerProvider()
    processor = BatchSpanProcessor(Drop(), max_queue_size=100_000)
    provider.add_span_processor(processor)
    shared.tracing._provider = provider
    on_tracer = provider.get_tracer("hrcase")
    per_event_us(on_tracer, 1000, True)
    on = min(per_event_us(on_tracer, args.events // 5, True) for _ in range(3))
    provider.shutdown()
    print(f"tracing on:  {on:.2f} µs per event (5 spans recorded, context through headers)")


if __name__ == "__main__":
    main()
