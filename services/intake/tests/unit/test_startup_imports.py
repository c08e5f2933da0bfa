"""Intake's idle memory: the dashboard's libraries are imported on first use, not at start.

DuckDB (the analytics replica) is about 56 MB of a process's RSS and matplotlib with numpy
(the charts) about 24 MB; a started intake that serves no dashboard must hold neither
(issue 15: idle RSS <= 120 MB per service).
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("duckdb", "matplotlib", "numpy")


def test_the_service_module_imports_no_dashboard_library() -> None:
    probe = (
        "import sys; import services.intake.app;"
        f" print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_the_engine_imports_duckdb_when_made() -> None:
    probe = (
        "import sys; from services.intake.adapters.analytics_engine import AnalyticsEngine;"
        " before = 'duckdb' in sys.modules; engine = AnalyticsEngine(); engine.close();"
        " print(before, 'duckdb' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "True"]
