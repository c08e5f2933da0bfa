"""`hrcase dlq replay` refuses an ambiguous choice before touching the broker."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hrcase.cli import main


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--all", "--case", "6f1c2a54-5d0e-4d59-9d43-1d2f1e0c9a11"],
        [
            "--case",
            "6f1c2a54-5d0e-4d59-9d43-1d2f1e0c9a11",
            "--event",
            "0b7e9f4e-1f57-4a8e-b2c4-8f1e0d9c7b66",
        ],
    ],
)
def test_replay_needs_exactly_one_choice(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["dlq", "replay", "routing", *args])
    assert result.exit_code == 2
    assert "exactly one of --case, --event, --all" in result.output


def test_a_case_id_must_be_a_uuid() -> None:
    result = CliRunner().invoke(main, ["dlq", "replay", "routing", "--case", "HR-2026-000001"])
    assert result.exit_code == 2
    assert "not a valid UUID" in result.output


def test_holds_belong_to_the_consuming_services_only() -> None:
    result = CliRunner().invoke(
        main, ["holds", "release", "audit", "6f1c2a54-5d0e-4d59-9d43-1d2f1e0c9a11"]
    )
    assert result.exit_code == 2
    assert "'audit' is not one of" in result.output
