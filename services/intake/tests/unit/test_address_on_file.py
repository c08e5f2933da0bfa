"""An employee raising a case for themselves cannot name another address than their own."""

from __future__ import annotations

from services.intake.domain.case import REPORTER_EMAIL_NOT_ON_FILE, reporter_email_refusal
from shared.auth import Principal
from shared.events import Reporter


def principal(email: str | None, roles: frozenset[str] = frozenset({"employee"})) -> Principal:
    return Principal(subject="u-1", roles=roles, employee_id="E-1", email=email)


def reporter(employee_id: str, email: str) -> Reporter:
    return Reporter(employee_id=employee_id, name="Rae Porter", email=email)


def test_another_address_for_oneself_is_refused_naming_the_rule() -> None:
    refusal = reporter_email_refusal(
        principal("rae@example.com"), reporter("E-1", "someone@example.net")
    )
    assert refusal == REPORTER_EMAIL_NOT_ON_FILE


def test_the_address_on_file_in_other_capitals_is_the_same_mailbox() -> None:
    assert (
        reporter_email_refusal(principal("rae@example.com"), reporter("E-1", "RAE@Example.com"))
        is None
    )


def test_no_email_claim_takes_the_address_as_given() -> None:
    assert reporter_email_refusal(principal(None), reporter("E-1", "any@example.com")) is None


def test_staff_raising_for_someone_else_are_not_checked_here() -> None:
    agent = principal("priya@example.com", frozenset({"hr_agent", "employee"}))
    assert reporter_email_refusal(agent, reporter("E-2", "typed@example.com")) is None


def test_a_token_email_claim_round_trips_and_a_malformed_one_is_dropped() -> None:
    from shared.auth import TokenService

    tokens = TokenService("x" * 32)
    good = tokens.verify(tokens.mint("u-1", ["employee"], email="rae@example.com"))
    assert good.email == "rae@example.com"
    bad = tokens.verify(tokens.mint("u-1", ["employee"], email="not-an-address"))
    assert bad.email is None
