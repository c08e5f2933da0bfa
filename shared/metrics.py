"""Prometheus metrics every service exposes on /metrics."""

from prometheus_client import Counter, Histogram

EVENTS_CONSUMED = Counter(
    "hrcase_events_consumed_total",
    "Events taken from the service queue, by outcome",
    ["service", "event_type", "outcome"],
)
EVENT_HANDLE_SECONDS = Histogram(
    "hrcase_event_handle_seconds",
    "Time to handle one event, transaction included",
    ["service", "event_type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS_PUBLISHED = Counter(
    "hrcase_events_published_total", "Events published (confirmed) from the outbox", ["service"]
)
OUTBOX_LAG_SECONDS = Histogram(
    "hrcase_outbox_lag_seconds",
    "Time from an event entering the outbox to its publisher confirm",
    ["service"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OUTBOX_FAILURES = Counter(
    "hrcase_outbox_publish_failures_total", "Outbox batches that failed to publish", ["service"]
)
