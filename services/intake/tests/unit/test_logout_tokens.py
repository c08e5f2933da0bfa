"""Back-channel logout tokens: each check of OpenID Connect Back-Channel Logout 1.0 §2.6.

The client is given the provider's discovery document and JWKS as they would arrive (no
network); tokens are signed here with the "provider's" key, or another one.
"""

import time

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from services.intake.adapters.oidc import InvalidLogoutToken, OidcClient
from services.intake.config import OidcConfig
from services.intake.domain.sso import BACKCHANNEL_LOGOUT_EVENT

ISSUER = "https://idp.example"
PROVIDER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})


@pytest.fixture
def client() -> OidcClient:
    config = OidcConfig(
        issuer=ISSUER,
        client_id="hrcase",
        client_secret="s" * 40,
        redirect_url="https://hr.example/portal/sign-in/callback",
        post_logout_redirect_url="https://hr.example/portal/",
        role_map=(("staff", "employee"),),
    )
    client = OidcClient(config)
    client._client.server_metadata.update(
        {
            "issuer": ISSUER,
            "_loaded_at": time.time(),
            "id_token_signing_alg_values_supported": ["RS256"],
            "jwks": {"keys": [PROVIDER_KEY.as_dict(private=False)]},
        }
    )
    return client


def token(key=PROVIDER_KEY, header=None, **changes) -> str:
    claims = {
        "iss": ISSUER,
        "aud": "hrcase",
        "iat": int(time.time()),
        "jti": "j-1",
        "sub": "opaque-1",
        "sid": "s-1",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        **changes,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(header or {"alg": "RS256", "kid": "k1", "typ": "logout+jwt"}, claims, key)


async def test_a_valid_token_names_the_provider_session(client):
    logout = await client.verify_logout_token(token())
    assert (logout.issuer, logout.subject, logout.session) == (ISSUER, "opaque-1", "s-1")
    only_sub = await client.verify_logout_token(token(sid=None, aud=["other", "hrcase"]))
    assert (only_sub.subject, only_sub.session) == ("opaque-1", None)


@pytest.mark.parametrize(
    ("kwargs", "failure"),
    [
        ({"key": OTHER_KEY}, "signature"),
        ({"header": {"alg": "HS256", "typ": "logout+jwt"}, "key": None}, "signature"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"aud": "someone-else"}, "aud"),
        ({"iat": None}, "iat missing"),
        ({"iat": int(time.time()) - 3600}, "iat too old"),
        ({"jti": None}, "jti"),
        ({"events": {"urn:other": {}}}, "events"),
        ({"events": None}, "events"),
        ({"nonce": "n"}, "nonce"),
        ({"sid": None, "sub": None}, "neither sid nor sub"),
        ({"header": {"alg": "RS256", "kid": "k1", "typ": "JWT+id"}}, "typ"),
    ],
)
async def test_a_token_failing_a_check_is_refused_naming_it(client, kwargs, failure):
    if kwargs.get("key", PROVIDER_KEY) is None:
        from joserfc.jwk import OctKey

        kwargs["key"] = OctKey.import_key("s" * 40)
    with pytest.raises(InvalidLogoutToken, match=failure):
        await client.verify_logout_token(token(**kwargs))
