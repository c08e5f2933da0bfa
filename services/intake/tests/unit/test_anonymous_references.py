"""Anonymous references: random, readable, forgiving of how people copy them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.intake.domain.anonymous_keys import (
    ANONYMOUS_REFERENCE,
    attempt_hash,
    new_reference,
    normalise_reference,
)

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
groups = st.lists(st.text(CROCKFORD, min_size=4, max_size=4), min_size=3, max_size=3)


def test_new_references_are_well_formed_and_distinct():
    references = {new_reference() for _ in range(2000)}
    assert len(references) == 2000  # 60 random bits: a collision here would be a bug
    assert all(ANONYMOUS_REFERENCE.match(r) for r in references)


@given(groups, st.sampled_from(["-", "", " ", " - "]), st.booleans(), st.booleans())
def test_a_reference_however_it_is_copied_normalises_back(parts, separator, lower, misread):
    canonical = "AR-" + "-".join(parts)
    typed = "AR" + separator + separator.join(parts)
    if misread:  # Crockford: O reads as 0, I and L as 1
        typed = typed[:2] + typed[2:].replace("0", "O").replace("1", "I")
    if lower:
        typed = typed.lower()
    assert normalise_reference(typed) == canonical


@given(st.text(min_size=1, max_size=80))
def test_anything_typed_is_a_reference_or_nothing_and_never_holds_a_nul(typed):
    normalised = normalise_reference(typed)
    if normalised is not None:
        assert "\x00" not in normalised and len(normalised) <= 64
        assert normalised == normalised.strip().upper()


def test_staff_references_pass_through_and_attempt_hashes_hide_their_input():
    assert normalise_reference(" hr-2026-000123 ") == "HR-2026-000123"
    hashed = attempt_hash("secret", "source", "203.0.113.7")
    assert "203.0.113.7" not in hashed and len(hashed) == 64
    assert hashed != attempt_hash("other secret", "source", "203.0.113.7")
    assert hashed != attempt_hash("secret", "reference", "203.0.113.7")
    assert attempt_hash("secret", "reference", "\ud800\x00") != hashed  # any text hashes
