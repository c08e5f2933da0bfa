"""Garbage-collector pauses of a service process: measured, and kept short.

CPython's full collection (generation 2) walks every container object the process
holds. A started service holds 140,000 or so (modules, pydantic models and validators,
FastAPI routes, routing's policy), almost all of them for its whole life, so one full
collection stops the event loop for 40-200 ms on the 2-core development machine: every
delivery, HTTP request and publisher confirm in flight waits for it (README
"Performance", "Garbage-collector pauses"). `freeze_startup_objects` moves what start-up
made into the permanent generation (`gc.freeze`, Python >= 3.7) so later collections walk
only what was allocated since; objects frozen stay alive for good, which is what
start-up objects do anyway. `observe_pauses` times every collection into
`hrcase_gc_pause_seconds{service, generation}`.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Gauge, Histogram

GC_PAUSE_SECONDS = Histogram(
    "hrcase_gc_pause_seconds",
    "Time the garbage collector stopped the process, by generation collected (2 = full collection)",
    ["service", "generation"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)

GC_FROZEN_OBJECTS = Gauge(
    "hrcase_gc_frozen_objects",
    "Objects frozen out of garbage collection once the service started (0: GC_FREEZE_AT_START off)",
    ["service"],
)

_observed: list[str] = []  # the service whose pauses this process records (one at most)
_started_at: list[float] = []


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started_at[:] = [time.perf_counter()]
    elif _started_at and _observed:
        GC_PAUSE_SECONDS.labels(_observed[0], str(info["generation"])).observe(
            time.perf_counter() - _started_at[0]
        )


def observe_pauses(service: str) -> None:
    """Time every collection of this process from now on, labelled `service`; a second
    call (another app in the same process, as in tests) changes nothing."""
    if not _observed:
        _observed.append(service)
        gc.callbacks.append(_on_collection)


def freeze_startup_objects(service: str) -> int:
    """Collect once, then freeze every object still alive (start-up's modules, models,
    pools, policy) out of future collections; `hrcase_gc_frozen_objects{service}` says how
    many. Returns that count. Called once a service has started (shared.service)."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    GC_FROZEN_OBJECTS.labels(service).set(frozen)
    return frozen
