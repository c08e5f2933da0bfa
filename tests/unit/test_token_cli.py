"""`hrcase token mint` names an unknown role in a usage error (exit 2), not a traceback."""

from __future__ import annotations

from click.testing import CliRunner

from hrcase.cli import main
from shared.auth import TokenService
from shared.settings import get_settings


def test_an_unknown_role_is_a_usage_error_naming_the_roles() -> None:
    result = CliRunner().invoke(main, ["token", "mint", "--subject", "x", "--role", "bogus"])
    assert result.exit_code == 2
    assert "Invalid value for '--role': 'bogus'" in result.output
    assert "privacy_officer" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_privacy_officer_token_is_minted() -> None:
    result = CliRunner().invoke(
        main, ["token", "mint", "--subject", "PO-1001", "--role", "privacy_officer"]
    )
    assert result.exit_code == 0, result.output
    principal = TokenService.from_settings(get_settings()).verify(result.output.strip())
    assert principal.roles == frozenset({"privacy_officer"})
