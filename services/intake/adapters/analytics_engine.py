"""The dashboard's query engine: an in-process DuckDB replica of intake.case_analytics."""

from __future__ import annotations


class AnalyticsEngine:
    """One per process (see module docstring)."""
