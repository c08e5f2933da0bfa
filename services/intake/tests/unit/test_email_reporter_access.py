"""The sender of a case opened by email follows it once signed in with that verified address:
case.reporter_ids, the one rule every door asks."""

from services.intake.domain.case import CaseFacts, case_access, is_reporter, reporter_ids
from services.intake.domain.email.threads import email_employee_id, email_reporter
from services.intake.domain.work_queue import viewer_of
from shared.auth import AUDIENCE, PORTAL_AUDIENCE, Principal, TokenService

SECRET = "x" * 40


def sam(email: str | None = "sam.rivera@example.com", *, verified: bool = True) -> Principal:
    return Principal(
        subject="u-sam",
        roles=frozenset({"employee"}),
        employee_id="E-7001",
        email=email,
        email_verified=verified,
    )


def mailed_by(address: str, **overrides: object) -> CaseFacts:
    """A case as intake opens it from a mail sent by `address` (lower case, as parsed)."""
    facts = {
        "reporter_employee_id": email_reporter(address, "").employee_id,
        "anonymous": False,
        "sensitivity": "normal",
        "owner_id": None,
        "logged_by": None,
        "submitted_by": None,
    }
    return CaseFacts.model_validate({**facts, **overrides})


def test_the_verified_sender_is_the_reporter_of_a_case_opened_by_their_mail():
    case = mailed_by("sam.rivera@example.com")
    assert reporter_ids(sam()) == ("E-7001", "email:sam.rivera@example.com")
    assert is_reporter(sam(), case)
    access = case_access(sam(), case)
    assert access.allowed and not access.audited
    # Restricted cases follow the same reporter rule.
    assert case_access(sam(), mailed_by("sam.rivera@example.com", sensitivity="restricted"))
    # The session's address in other capitals (domain or local part) is the same mailbox.
    assert is_reporter(sam("Sam.Rivera@EXAMPLE.com"), case)


def test_nobody_else_gains_anything():
    case = mailed_by("sam.rivera@example.com")
    assert not is_reporter(sam("alex.kim@example.com"), case)
    assert not case_access(sam("alex.kim@example.com"), case).allowed
    # An address nobody verified (an API token's claim) and no address at all: nothing.
    assert reporter_ids(sam(verified=False)) == ("E-7001",)
    assert not case_access(sam(verified=False), case).allowed
    assert reporter_ids(sam(None)) == ("E-7001",)
    assert not case_access(sam(None), case).allowed
    # Not an address (no verified claim should hold one, but never a crash or a match).
    assert reporter_ids(sam("not an address@")) == ("E-7001",)
    # An anonymous case stays nobody's.
    assert not case_access(sam(), mailed_by("sam.rivera@example.com", anonymous=True)).allowed


def test_a_long_address_matches_through_the_same_hashed_id():
    address = "sam." + "r" * 60 + "@example.com"
    assert email_employee_id(address).startswith("email:sha256:")
    assert is_reporter(sam(address.upper()), mailed_by(address))
    assert not is_reporter(sam("sam." + "r" * 59 + "@example.com"), mailed_by(address))


def test_an_internationalised_address_compares_in_nfc():
    stored = "j\u00fcrgen@b\u00fccher.de"  # as intake stores it: NFC, lower case
    decomposed = "ju\u0308rgen@bu\u0308cher.de"
    assert is_reporter(sam(decomposed), mailed_by(stored))


def test_the_work_queue_viewer_carries_the_same_ids():
    assert viewer_of(sam()).reporter_ids == reporter_ids(sam())


def test_only_a_portal_token_carries_a_verified_address():
    tokens = TokenService(SECRET)

    def mint(audience: str, *, verified: bool) -> str:
        return tokens.mint(
            "u-sam",
            ["employee"],
            audience=audience,
            employee_id="E-7001",
            email="sam.rivera@example.com",
            email_verified=verified,
        )

    portal = mint(PORTAL_AUDIENCE, verified=True)
    assert tokens.verify(portal, audience=PORTAL_AUDIENCE).email_verified
    # The same claim in an API token is whatever its minter wrote: not verified.
    assert not tokens.verify(mint(AUDIENCE, verified=True)).email_verified
    unverified = mint(PORTAL_AUDIENCE, verified=False)
    assert not tokens.verify(unverified, audience=PORTAL_AUDIENCE).email_verified
