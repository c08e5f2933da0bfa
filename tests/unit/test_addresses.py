"""The one address rule (shared/addresses.py), as a table and as properties.

Every model with an address uses `MailAddress`, so these cases hold for the API body, the
portal and phone forms, the inbound-mail sender and the event payloads alike; the e2e test
(tests/e2e/test_addresses_and_links.py) proves the same through each door.
"""

from __future__ import annotations

import json
import string
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.intake.domain.case import PhoneCaller, ReporterInput, SubmitCase
from services.intake.domain.email.parsing import valid_address
from shared.addresses import InvalidAddress, ascii_form, check_address
from shared.events import Person, Reporter

FIELD_CASES = Path(__file__).resolve().parents[1] / "fixtures" / "field_cases"

VALID = [
    # Internal mail domains (the api-reporter-dot-local field case and its neighbours).
    ("priya.nair@corp.local", "priya.nair@corp.local"),
    ("sam@local", None),  # `local` alone is single-label: only when configured
    ("ops@hr.internal", "ops@hr.internal"),
    ("ops@eu.corp.internal", "ops@eu.corp.internal"),
    ("dev@office.lan", "dev@office.lan"),
    ("Pat.Lee@Corp.LOCAL", "Pat.Lee@corp.local"),  # domain lower-cased, local part kept
    # Non-ASCII local parts (api-reporter-non-ascii-local-part) and IDN domains.
    ("jürgen.groß@example.com", "jürgen.groß@example.com"),
    ("δοκιμή@παράδειγμα.δοκιμή", "δοκιμή@παράδειγμα.δοκιμή"),
    ("用户@例子.广告", "用户@例子.广告"),
    ("marie@bücher.de", "marie@bücher.de"),
    ("marie@xn--bcher-kva.de", "marie@bücher.de"),  # A-label: stored as the U-label
    ("josé@corp.local", "josé@corp.local"),
    ("plain@example.com", "plain@example.com"),
    ("first+tag@sub.example.co.uk", "first+tag@sub.example.co.uk"),
]
VALID = [(raw, stored) for raw, stored in VALID if stored is not None]

INVALID = [
    "",
    "no-at-sign",
    "@corp.local",
    "someone@",
    "two@@corp.local",
    "a b@corp.local",
    "dots..twice@corp.local",
    ".lead@corp.local",
    "x@-corp.local",
    "x@corp..local",
    "x@localhost",  # special-use names nobody has a mailbox at stay refused
    "x@host.localhost",
    "x@example.invalid",
    "x@site.onion",
    "x@router.home.arpa",
    "x@[192.168.0.1]",
    '"quoted local"@corp.local',
    "x@" + "a" * 64 + ".local",  # a label longer than 63
    "ctrl\x00@corp.local",
    "new\nline@corp.local",
]


@pytest.mark.parametrize(("raw", "stored"), VALID)
def test_internal_domains_and_international_addresses_are_valid(raw: str, stored: str) -> None:
    assert check_address(raw) == stored
    # The same through the models every channel uses.
    assert Reporter(employee_id="E-1", name="N", email=raw).email == stored
    assert ReporterInput(employee_id="E-1", name="N", email=raw).email == stored
    assert Person(id="A-1", name="N", email=raw).email == stored
    assert PhoneCaller(employee_id="E-1", name="N", email=raw).email == stored
    assert valid_address(raw) == stored.lower()  # the inbound-mail sender


@pytest.mark.parametrize("raw", INVALID)
def test_invalid_addresses_are_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(InvalidAddress):
        check_address(raw)
    with pytest.raises(ValidationError) as caught:
        SubmitCase.model_validate(
            {
                "subject": "Leave balance",
                "description": "My leave balance is wrong.",
                "reporter": {"employee_id": "E-1", "name": "N", "email": raw},
            }
        )
    [error] = caught.value.errors()
    assert error["loc"] == ("reporter", "email")
    assert "not a valid email address" in error["msg"]
    assert valid_address(raw) is None


