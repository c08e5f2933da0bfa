"""What a newcomer following the README meets: the banner's portal address, the quick
start's reporter as a demo identity, and where sign-in may send them back to."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hrcase.demo import DEMO_FILE
from hrcase.supervisor import MailPlan, _banner
from services.intake.entrypoints.portal.session import DEMO_BY_KEY, DEMO_IDENTITIES, safe_next
from shared.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def banner_line(settings: Settings, capsys: pytest.CaptureFixture[str], label: str) -> str:
    _banner(settings, MailPlan(True, "SMTP localhost:1025 -> development sink"))
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith(label))
    return line.strip().removeprefix(label).strip()


def test_the_banner_gives_the_portal_at_the_address_mail_links_use(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Default: the README's and every email link's host, not the bind address 127.0.0.1.
    assert banner_line(Settings(), capsys, "portal") == "http://localhost:8000/portal/"
    custom = Settings(portal_base_url="https://hr.example.com/")
    assert banner_line(custom, capsys, "portal") == "https://hr.example.com/portal/"


def _quick_start_reporter() -> dict[str, str]:
    """The reporter of the README quick start's curl."""
    found = re.search(r'"reporter": (\{[^}]*\})', README.read_text(encoding="utf-8"))
    assert found, "the README quick start raises no case?"
    reporter: dict[str, str] = json.loads(found.group(1))
    return reporter


def test_the_quick_start_reporter_can_sign_in() -> None:
    reporter = _quick_start_reporter()
    maria = DEMO_BY_KEY["maria"]
    assert (maria.employee_id, maria.name, maria.email) == (
        reporter["employee_id"],
        reporter["name"],
        reporter["email"],
    )
    assert maria.roles == ("employee",)
    # The demo data's case for E-1001 goes to the same address.
    demo = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))
    demo_reporters = {case["reporter"]["employee_id"]: case["reporter"] for case in demo}
    assert demo_reporters["E-1001"]["email"] == maria.email
    assert demo_reporters["E-1001"]["name"] == maria.name
    # The README's next step names identities the sign-in page offers.
    names = {identity.name for identity in DEMO_IDENTITIES}
    assert {"Maria Lopez", "Priya Shah"} <= names
    assert "sign in as **Maria Lopez**" in README.read_text(encoding="utf-8")


def test_every_demo_case_is_a_valid_submission_its_reporter_can_follow() -> None:
    """`make run` seeds these through the API: each body must be JSON (a bare YAML date is
    not) and valid, and the injury claim's worker must be able to sign in to consent."""
    from hrcase.demo import demo_case_body
    from services.intake.domain.case import SubmitCase

    demo = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))
    for case in demo:
        body = json.loads(json.dumps(demo_case_body(case)))
        SubmitCase.model_validate(body)
    injured = [c for c in demo if (c.get("injury") or {}).get("serious")]
    assert injured, "the demo has no claim that requires a case conference"
    worker = DEMO_BY_KEY["peter"]
    assert worker.employee_id == injured[0]["reporter"]["employee_id"]


CASE = "/portal/cases/6f1c1c9e-8a47-4c52-9a7e-0d1c6b1c2f3a"
ACCEPTED = [
    CASE,
    f"{CASE}?raised=1",
    "/portal/cases",
    "/portal/cases/new",
    "/portal/phone-calls/new",
    "/portal/anonymous/follow-up",
]
REFUSED = [
    None,
    "",
    "https://evil.example/portal/cases",
    "http:/portal/cases",
    "//evil.example/portal/cases",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/portal/\\..\\..\\evil",
    "/portal/%5c%5cevil.example",
    "/portal//evil.example",
    "/portal/%2f%2fevil.example",
    "/portal/../admin",
    "/portal/%2e%2e/%2e%2e/evil",
    "/portal/./cases",
    "javascript:alert(1)",
    "/portal/cases\r\nSet-Cookie: x=1",
    "/portal/cases%0d%0aLocation:%20https://evil.example",
    "/portal/cases\t/x",
    "/portal/ cases",
    "/portal/cases#frag",
    "portal/cases",
    "/api/v1/cases",
    "/portal",
    "/portal/sign-in",
    "/portal/sign-out",
    "/portal/" + "a" * 2100,
]


@pytest.mark.parametrize("value", ACCEPTED)
def test_sign_in_returns_to_portal_paths(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize("value", REFUSED)
def test_sign_in_never_redirects_elsewhere(value: str | None) -> None:
    assert safe_next(value) is None


@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(lambda tail: "/portal/" + tail, st.text(max_size=60)),
        st.builds(
            lambda a, b: f"/portal/{a}{b}",
            st.sampled_from(["/", "\\", "%2f", "%5c", "%2e", ".", ":", "@", "?", "#", "%0a"]),
            st.text(alphabet="/\\.:@%?#abc", max_size=20),
        ),
    )
)
def test_an_accepted_next_stays_on_this_site_under_the_portal(value: str) -> None:
    accepted = safe_next(value)
    if accepted is None:
        return
    base = "http://localhost:8000/portal/sign-in"
    target = urlsplit(urljoin(base, accepted))
    assert (target.scheme, target.netloc) == ("http", "localhost:8000"), accepted
    assert target.path.startswith("/portal/"), accepted
    assert "\\" not in accepted and "//" not in target.path, accepted
