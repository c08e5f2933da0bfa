"""Portal CSRF and dev sign-in rules, on real Starlette requests."""

import pytest
from fastapi import HTTPException
from starlette.requests import Request

from services.intake.entrypoints.portal import session
from shared.settings import Settings


def request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in {"host": "hr.local", **headers}.items()]
    return Request({"type": "http", "method": "POST", "headers": raw, "path": "/"})


TOKEN = "t" * 43


def test_a_matching_token_from_this_site_passes():
    cookie = {"cookie": f"{session.CSRF_COOKIE}={TOKEN}"}
    session.check_csrf(request({**cookie, "origin": "http://hr.local"}), TOKEN)
    session.check_csrf(request(cookie), TOKEN)  # no Origin, no Referer: the token decides


@pytest.mark.parametrize(
    ("headers", "submitted"),
    [
        ({"origin": "https://evil.example"}, TOKEN),
        ({"origin": "null"}, TOKEN),
        ({"referer": "https://evil.example/form"}, TOKEN),
        ({}, "u" * 43),
        ({}, None),
    ],
)
def test_cross_site_or_tokenless_posts_are_refused(headers, submitted):
    headers = {"cookie": f"{session.CSRF_COOKIE}={TOKEN}", **headers}
    with pytest.raises(HTTPException) as refused:
        session.check_csrf(request(headers), submitted)
    assert refused.value.status_code == 403


def test_without_the_cookie_no_token_is_accepted():
    with pytest.raises(HTTPException):
        session.check_csrf(request({}), TOKEN)


def test_dev_sign_in_exists_only_in_development(monkeypatch):
    monkeypatch.setattr(session, "get_settings", lambda: Settings(environment="production"))
    assert not session.dev_sign_in_enabled()
    monkeypatch.setattr(session, "get_settings", lambda: Settings(environment="development"))
    assert session.dev_sign_in_enabled()
