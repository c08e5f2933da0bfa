"""The README's verify-by-hand script, run as printed against a real log (version 2 entries)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.audit.domain.chain import ChainEntry

README = Path(__file__).resolve().parents[3] / "README.md"


def _script() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("```python", text.index("**By hand**")) + len("```python")
    return text[start : text.index("```", start)]


def test_readme_script_verifies_the_log(
    scratch_url: str, scratch_chain: list[ChainEntry], tmp_path: Path
) -> None:
    assert {e.entry_version for e in scratch_chain} == {2}
    public = tmp_path / "checkpoint.pub"
    public.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    checkpoints = tmp_path / "none.checkpoints.jsonl"
    checkpoints.write_text("", encoding="utf-8")
    script = tmp_path / "verify_by_hand.py"
    script.write_text(_script(), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), scratch_url, str(checkpoints), str(public)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.startswith("OK: ")
