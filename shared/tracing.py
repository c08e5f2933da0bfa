"""Distributed traces (OpenTelemetry): one case's journey from submit to audit is one trace.

Off by default. `OTEL_TRACES_EXPORTER` (Settings.otel_traces_exporter) chooses:
- `none` (default): no tracer provider is installed, the HTTP app and the broker are not
  instrumented, handlers make no span (`span_when_tracing`) and the outbox stores no
  trace context: a few microseconds per event (bench.tracing_overhead);
- `console`: finished spans as JSON on stdout (for a developer);
- `otlp`: OTLP over HTTP/protobuf to `OTEL_EXPORTER_OTLP_ENDPOINT` (default
  http://localhost:4318; the exporter reads the standard `OTEL_EXPORTER_OTLP_*` variables).

What carries the context (README "Traces"):
- HTTP: opentelemetry-instrumentation-fastapi makes a server span per request (health
  probes excluded) and honours an incoming `traceparent`;
- the outbox hop: `enqueue` stores the W3C carrier of the span that recorded the event
  (`trace_headers()`, in the outbox row's `trace_context`), and the relay publishes each
  row inside that context again (`restored()`);
- AMQP: FastStream's RabbitTelemetryMiddleware makes the publish span, writes `traceparent`
  (and `tracestate`) into the message headers, and on delivery opens the consumer's
  "process" span as the child of that context; audit's aio-pika ingest extracts it itself
  (`delivery_span`).
Log lines written inside a span carry its `trace_id` and `span_id` (`add_trace_ids`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Tracer

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider

TraceExporter = Literal["none", "console", "otlp"]

# Instrumentation scope of hrcase's own spans (handler spans, audit's delivery spans).
TRACER_NAME = "hrcase"
# Kubernetes probes would otherwise make a trace every few seconds each.
EXCLUDED_URLS = "health/live,health/ready"
# Span attributes that may hold a URL's query string: the portal's search puts names there.
_URL_ATTRIBUTES = ("http.target", "http.url", "url.full")

_provider: TracerProvider | None = None


def tracing_enabled() -> bool:
    """True once `configure_tracing` installed an exporting tracer provider here."""
    return _provider is not None


def configure_tracing(service: str, exporter: TraceExporter) -> TracerProvider | None:
    """Install the process's tracer provider exporting to `exporter`; None for `none`.

    `service` becomes the resource's `service.name` (namespace `hrcase`). Idempotent: a
    second call, or a process whose global provider is already an SDK provider (a test's
    in-memory exporter), keeps that provider.
    """
    global _provider
    if exporter == "none":
        return None
    if _provider is not None:
        return _provider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        _provider = current
        return current
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "hrcase"})
    )
    provider.add_span_processor(BatchSpanProcessor(_exporter(exporter)))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def _exporter(name: TraceExporter) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    # Imported only when chosen: the OTLP exporter pulls in protobuf.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def flush_tracing(timeout_ms: int = 5000) -> None:
    """Export the spans still buffered (called when a service stops)."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)


def without_query(span: Span, scope: Mapping[str, Any]) -> None:
    """FastAPI server-request hook: the span's URL attributes without their query string.

    Staff search the work queue by name (`?q=`), and a trace backend is no place for
    that; the path (with its case ids) is kept. A hook, because the ASGI middleware sets
    the request's attributes again after the span has started."""
    if not span.is_recording() or not scope.get("query_string"):
        return
    attributes: Mapping[str, Any] = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, value.split("?", 1)[0])
    if "url.query" in attributes:
        span.set_attribute("url.query", "")


def instrument_app(app: FastAPI) -> None:
    """Server spans for `app`'s requests (not the health probes); a no-op when tracing is
    off, so the request path is untouched."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_provider,
        excluded_urls=EXCLUDED_URLS,
        server_request_hook=without_query,
        # One span per request, not one per ASGI receive/send message as well.
        exclude_spans=["receive", "send"],
    )


def broker_middlewares() -> tuple[Any, ...]:
    """FastStream's telemetry middleware for a RabbitBroker when tracing is on, else ()."""
    if _provider is None:
        return ()
    from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware

    return (RabbitTelemetryMiddleware(tracer_provider=_provider),)


def tracer() -> Tracer:
    """hrcase's tracer: the installed provider's, else the API's (a no-op one by default)."""
    return trace.get_tracer(TRACER_NAME)


def span_when_tracing(
    name: str, attributes: Callable[[], Mapping[str, str]]
) -> AbstractContextManager[Span]:
    """`name` as the current span (hrcase's tracer) while tracing is on; otherwise a
    context doing nothing that yields the invalid span (its methods are no-ops), so
    the default costs no span and not even the `attributes` it would carry."""
    if _provider is None:
        return nullcontext(trace.INVALID_SPAN)
    return tracer().start_as_current_span(name, attributes=attributes())


def trace_headers() -> dict[str, str] | None:
    """The W3C carrier (`traceparent`, maybe `tracestate`) of the current span, or None
    when there is none to carry (tracing off: the no-op tracer's spans are invalid)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def encode_trace_context(headers: Mapping[str, str] | None) -> str | None:
    """`trace_headers()` as the outbox column's JSON text (None stays None)."""
    return json.dumps(dict(headers), separators=(",", ":")) if headers else None


def decode_trace_context(stored: str | None) -> dict[str, str]:
    """An outbox row's `trace_context` back as a carrier; {} for none or an unreadable one
    (a lost trace link must never stop an event from being published)."""
    if not stored:
        return {}
    try:
        value = json.loads(stored)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str)}


@contextmanager
def restored(carrier: Mapping[str, Any] | None) -> Iterator[None]:
    """Run the block inside the trace context `carrier` holds (W3C headers); the current
    context is left as it is when the carrier holds none."""
    if not carrier:
        yield
        return
    extracted = propagate.extract(dict(carrier))
    token = otel_context.attach(extracted)
    try:
        yield
    finally:
        otel_context.detach(token)


def delivery_span(
    name: str, headers: Mapping[str, Any] | None, attributes: Mapping[str, Any]
) -> Span | None:
    """A started CONSUMER span for one delivery, the child of the trace context in its
    `headers`; None when tracing is off. The caller ends it."""
    if _provider is None:
        return None
    parent = propagate.extract(dict(headers or {}))
    return tracer().start_span(name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes)


def add_trace_ids(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: `trace_id` and `span_id` (hex, as trace backends show them) of
    the span active when the line is written, so a log line is found from a trace."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict.setdefault("trace_id", format(span_context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(span_context.span_id, "016x"))
    return event_dict
