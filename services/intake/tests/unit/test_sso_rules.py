"""Single sign-on's pure rules: the role map, who the ID token says the person is, and
when the development sign-in is offered (services/intake/domain/sso.py, config.py)."""

import pytest

from services.intake.config import OidcConfig, dev_sign_in_wanted, parse_role_map
from services.intake.domain.sso import ClaimNames, SignInRefused, identity_from_claims, roles_for
from shared.settings import Settings

ROLE_MAP = parse_role_map(
    "all-staff=employee, hr-agents=hr_agent,hr-agents=employee,hrm=hr_manager"
)
BASE = {"iss": "https://idp.example", "sub": "opaque-1", "sid": "s-1"}


def test_the_role_map_reads_group_role_pairs_in_order():
    assert ROLE_MAP == (
        ("all-staff", "employee"),
        ("hr-agents", "hr_agent"),
        ("hr-agents", "employee"),
        ("hrm", "hr_manager"),
    )
    assert parse_role_map("") == ()
    # A group name may hold "=" (the role is after the last one), not ",".
    assert parse_role_map("role=hr=hr_agent") == (("role=hr", "hr_agent"),)


@pytest.mark.parametrize("bad", ["hr-agents", "hr-agents=", "=hr_agent", "hr=superuser"])
def test_a_bad_role_map_entry_is_named(bad):
    with pytest.raises(RuntimeError, match="OIDC_ROLE_MAP entry"):
        parse_role_map(f"all-staff=employee,{bad}")


def test_only_mapped_groups_give_roles():
    assert roles_for(["hr-agents"], ROLE_MAP) == ("employee", "hr_agent")
    assert roles_for(["HR-Agents", "admins", "hrcase"], ROLE_MAP) == ()
    assert roles_for([], ROLE_MAP) == ()


def test_the_identity_comes_from_the_configured_claims():
    claims = {**BASE, "groups": ["hr-agents", "vpn"], "staff_no": "A-1001",
              "mail": "priya@example.com", "name": "Priya Shah"}  # fmt: skip
    names = ClaimNames(employee_id="staff_no", email="mail")
    person = identity_from_claims(claims, names=names, role_map=ROLE_MAP)
    assert person.subject == person.employee_id == "A-1001"
    assert person.roles == ("employee", "hr_agent")
    assert (person.name, person.email) == ("Priya Shah", "priya@example.com")
    assert (person.issuer, person.provider_subject, person.provider_session) == (
        "https://idp.example", "opaque-1", "s-1",
    )  # fmt: skip


def test_the_address_is_verified_only_when_the_provider_says_so():
    claims = {**BASE, "groups": "all-staff", "employee_id": "E-1", "email": "e1@example.com"}

    def verified(**extra: object) -> bool:
        person = identity_from_claims({**claims, **extra}, names=ClaimNames(), role_map=ROLE_MAP)
        return person.email_verified

    assert verified(email_verified=True)
    assert not verified()
    assert not verified(email_verified=False)
    assert not verified(email_verified="true")  # only the JSON boolean counts
    assert not verified(email_verified=True, email="not-an-address")


def test_one_group_as_a_string_counts_and_an_odd_address_is_dropped():
    claims = {**BASE, "groups": "all-staff", "employee_id": "E-1", "email": "not-an-address"}
    person = identity_from_claims(claims, names=ClaimNames(), role_map=ROLE_MAP)
    assert person.roles == ("employee",) and person.email is None


@pytest.mark.parametrize(
    ("claims", "said"),
    [
        ({"groups": ["contractors"], "employee_id": "C-1"}, "not in any group"),
        ({"employee_id": "C-1"}, "not in any group"),
        ({"groups": {"all-staff": True}, "employee_id": "C-1"}, "not in any group"),
        ({"groups": ["all-staff"]}, "no employee id"),
        ({"groups": ["all-staff"], "employee_id": "  "}, "no employee id"),
    ],
)
def test_no_mapped_role_or_no_employee_id_is_refused(claims, said):
    with pytest.raises(SignInRefused, match=said):
        identity_from_claims({**BASE, **claims}, names=ClaimNames(), role_map=ROLE_MAP)


@pytest.mark.parametrize(
    ("environment", "issuer", "flag", "offered"),
    [
        ("development", "", "", True),  # make run: the demo identities
        ("development", "https://idp.example", "", False),
        ("development", "https://idp.example", "1", True),
        ("development", "", "0", False),
        ("production", "", "", False),
        ("production", "https://idp.example", "0", False),
    ],
)
def test_when_the_development_sign_in_is_offered(monkeypatch, environment, issuer, flag, offered):
    monkeypatch.setenv("OIDC_ISSUER", issuer)
    monkeypatch.setenv("DEV_SIGN_IN", flag)
    assert dev_sign_in_wanted(Settings(environment=environment)) is offered


def test_the_development_sign_in_cannot_be_asked_for_in_production(monkeypatch):
    monkeypatch.setenv("DEV_SIGN_IN", "1")
    with pytest.raises(RuntimeError, match="DEV_SIGN_IN"):
        dev_sign_in_wanted(Settings(environment="production"))


def test_the_configuration_is_read_with_defaults_from_the_portal_url(monkeypatch):
    monkeypatch.delenv("OIDC_ISSUER", raising=False)
    settings = Settings(environment="development", portal_base_url="https://hr.example/")
    assert OidcConfig.from_env(settings) is None
    monkeypatch.setenv("OIDC_ISSUER", "https://idp.example")
    with pytest.raises(RuntimeError, match="OIDC_CLIENT_ID"):
        OidcConfig.from_env(settings)
    monkeypatch.setenv("OIDC_CLIENT_ID", "hrcase")
    monkeypatch.setenv("OIDC_ROLE_MAP", "staff=employee")
    config = OidcConfig.from_env(settings)
    assert config is not None
    assert config.redirect_url == "https://hr.example/portal/sign-in/callback"
    assert config.post_logout_redirect_url == "https://hr.example/portal/"
    assert config.role_map == (("staff", "employee"),) and config.client_secret is None
    monkeypatch.setenv("OIDC_ISSUER", "http://idp.example")
    with pytest.raises(RuntimeError, match="https"):
        OidcConfig.from_env(Settings(environment="production", auth_jwt_secret="x" * 40))
