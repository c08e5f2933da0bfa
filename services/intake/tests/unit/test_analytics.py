"""The dashboard's pure rules: small-cell suppression, percentiles, age bands, periods, and
each case's clocks in working time (hand-computed against 9-17 Mon-Fri calendars)."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.domain.analytics import (
    HIDDEN,
    MAX_PERIOD_DAYS,
    BadPeriod,
    Cell,
    Period,
    age_band,
    cell,
    disclosed_stat,
    hours,
    percent,
    percentile,
    suppress_table,
    week_start,
)
from services.intake.domain.analytics_facts import HistoryFact, clock_facts, met
from shared.working_time import calendar_from_spec

SMALL = Cell(None, suppressed=True, why="small")

NINE_TO_FIVE = calendar_from_spec(
    "UTC", {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}, ()
)
# The same hours in Sydney (UTC+11 in November): another team's calendar.
SYDNEY = calendar_from_spec(
    "Australia/Sydney", {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}, ()
)
FRIDAY_16 = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # a Friday
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def status(at: datetime, to: str) -> HistoryFact:
    return HistoryFact(at, "status_changed", {"to_status": to})


# --- Suppression -----------------------------------------------------------------------


def test_zero_is_shown_small_counts_are_suppressed_and_the_rest_shown():
    assert cell(0, 5) == Cell(0)
    assert [cell(n, 5) for n in (1, 2, 3, 4)] == [SMALL] * 4
    assert cell(5, 5) == Cell(5)
    assert cell(3, 5).display(5) == "fewer than 5"
    assert cell(1234, 5).display(5) == "1,234"
    assert HIDDEN.display(5) == "hidden"


def test_a_lone_suppressed_cell_takes_the_next_smallest_with_it_labelled_hidden():
    cells, total = suppress_table({"a": 3, "b": 7, "c": 20, "d": 0}, 5)
    # a (3) alone could be recovered as 30 - 7 - 20: b, the next smallest non-zero, goes
    # too, as "hidden" (it is not fewer than 5).
    assert cells == {"a": SMALL, "b": HIDDEN, "c": Cell(20), "d": Cell(0)}
    assert total == Cell(30)
    assert [c.display(5) for c in cells.values()] == ["fewer than 5", "hidden", "20", "0"]


def test_two_suppressed_cells_whose_sum_leaves_room_need_no_more():
    cells, total = suppress_table({"a": 3, "b": 2, "c": 20}, 5)
    assert cells == {"a": SMALL, "b": SMALL, "c": Cell(20)}
    assert total == Cell(25)


def test_small_cells_that_must_each_be_one_take_the_shown_ones_with_them():
    """The field case: 15 demo cases, payroll 6, leave 5 and four categories of one case
    each. Hiding only the four leaves 15 - 11 = 4 for four rows of at least 1: each is 1.
    Hiding leave too leaves 9 for them and leave (leave at least 5, so they sum to at most
    4: still each 1); only with payroll hidden as well can a row be 1 or 2."""
    counts = {"payroll": 6, "leave": 5, "a": 1, "b": 1, "c": 1, "d": 1, "e": 0}
    cells, total = suppress_table(counts, 5)
    assert cells == {
        "payroll": HIDDEN,
        "leave": HIDDEN,
        "a": SMALL,
        "b": SMALL,
        "c": SMALL,
        "d": SMALL,
        "e": Cell(0),
    }
    assert total == Cell(15)


def test_a_lone_suppressed_cell_beside_zeros_hides_the_total():
    cells, total = suppress_table({"a": 3, "b": 0}, 5)
    assert cells["a"].suppressed and cells["b"] == Cell(0)
    assert total.suppressed


def test_when_no_row_is_left_to_hide_the_total_is_hidden():
    cells, total = suppress_table({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}, 5)
    assert all(c == SMALL for c in cells.values())
    assert total == HIDDEN


def _values_a_reader_allows(
    cells: dict[str, Cell], total: Cell, threshold: int
) -> dict[str, set[int]]:
    """For each row, every value a reader could believe from what the table shows: shown
    rows exact, a small row 1..threshold-1, a hidden row threshold..(smallest shown
    non-zero row, or the total), the rows summing to the total when it is shown. A value v
    of one row is possible when the other rows can sum to total - v: their ranges are
    intervals of integers, so their sums are exactly the interval [sum of lows, sum of
    highs]."""
    shown_nonzero = [c.value for c in cells.values() if not c.suppressed and c.value]
    whole = total.value if not total.suppressed and total.value is not None else 10_000
    cap = min(shown_nonzero) if shown_nonzero else whole
    ranges: dict[str, tuple[int, int]] = {}
    for key, c in cells.items():
        if not c.suppressed:
            ranges[key] = (c.value or 0, c.value or 0)
        elif c.why == "small":
            ranges[key] = (1, threshold - 1)
        else:
            ranges[key] = (threshold, cap)
    allowed: dict[str, set[int]] = {}
    for key, (low, high) in ranges.items():
        others = [r for k, r in ranges.items() if k != key]
        least, most = sum(r[0] for r in others), sum(r[1] for r in others)
        allowed[key] = {
            v for v in range(low, high + 1) if total.suppressed or least <= whole - v <= most
        }
    return allowed


@settings(max_examples=300)
@given(
    st.dictionaries(st.sampled_from("abcdefg"), st.integers(0, 12), max_size=6),
    # With a threshold of 2, "fewer than 2" says 1 by itself: from 3 up the rule can hold.
    st.integers(3, 6),
)
def test_no_small_cell_can_be_worked_out_from_what_the_table_shows(counts, threshold):
    cells, total = suppress_table(counts, threshold)
    for key, c in cells.items():
        assert c.suppressed == (c.value is None)
        if not c.suppressed:
            assert c.value == counts[key]
        if 0 < counts[key] < threshold:
            assert c.why == "small"
        elif c.suppressed:
            assert c.why == "complement" and counts[key] >= threshold
    if not total.suppressed:
        assert total.value == sum(counts.values())
    allowed = _values_a_reader_allows(cells, total, threshold)
    for key, c in cells.items():
        assert counts[key] in allowed[key]  # the truth is among what a reader could believe
        if c.why == "small":
            assert len(allowed[key]) >= 2, (counts, cells, total)


# --- Statistics --------------------------------------------------------------------------


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50))
def test_the_median_is_the_textbook_median(values):
    assert percentile(values, 0.5) == pytest.approx(statistics.median(values))


def test_p90_interpolates_like_percentile_cont():
    # positions 0..9, q=0.9 -> 8.1: 80 + 0.1 * (90 - 80)
    assert percentile([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0.9) == pytest.approx(91)
    assert percentile([], 0.5) is None


def test_statistics_from_fewer_cases_than_the_threshold_are_withheld():
    assert disclosed_stat(2.5, 4, 5) is None
    assert disclosed_stat(2.5, 5, 5) == 2.5
    assert percent(3, 4, 5) is None
    assert percent(3, 6, 5) == 50.0
    assert hours(2 * 3600 + 360) == 2.1


# --- Bands and periods ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (timedelta(days=6, hours=23), "lt_1w"),
        (timedelta(weeks=1), "1w_4w"),
        (timedelta(weeks=4) - timedelta(seconds=1), "1w_4w"),
        (timedelta(weeks=4), "1m_3m"),
        (timedelta(days=90), "1m_3m"),
        (timedelta(days=91), "gt_3m"),
        (timedelta(days=-1), "lt_1w"),
    ],
)
def test_age_bands(age, band):
    assert age_band(MONDAY_10 - age, MONDAY_10) == band


def test_a_period_is_whole_days_in_order_and_bounded():
    period = Period(date(2026, 11, 1), date(2026, 11, 30))
    assert period.days == 30
    assert period.ends_before == datetime(2026, 12, 1, tzinfo=UTC)
    assert period.previous() == Period(date(2026, 10, 2), date(2026, 10, 31))
    with pytest.raises(BadPeriod):
        Period(date(2026, 11, 2), date(2026, 11, 1))
    with pytest.raises(BadPeriod):
        Period(date(2020, 1, 1), date(2020, 1, 1) + timedelta(days=MAX_PERIOD_DAYS))
    assert week_start(date(2026, 11, 29)) == date(2026, 11, 23)  # Sunday -> its Monday


# --- Clocks in working time -------------------------------------------------------------------


def test_friday_16_00_answered_monday_10_00_is_two_working_hours():
    facts = clock_facts(
        submitted_at=FRIDAY_16,
        routed_at=FRIDAY_16,
        status="in_progress",
        history=[status(FRIDAY_16, "assigned"), status(MONDAY_10, "in_progress")],
        calendar=NINE_TO_FIVE,
    )
    assert facts.first_response_at == MONDAY_10
    assert facts.first_response_working_s == 2 * 3600  # Fri 16-17, Mon 9-10
    assert facts.resolved_at is None and facts.resolution_working_s is None


def test_the_same_moments_in_another_teams_calendar():
    # Sydney is UTC+11: Fri 16:00 UTC is Sat 03:00 there, Mon 10:00 UTC is Mon 21:00 there:
    # the whole Monday 09:00-17:00 Sydney lies between: 8 working hours.
    facts = clock_facts(
        submitted_at=FRIDAY_16,
        routed_at=FRIDAY_16,
        status="in_progress",
        history=[status(MONDAY_10, "in_progress")],
        calendar=SYDNEY,
    )
    assert facts.first_response_working_s == 8 * 3600


def test_an_agents_message_is_the_first_response_and_waiting_time_is_not_counted():
    tuesday = MONDAY_10 + timedelta(days=1)
    history = [
        status(FRIDAY_16, "assigned"),
        HistoryFact(MONDAY_10, "message", {"sender_role": "reporter"}),  # not an answer
        HistoryFact(MONDAY_10 + timedelta(hours=1), "message", {"sender_role": "agent"}),
        status(MONDAY_10 + timedelta(hours=2), "waiting_on_employee"),  # Mon 12:00
        status(tuesday - timedelta(hours=1), "in_progress"),  # Tue 09:00: 5 h waited Monday
        status(tuesday + timedelta(hours=3), "resolved"),  # Tue 13:00
        status(tuesday + timedelta(hours=5), "closed"),
        HistoryFact(MONDAY_10, "sla_breached", {"clock": "resolution"}),
        HistoryFact(MONDAY_10, "escalated", {"level": 1}),
    ]
    facts = clock_facts(
        submitted_at=FRIDAY_16,
        routed_at=FRIDAY_16,
        status="closed",
        history=history,
        calendar=NINE_TO_FIVE,
    )
    assert facts.first_response_at == MONDAY_10 + timedelta(hours=1)
    assert facts.first_response_working_s == 3 * 3600  # Fri 16-17, Mon 9-11
    # Fri 16-17 (1) + Mon 9-17 (8) + Tue 9-13 (4) = 13, less Mon 12-17 waiting (5) = 8 h.
    assert facts.resolved_at == tuesday + timedelta(hours=3)  # resolved, not closed
    assert facts.resolution_working_s == 8 * 3600
    assert (facts.resolution_breached, facts.first_response_breached) == (True, False)
    assert facts.escalations == 1


def test_a_reopened_case_is_resolved_when_it_last_ended():
    history = [
        status(FRIDAY_16, "in_progress"),
        status(MONDAY_10, "resolved"),
        HistoryFact(MONDAY_10 + timedelta(hours=1), "reopened", {}),
        status(MONDAY_10 + timedelta(hours=1), "in_progress"),
        status(MONDAY_10 + timedelta(hours=4), "resolved"),
    ]
    facts = clock_facts(
        submitted_at=FRIDAY_16,
        routed_at=FRIDAY_16,
        status="resolved",
        history=history,
        calendar=NINE_TO_FIVE,
    )
    assert facts.reopen_count == 1
    assert facts.resolved_at == MONDAY_10 + timedelta(hours=4)
    assert facts.resolution_working_s == 5 * 3600
    reopened_and_open = clock_facts(
        submitted_at=FRIDAY_16,
        routed_at=FRIDAY_16,
        status="in_progress",
        history=history[:4],
        calendar=NINE_TO_FIVE,
    )
    assert reopened_and_open.resolved_at is None


def test_met_is_the_stop_by_the_deadline():
    assert met(MONDAY_10, MONDAY_10) is True
    assert met(MONDAY_10 + timedelta(seconds=1), MONDAY_10) is False
    assert met(None, MONDAY_10) is None
    assert met(MONDAY_10, None) is None
