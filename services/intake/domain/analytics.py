"""The HR dashboard's figures and the disclosure rules they obey. No I/O.

Disclosure policy (small-cell suppression; threshold `ANALYTICS_MIN_CELL`, default 5):
- a count of 1 .. threshold-1 cases is *suppressed*: shown as "fewer than 5", never the
  number. A count of 0 is shown as 0: it describes nobody.
- a median, p90 or percentage computed from fewer than `threshold` cases is suppressed too
  (None), since with 1-4 cases it describes those few people.
- secondary (complementary) suppression: a table shows its total, so the suppressed rows'
  sum is known (total minus the rows shown), and a reader knows each is 1..threshold-1.
  That alone can give rows away (one hidden row; or four hidden rows summing to 4, each
  then exactly 1). So the next smallest shown rows are hidden too, shown as "hidden" (not
  "fewer than 5": they are not small), until no small row's value is pinned down by what
  the page shows (`protected`); if no row is left to hide, the total is hidden.
- restricted cases are counted in every figure, never listed: no figure carries a case
  reference; a drill-down link opens the staff work queue, whose own access rules decide
  which cases the viewer then sees.
- recurring-issue rows name a person by id only (never name or email) with a count of
  cases. A person whose cases in the figure are *all* restricted is named only to a
  viewer who reads restricted cases (hr_manager); to anyone else (admin) the row is kept,
  counted, but withheld: `person_id` None, label "Withheld (restricted cases only)".
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal, TypeVar

from services.intake.domain.legal_holds import LegalHoldCounts
from shared.auth import Principal, Role

DEFAULT_MIN_CELL = 5
# Roles that open the dashboard and its API (issue #13): HR leaders and administrators.
ANALYTICS_ROLES: tuple[Role, ...] = ("hr_manager", "admin")
# A period may cover at most this many days (about three years): the replica answers it
# fast, but an unbounded period is a question nobody asks of a dashboard.
MAX_PERIOD_DAYS = 3 * 366
GroupBy = Literal["category", "channel", "week", "team"]
GROUP_BYS: tuple[GroupBy, ...] = ("category", "channel", "week", "team")
SlaGroupBy = Literal["team"]
WITHHELD_LABEL = "Withheld (restricted cases only)"

# Age of an open case since submission, as of now: (key, label, lower bound inclusive).
AgeBand = Literal["lt_1w", "1w_4w", "1m_3m", "gt_3m"]
AGE_BANDS: tuple[tuple[AgeBand, str, timedelta], ...] = (
    ("lt_1w", "Less than 1 week", timedelta(0)),
    ("1w_4w", "1 to 4 weeks", timedelta(weeks=1)),
    ("1m_3m", "1 to 3 months", timedelta(weeks=4)),
    ("gt_3m", "More than 3 months", timedelta(days=91)),
)

K = TypeVar("K", bound=Hashable)


def may_read_analytics(principal: Principal) -> bool:
    return principal.has_any(*ANALYTICS_ROLES)


class BadPeriod(ValueError):
    """The period asked for is not one the dashboard answers (message names the field)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Period:
    """Whole UTC days, both ends included: cases submitted from `start` 00:00 UTC to the
    end of `end`."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise BadPeriod("to", "must not be before from")
        if self.days > MAX_PERIOD_DAYS:
            raise BadPeriod("to", f"a period covers at most {MAX_PERIOD_DAYS} days")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def starts_at(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def ends_before(self) -> datetime:
        """The first instant after the period."""
        return self.starts_at + timedelta(days=self.days)

    def previous(self) -> Period:
        """The equal period just before this one (for "rising" comparisons)."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))


@dataclass(frozen=True)
class Filters:
    """Narrow every figure to one owning team and/or one category (None: all)."""

    team: str | None = None
    category: str | None = None


# Why a count is not shown: "small" (1 .. threshold-1 cases: "fewer than 5") or
# "complement" (hidden so that a small one cannot be worked out from the total: "hidden").
SuppressionReason = Literal["small", "complement"]
HIDDEN_LABEL = "hidden"


