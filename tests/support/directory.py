"""Routing's employee directory for a test system: the demo one `hrcase run` loads."""

from __future__ import annotations

import subprocess
import sys

from hrcase.demo import DEMO_DIRECTORY
from tests.support.infra import ROOT, service_env


def load_demo_directory(database_url: str, rabbitmq_url: str) -> None:
    """Import hrcase/demo_directory.csv with the operator's command, into this run's database."""
    imported = subprocess.run(
        [sys.executable, "-m", "hrcase.cli", "routing", "directory", "import", str(DEMO_DIRECTORY)],
        cwd=ROOT,
        env=service_env(database_url, rabbitmq_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert imported.returncode == 0, imported.stderr
