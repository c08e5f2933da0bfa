"""The status lifecycle as a table: every (current, requested) pair, refusals and staleness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.routing.domain.lifecycle import (
    ALLOWED_MOVES,
    ENDED_STATUSES,
    StatusMoveRefused,
    is_stale,
    next_status,
    waits_on_a_reply_already_given,
)

STATUSES = ("new", "routed", "assigned", "in_progress", "waiting_on_employee", "resolved", "closed")
REQUESTS = ("in_progress", "waiting_on_employee", "resolved", "closed", "reopened")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# requested status -> the statuses it may be requested from (the lifecycle's whole table).
EXPECTED_ALLOWED = {
    "in_progress": {"assigned", "waiting_on_employee"},
    "waiting_on_employee": {"assigned", "in_progress"},
    "resolved": {"assigned", "in_progress", "waiting_on_employee"},
    "closed": {"assigned", "in_progress", "waiting_on_employee", "resolved"},
    "reopened": {"resolved", "closed"},
}


@pytest.mark.parametrize("requested", REQUESTS)
@pytest.mark.parametrize("current", STATUSES)
def test_every_move_is_allowed_or_refused_by_the_table(current: str, requested: str) -> None:
    if current in EXPECTED_ALLOWED[requested]:
        expected = "in_progress" if requested == "reopened" else requested
        assert next_status(current, requested) == expected
    else:
        with pytest.raises(StatusMoveRefused, match=f"from {current} to {requested}"):
            next_status(current, requested)


def test_the_table_is_the_documented_one() -> None:
    assert {k: set(v) for k, v in ALLOWED_MOVES.items()} == EXPECTED_ALLOWED


@pytest.mark.parametrize("current", STATUSES)
def test_no_move_keeps_a_case_where_it_is(current: str) -> None:
    if current in REQUESTS:
        with pytest.raises(StatusMoveRefused):
            next_status(current, current)


def test_only_reopening_leaves_an_ended_case() -> None:
    for ended in ENDED_STATUSES:
        moves = {r for r in REQUESTS if ended in ALLOWED_MOVES[r]}
        assert "reopened" in moves
        assert moves <= {"reopened", "closed"}  # a resolved case may still be closed


@given(st.sampled_from((*REQUESTS, "archived", "", "RESOLVED")), st.sampled_from(STATUSES))
def test_an_unknown_request_is_refused_never_applied(requested: str, current: str) -> None:
    try:
        result = next_status(current, requested)
    except StatusMoveRefused:
        return
    assert requested in REQUESTS
    assert result in STATUSES


@given(st.integers(-3600, 3600))
def test_a_request_older_than_the_last_change_is_stale(offset: int) -> None:
    requested_at = T0 + timedelta(seconds=offset)
    assert is_stale(requested_at, T0) == (requested_at < T0)
    assert not is_stale(requested_at, None)


def test_waiting_on_an_employee_who_replied_since_is_superseded() -> None:
    replied = T0 + timedelta(minutes=5)
    assert waits_on_a_reply_already_given("waiting_on_employee", T0, replied)
    assert not waits_on_a_reply_already_given("waiting_on_employee", replied, T0)
    assert not waits_on_a_reply_already_given("waiting_on_employee", T0, None)
    assert not waits_on_a_reply_already_given("resolved", T0, replied)