@dataclass(frozen=True)
class Cell:
    """One disclosed count: `value` None exactly when `suppressed`; `why` says which rule
    hid it (None when shown)."""

    value: int | None
    suppressed: bool = False
    why: SuppressionReason | None = None

    def display(self, threshold: int) -> str:
        if not self.suppressed:
            return f"{self.value:,}"
        return HIDDEN_LABEL if self.why == "complement" else f"fewer than {threshold}"


@dataclass(frozen=True)
class CountRow:
    key: str
    label: str
    count: Cell
    # The staff work queue with this row's filters (its own access rules apply); None
    # where no queue filter expresses the row.
    link: str | None = None


@dataclass(frozen=True)
class CountTable:
    group_by: str
    rows: list[CountRow]
    total: Cell
    threshold: int


@dataclass(frozen=True)
class SlaRow:
    """One team's speed and compliance over the cases submitted in the period.

    Hours are *working* hours in the team's calendar, to one decimal; None when fewer
    than `threshold` cases have the clock stopped (or suppressed with them).
    `*_met_pct`: percent of stopped clocks that stopped by routing's deadline.
    """

    team: str
    cases: Cell
    first_response_median_h: float | None
    first_response_p90_h: float | None
    first_response_met_pct: float | None
    resolution_median_h: float | None
    resolution_p90_h: float | None
    resolution_met_pct: float | None
    breaches: Cell
    escalations: Cell
    link: str | None = None
    label: str = ""  # the team's name in routing's roster (the key when unknown)


@dataclass(frozen=True)
class SlaTable:
    group_by: str
    rows: list[SlaRow]
    threshold: int
    # Over every team in the table (the dashboard's headline): % of stopped clocks met,
    # None under the threshold.
    first_response_met_pct: float | None = None
    resolution_met_pct: float | None = None


@dataclass(frozen=True)
class ReopenRate:
    """Of the cases submitted in the period that were resolved at least once, how many
    were reopened (percent; None below the threshold)."""

    reopened: Cell
    resolved: Cell
    rate_pct: float | None


@dataclass(frozen=True)
class RecurringPerson:
    """A person in several cases: by id only, with a count, never names or references.
    `person_id` None: withheld (all their cases are restricted and the viewer may not
    read restricted cases)."""

    person_id: str | None
    label: str
    cases: Cell


@dataclass(frozen=True)
class RisingCategory:
    department: str
    category: str
    label: str
    current: Cell
    previous: Cell


@dataclass(frozen=True)
class Recurring:
    respondents: list[RecurringPerson]
    reporters: list[RecurringPerson]
    rising: list[RisingCategory]


@dataclass(frozen=True)
class FollowThroughRow:
    """Conference actions or agreement obligations due in the period.

    on_time: done by the due date; late: done after it; overdue_open: not done and past
    due; open: not done and not yet due."""

    kind: Literal["conference_action", "agreement_obligation"]
    label: str
    on_time: Cell
    late: Cell
    overdue_open: Cell
    open: Cell
    total: Cell


@dataclass(frozen=True)
class Dashboard:
    period: Period
    filters: Filters
    threshold: int
    as_of: datetime
    volume_by_category: CountTable
    volume_by_channel: CountTable
    volume_by_week: CountTable
    volume_by_team: CountTable
    backlog_by_age: CountTable
    sla_by_team: SlaTable
    reopen_rate: ReopenRate
    cases_by_stage: CountTable
    conferences: CountTable
    recurring: Recurring
    follow_through: list[FollowThroughRow] = field(default_factory=list)
    # Legal holds (issue #14): counts only (domain/legal_holds.LegalHoldCounts).
    legal_holds: LegalHoldCounts = field(default_factory=lambda: LegalHoldCounts(0, 0, 0))


# --- Pure rules ------------------------------------------------------------------------------


