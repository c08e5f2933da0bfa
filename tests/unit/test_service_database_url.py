"""A service's database URL: the admin URL with the service's own role (and password).

Built with urllib (shared.settings), not SQLAlchemy's make_url, so no service imports
sqlalchemy.engine to run (about 12 MB of idle RSS, issue 15).
"""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import unquote, urlsplit

import pytest

from shared.settings import Settings


def url_for(admin_url: str, monkeypatch: pytest.MonkeyPatch, password: str | None) -> str:
    monkeypatch.delenv("INTAKE_DATABASE_URL", raising=False)
    if password is None:
        monkeypatch.delenv("INTAKE_DATABASE_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("INTAKE_DATABASE_PASSWORD", password)
    return Settings(database_url=admin_url, db_role_per_service=True).service_database_url("intake")


def test_the_service_role_and_its_password_replace_the_admin_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = url_for(
        "postgresql://postgres:admin@db.example:5433/hrcase?sslmode=require",
        monkeypatch,
        "p@ss:/w rd",
    )
    parts = urlsplit(url)
    assert (parts.username, unquote(parts.password or "")) == ("hrcase_intake", "p@ss:/w rd")
    assert (parts.hostname, parts.port, parts.path, parts.query) == (
        "db.example",
        5433,
        "/hrcase",
        "sslmode=require",
    )


def test_without_a_password_of_its_own_the_admin_password_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (
        url_for("postgresql://a:b%40c@[::1]:5433/db", monkeypatch, None)
        == "postgresql://hrcase_intake:b%40c@[::1]:5433/db"
    )
    assert (
        url_for("postgresql://postgres@127.0.0.1/hrcase", monkeypatch, None)
        == "postgresql://hrcase_intake@127.0.0.1/hrcase"
    )


def test_settings_import_no_sqlalchemy() -> None:
    probe = "import sys, shared.settings; print('sqlalchemy' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
