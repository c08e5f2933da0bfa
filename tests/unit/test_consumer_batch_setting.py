"""CONSUMER_BATCH_SIZE and its per-service override (shared.settings)."""

from __future__ import annotations

import pytest

from shared.settings import Settings


def test_the_shared_size_applies_unless_a_service_has_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONSUMER_BATCH_SIZE", "8")
    monkeypatch.setenv("ROUTING_CONSUMER_BATCH_SIZE", "1")
    settings = Settings()
    assert settings.consumer_batch_size_for("intake") == 8
    assert settings.consumer_batch_size_for("routing") == 1


@pytest.mark.parametrize("value", ["0", "1001", "many"])
def test_a_size_out_of_range_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("INTAKE_CONSUMER_BATCH_SIZE", value)
    with pytest.raises(ValueError, match="INTAKE_CONSUMER_BATCH_SIZE must be a whole number"):
        Settings().consumer_batch_size_for("intake")


def test_the_shared_size_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUMER_BATCH_SIZE", "0")
    with pytest.raises(ValueError, match="consumer_batch_size"):
        Settings()
