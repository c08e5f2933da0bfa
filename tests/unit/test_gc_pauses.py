"""shared.gc_pauses: start-up's objects leave the collector's walks; every pause is timed.

Each check runs in a fresh interpreter: freezing is for a whole process, and freezing the
test process would keep every test's garbage alive."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def run_python(code: str) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPOSITORY,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_freezing_takes_start_up_objects_out_of_full_collections() -> None:
    result = run_python(
        """
        import gc, json, time
        from prometheus_client import REGISTRY
        from shared.gc_pauses import freeze_startup_objects

        # Like a started service: many long-lived container objects.
        kept = [{"n": i, "items": [i, str(i)]} for i in range(100_000)]
        started = time.perf_counter()
        gc.collect()
        before = time.perf_counter() - started
        walked_before = len(gc.get_objects(2))
        frozen = freeze_startup_objects("probe")
        walked_after = len(gc.get_objects(2))
        started = time.perf_counter()
        gc.collect()
        after = time.perf_counter() - started
        gauge = REGISTRY.get_sample_value("hrcase_gc_frozen_objects", {"service": "probe"})
        print(json.dumps({
            "frozen": frozen, "gauge": gauge, "walked_before": walked_before,
            "walked_after": walked_after, "before": before, "after": after,
            "kept": len(kept),
        }))
        """
    )
    # The dicts and lists made before are frozen, and the gauge says how many.
    assert result["frozen"] >= 200_000
    assert result["gauge"] == result["frozen"]
    # A full collection no longer walks them.
    assert result["walked_before"] >= 200_000
    assert result["walked_after"] < 1_000
    assert result["after"] < result["before"]


def test_frozen_objects_are_still_alive_and_new_garbage_is_still_collected() -> None:
    result = run_python(
        """
        import gc, json, weakref
        from shared.gc_pauses import freeze_startup_objects

        class Node:
            pass

        kept = Node()
        freeze_startup_objects("probe")
        # A reference cycle made after the freeze is garbage the collector still finds.
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        print(json.dumps({"kept": isinstance(kept, Node), "cycle_collected": gone() is None}))
        """
    )
    assert result == {"kept": True, "cycle_collected": True}


def test_every_collection_is_timed_by_generation() -> None:
    result = run_python(
        """
        import gc, json
        from prometheus_client import REGISTRY
        from shared.gc_pauses import observe_pauses

        observe_pauses("probe")
        observe_pauses("another app in the same process")  # changes nothing
        gc.collect(0)
        gc.collect(2)
        gc.collect(2)
        def sample(name, generation):
            labels = {"service": "probe", "generation": generation}
            return REGISTRY.get_sample_value(name, labels) or 0.0
        print(json.dumps({
            "full": sample("hrcase_gc_pause_seconds_count", "2"),
            "young": sample("hrcase_gc_pause_seconds_count", "0"),
            "full_seconds": sample("hrcase_gc_pause_seconds_sum", "2"),
            "callbacks": sum(1 for c in gc.callbacks if c.__module__ == "shared.gc_pauses"),
            "other": REGISTRY.get_sample_value(
                "hrcase_gc_pause_seconds_count",
                {"service": "another app in the same process", "generation": "2"},
            ),
        }))
        """
    )
    assert result["full"] >= 2
    assert result["young"] >= 1
    assert result["full_seconds"] > 0
    assert result["callbacks"] == 1
    assert result["other"] is None
