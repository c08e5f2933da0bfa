"""Where the portal's "Audit console" link points (shared.settings)."""

from __future__ import annotations

import pytest

from shared.settings import Settings


def test_default_is_the_portal_host_on_audits_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_HTTP_PORT", "8103")
    # Same host name as the portal: its session cookie is sent to every port of that host.
    assert (
        Settings(portal_base_url="http://127.0.0.1:8000").audit_console_address()
        == "http://127.0.0.1:8103/audit/console/"
    )
    assert (
        Settings(portal_base_url="https://hr.example.com/").audit_console_address()
        == "https://hr.example.com:8103/audit/console/"
    )


def test_an_explicit_url_wins() -> None:
    settings = Settings(audit_console_url="https://hr.example.com/audit/console")
    assert settings.audit_console_address() == "https://hr.example.com/audit/console/"