@pytest.mark.parametrize("host", ["mailhost", "exchange01", "intranet"])
def test_single_label_hosts_only_when_configured(host: str) -> None:
    address = f"pat@{host}"
    with pytest.raises(InvalidAddress, match="period"):
        check_address(address, allow_single_label=False)
    assert check_address(address, allow_single_label=True) == address
    # Configured or not, special-use names stay refused.
    for name in ("localhost", "invalid", "test", "onion"):
        with pytest.raises(InvalidAddress):
            check_address(f"pat@{name}", allow_single_label=True)


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.settings import get_settings

    def doors(address: str) -> list[str]:
        given = {"employee_id": "E-1", "name": "N", "email": address}
        return [
            ReporterInput.model_validate(given).email,
            str(PhoneCaller.model_validate(given).email),
            str(valid_address(address)),
        ]

    monkeypatch.setenv("MAIL_ALLOW_SINGLE_LABEL_DOMAINS", "true")
    get_settings.cache_clear()
    try:
        assert doors("pat@mailhost") == ["pat@mailhost"] * 3
    finally:
        monkeypatch.delenv("MAIL_ALLOW_SINGLE_LABEL_DOMAINS")
        get_settings.cache_clear()
    with pytest.raises(ValidationError):
        ReporterInput(employee_id="E-1", name="N", email="pat@mailhost")
    with pytest.raises(ValidationError):
        PhoneCaller(employee_id="E-1", name="N", email="pat@mailhost")
    assert valid_address("pat@mailhost") is None


def test_event_payloads_take_what_any_door_may_accept() -> None:
    # A consumer must not dead-letter a peer's event over its own single-label setting...
    assert Reporter(employee_id="E-1", name="N", email="pat@mailhost").email == "pat@mailhost"
    assert Person(id="A-1", name="N", email="pat@mailhost").email == "pat@mailhost"
    # ...but what no door accepts is still refused.
    for address in INVALID:
        with pytest.raises(ValidationError):
            Reporter(employee_id="E-1", name="N", email=address)


def test_field_case_api_bodies_are_valid_submissions() -> None:
    for name, stored in [
        ("api-reporter-dot-local.json", "priya.nair@corp.local"),
        ("api-reporter-non-ascii-local-part.json", "jürgen.groß@example.com"),
    ]:
        body = json.loads((FIELD_CASES / name).read_text(encoding="utf-8"))
        assert SubmitCase.model_validate(body).reporter.email == stored


def test_ascii_form_is_the_a_label_or_none_for_a_non_ascii_local_part() -> None:
    assert ascii_form("marie@bücher.de") == "marie@xn--bcher-kva.de"
    assert ascii_form("ops@hr.internal") == "ops@hr.internal"
    assert ascii_form("jürgen.groß@example.com") is None


def test_the_json_schema_still_says_email() -> None:
    schema = Reporter.model_json_schema()
    email = schema["properties"]["email"]
    assert (email["type"], email["format"]) == ("string", "email")


# --- Properties ---------------------------------------------------------------------------

# Letters of many scripts, NFC-normal (email-validator stores NFC), as a dot-atom local part.
_letters = st.characters(categories=["Ll", "Lu", "Lo", "Nd"], min_codepoint=0x30).filter(
    lambda c: unicodedata.normalize("NFC", c) == c and unicodedata.category(c) != "Cn"
)
_atoms = st.text(_letters, min_size=1, max_size=12)
local_parts = (
    st.lists(_atoms, min_size=1, max_size=3).map(".".join).filter(lambda s: len(s.encode()) <= 64)
)
_label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=15).filter(
    lambda s: not s[0].isdigit()
)
internal_domains = st.tuples(
    st.lists(_label, min_size=1, max_size=3), st.sampled_from(["local", "internal", "lan"])
).map(lambda parts: ".".join([*parts[0], parts[1]]))


@given(local=local_parts, domain=internal_domains)
def test_any_international_local_part_at_any_internal_domain_is_stored_exactly(
    local: str, domain: str
) -> None:
    address = f"{local}@{domain}"
    try:
        stored = check_address(address)
    except InvalidAddress as exc:  # only email-validator's Unicode safety rules may refuse
        assert "character" in str(exc) or "Unicode" in str(exc), exc
        return
    assert stored == address
    assert Reporter(employee_id="E-1", name="N", email=address).email == address


@given(domain=internal_domains)
def test_any_internal_domain_with_an_ascii_local_part_needs_no_smtputf8(domain: str) -> None:
    assert ascii_form(f"pat.lee@{domain}") == f"pat.lee@{domain}"


@given(junk=st.text(alphabet=' <>()[]\\,;:"\x00\n', min_size=1, max_size=3))
def test_specials_in_an_unquoted_local_part_are_refused(junk: str) -> None:
    with pytest.raises(InvalidAddress):
        check_address(f"pat{junk}lee@corp.local")
