import time

import jwt
import pytest

from shared.auth import InvalidToken, TokenService

SECRET = "k" * 40


def test_minted_token_round_trips_to_a_principal():
    tokens = TokenService(SECRET)
    principal = tokens.verify(tokens.mint("u-1", ["employee"], employee_id="E-1", name="Jo"))
    assert principal.subject == "u-1"
    assert principal.roles == {"employee"}
    assert principal.employee_id == "E-1"
    assert principal.has_any("employee", "auditor") and not principal.has_any("auditor")


def test_tokens_signed_with_another_key_expired_or_unsigned_are_refused():
    tokens = TokenService(SECRET)
    forged = TokenService("x" * 40).mint("u-1", ["admin"])
    with pytest.raises(InvalidToken):
        tokens.verify(forged)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(tokens.mint("u-1", ["employee"], ttl_seconds=-10))
    unsigned = jwt.encode(
        {
            "sub": "u",
            "roles": ["admin"],
            "iss": "hrcase",
            "aud": "hrcase",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        None,
        algorithm="none",
    )
    with pytest.raises(InvalidToken):
        tokens.verify(unsigned)


def test_unknown_roles_are_refused_both_ways():
    tokens = TokenService(SECRET)
    with pytest.raises(ValueError):
        tokens.mint("u-1", ["superuser"])
    raw = jwt.encode(
        {
            "sub": "u",
            "roles": ["superuser"],
            "iss": "hrcase",
            "aud": "hrcase",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken, match="unknown roles"):
        tokens.verify(raw)


def test_short_keys_are_refused():
    with pytest.raises(ValueError):
        TokenService("short")


def test_a_token_for_another_audience_is_refused_and_carries_its_session_id():
    tokens = TokenService(SECRET)
    portal = tokens.mint("u-1", ["employee"], audience="hrcase-portal", session_id="s-1")
    with pytest.raises(InvalidToken):
        tokens.verify(portal)  # the API's audience
    principal = tokens.verify(portal, audience="hrcase-portal")
    assert principal.session_id == "s-1"
    assert tokens.verify(tokens.mint("u-1", ["employee"])).session_id is None