def cell(count: int, threshold: int) -> Cell:
    """Primary suppression: 0 shown, 1 .. threshold-1 suppressed, the rest shown."""
    if count < 0:
        raise ValueError("a count cannot be negative")
    if 0 < count < threshold:
        return Cell(None, suppressed=True, why="small")
    return Cell(count)


HIDDEN = Cell(None, suppressed=True, why="complement")


def protected(
    hidden_sum: int, small: int, complement: int, threshold: int, next_shown: int | None
) -> bool:
    """Whether no small hidden row's value can be worked out from what a table shows.

    A reader knows `hidden_sum` (total minus the rows shown), that each of the `small`
    rows is 1 .. threshold-1, and that each of the `complement` rows is at least
    `threshold` (else it would be small) and at most `next_shown`, the smallest non-zero
    row still shown (they were hidden smallest first; None: no row is left). A small row
    then lies in [lower, upper]; it is protected when that range holds two values or more.
    """
    if small == 0:
        return True
    others_max = (small - 1) * (threshold - 1)
    if complement:
        if next_shown is None:
            lower = 1
        else:
            lower = max(1, hidden_sum - others_max - complement * next_shown)
    else:
        lower = max(1, hidden_sum - others_max)
    upper = min(threshold - 1, hidden_sum - (small - 1) - complement * threshold)
    return upper > lower


def suppress_table(
    counts: Mapping[K, int], threshold: int, *, total: int | None = None
) -> tuple[dict[K, Cell], Cell]:
    """Cells for a table of counts and its total (sum of counts unless given), with
    primary and complementary suppression (module docstring). Keys keep their order."""
    whole = sum(counts.values()) if total is None else total
    cells = {key: cell(n, threshold) for key, n in counts.items()}
    total_cell = cell(whole, threshold)
    small = [key for key, c in cells.items() if c.suppressed]
    if total_cell.suppressed or not small:
        return cells, total_cell
    hidden_sum = sum(counts[key] for key in small)
    # Shown non-zero rows, smallest first (ties in table order): the next to hide.
    shown = sorted(
        ((n, i, key) for i, (key, n) in enumerate(counts.items()) if n > 0 and key not in small),
        key=lambda item: (item[0], item[1]),
    )
    complement = 0
    while not protected(
        hidden_sum, len(small), complement, threshold, shown[0][0] if shown else None
    ):
        if not shown:
            return cells, HIDDEN
        n, _, key = shown.pop(0)
        cells[key] = HIDDEN
        hidden_sum += n
        complement += 1
    return cells, total_cell


def percentile(values: Sequence[float], q: float) -> float | None:
    """Continuous percentile (linear interpolation, as SQL percentile_cont); None if empty."""
    if not 0 <= q <= 1:
        raise ValueError("q must be within 0..1")
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def hours(seconds: float | None) -> float | None:
    """Working seconds as hours to one decimal."""
    return None if seconds is None else round(seconds / 3600, 1)


def disclosed_stat(value: float | None, basis: int, threshold: int) -> float | None:
    """A median, p90 or percentage from `basis` cases: None below the threshold."""
    return None if basis < threshold else value


def percent(part: int, whole: int, threshold: int) -> float | None:
    """part/whole as a percentage to one decimal; None when whole is under the threshold."""
    if whole == 0 or whole < threshold:
        return None
    return round(100 * part / whole, 1)


def age_band(submitted_at: datetime, now: datetime) -> AgeBand:
    """The band of an open case's age since submission (a future submission: the first)."""
    age = now - submitted_at
    band: AgeBand = AGE_BANDS[0][0]
    for key, _label, lower in AGE_BANDS:
        if age >= lower:
            band = key
    return band


def week_start(day: date) -> date:
    """The Monday of `day`'s ISO week (volume by week keys on it)."""
    return day - timedelta(days=day.weekday())


def recurring_label(person_id: str | None) -> str:
    return WITHHELD_LABEL if person_id is None else person_id
