"""shared.tracing: the trace context across the outbox, redaction, log ids, off by default."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from hrcase.services import QUEUES
from shared.service import ServiceSpec, create_app
from shared.settings import Settings
from shared.tracing import (
    add_trace_ids,
    broker_middlewares,
    configure_tracing,
    decode_trace_context,
    encode_trace_context,
    restored,
    trace_headers,
    tracing_enabled,
)


@pytest.fixture
def exported():
    """A tracer of a local provider (the process's global one is left alone) and its
    finished spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def test_the_context_recorded_with_an_event_is_the_parent_of_its_publish(exported):
    tracer, exporter = exported
    with tracer.start_as_current_span("POST /api/v1/cases") as request:
        stored = encode_trace_context(trace_headers())
    assert stored is not None
    carrier = json.loads(stored)
    request_context = request.get_span_context()
    # W3C: version, trace id, the recording span's id, flags (sampled, random trace id).
    assert carrier["traceparent"] == (
        f"00-{request_context.trace_id:032x}-{request_context.span_id:016x}-03"
    )

    # Later, in the relay's task, no span is active until the row's context is restored.
    assert trace_headers() is None
    with restored(decode_trace_context(stored)), tracer.start_as_current_span("publish"):
        pass
    (publish,) = [s for s in exporter.get_finished_spans() if s.name == "publish"]
    assert publish.context.trace_id == request_context.trace_id
    assert publish.parent is not None and publish.parent.span_id == request_context.span_id
    # Left as it was after the block.
    assert not trace.get_current_span().get_span_context().is_valid


@pytest.mark.parametrize("stored", [None, "", "not json", "[1, 2]", '{"traceparent": 7}'])
def test_a_missing_or_unreadable_context_restores_nothing(exported, stored):
    tracer, exporter = exported
    assert decode_trace_context(stored) == {}
    with restored(decode_trace_context(stored)), tracer.start_as_current_span("publish"):
        pass
    (publish,) = exporter.get_finished_spans()
    assert publish.parent is None  # a new trace, and the event is published all the same


def test_log_lines_name_the_active_span(exported):
    tracer, _ = exported
    assert add_trace_ids(None, "info", {"event": "outside"}) == {"event": "outside"}
    with tracer.start_as_current_span("handle") as span:
        line = add_trace_ids(None, "info", {"event": "inside"})
    context = span.get_span_context()
    assert line == {
        "event": "inside",
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
    }


def test_by_default_no_exporter_is_installed_and_nothing_instrumented(monkeypatch):
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    settings = Settings()
    assert settings.otel_traces_exporter == "none"
    assert configure_tracing("intake", settings.otel_traces_exporter) is None
    assert not tracing_enabled()
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    assert broker_middlewares() == ()
    app = create_app(ServiceSpec(name="intake", subscriptions=QUEUES["intake"]), settings)
    assert not [m for m in app.user_middleware if "OpenTelemetry" in m.cls.__name__]


def test_an_unknown_exporter_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaeger")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "otel_traces_exporter" in str(refused.value)


def test_http_requests_are_traced_without_query_strings_or_probes(monkeypatch):
    """instrument_app on a real FastAPI app: a server span per request, the search words
    cut from its URL, none for the health probes."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    import shared.tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(shared.tracing, "_provider", provider)  # as configure_tracing does
    app = FastAPI()

    @app.get("/portal/queue")
    async def queue(q: str = "") -> dict[str, str]:
        return {"q": q}

    @app.get("/health/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    shared.tracing.instrument_app(app)
    with TestClient(app) as client:
        assert client.get("/portal/queue", params={"q": "Jordan Lee"}).status_code == 200
        assert client.get("/health/ready").status_code == 200
    (span,) = exporter.get_finished_spans()
    assert span.kind == trace.SpanKind.SERVER
    assert span.attributes is not None and span.attributes["http.route"] == "/portal/queue"
    assert span.attributes["http.url"] == "http://testserver/portal/queue"
    assert "Jordan" not in json.dumps(dict(span.attributes))
