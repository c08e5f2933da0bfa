"""Tasks' pure rules: the due instant in working time, the reminder, who may hold a task,
and the policy's `tasks:` section."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.routing.domain.policy import (
    DEFAULT_POLICY_FILE,
    PolicyError,
    StaffMember,
    TaskPolicy,
    load_policy,
    parse_policy,
)
from services.routing.domain.tasks import (
    TaskRefused,
    assignee_problem,
    due_soon_at,
    plan_task_timers,
    task_due,
)

POLICY = load_policy()
UK = POLICY.team_calendar("hr_operations")  # Europe/London, Mon-Thu 09:00-17:30, Fri -17:00
SHARE = TaskPolicy(due_soon_share=0.75)
BEFORE_2H = TaskPolicy(due_soon_hours_before=2)
FRIDAY_4PM = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)  # London is on UTC in November
PRIYA = StaffMember(id="A-1001", name="Priya Shah", email="priya.shah@example.com")


def test_working_hours_run_in_the_team_calendar_over_the_weekend() -> None:
    # One hour left on Friday, three more from Monday 09:00.
    due = task_due(UK, SHARE, requested_at=FRIDAY_4PM, due_in_working_hours=4, due_at=None)
    assert due == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_an_explicit_due_instant_is_kept_and_must_lie_ahead() -> None:
    at = FRIDAY_4PM + timedelta(days=3)
    assert task_due(UK, SHARE, requested_at=FRIDAY_4PM, due_in_working_hours=None, due_at=at) == at
    with pytest.raises(TaskRefused, match="after the request"):
        task_due(UK, SHARE, requested_at=FRIDAY_4PM, due_in_working_hours=None, due_at=FRIDAY_4PM)


@pytest.mark.parametrize(
    ("hours", "at", "message"),
    [
        (None, None, "exactly one"),
        (4.0, FRIDAY_4PM + timedelta(days=1), "exactly one"),
        (2001.0, None, "at most 2000"),
    ],
)
def test_due_forms_routing_will_not_plan(
    hours: float | None, at: datetime | None, message: str
) -> None:
    with pytest.raises(TaskRefused, match=message):
        task_due(UK, SHARE, requested_at=FRIDAY_4PM, due_in_working_hours=hours, due_at=at)


def test_the_reminder_comes_at_a_share_or_hours_before_in_working_time() -> None:
    due = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # 4 working hours after Friday 16:00
    # 75 % of 4 h = 3 h: Friday's last hour, then Monday 09:00-11:00.
    assert due_soon_at(UK, SHARE, start=FRIDAY_4PM, due=due) == datetime(
        2026, 11, 30, 11, 0, tzinfo=UTC
    )
    # Two working hours before Monday 12:00 is Monday 10:00, not Monday 10:00 minus a weekend.
    assert due_soon_at(UK, BEFORE_2H, start=FRIDAY_4PM, due=due) == datetime(
        2026, 11, 30, 10, 0, tzinfo=UTC
    )
    # Already inside its reminder window: no reminder.
    short = UK.add_working(FRIDAY_4PM, timedelta(hours=1))
    assert due_soon_at(UK, BEFORE_2H, start=FRIDAY_4PM, due=short) is None


@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 1), timezones=st.just(UTC)
    ),
    hours=st.floats(min_value=0.01, max_value=300),
    share=st.floats(min_value=0.05, max_value=0.95),
)
def test_the_reminder_always_falls_between_the_request_and_the_due_instant(
    start: datetime, hours: float, share: float
) -> None:
    due = task_due(UK, SHARE, requested_at=start, due_in_working_hours=hours, due_at=None)
    assert UK.working_between(start, due) == pytest.approx(
        timedelta(hours=hours), abs=timedelta(microseconds=2)
    )
    reminder = due_soon_at(UK, TaskPolicy(due_soon_share=share), start=start, due=due)
    assert reminder is not None and start <= reminder <= due


def test_timers_planned_for_an_open_task() -> None:
    due = FRIDAY_4PM + timedelta(days=3)
    reminder = FRIDAY_4PM + timedelta(days=2)
    assert [t.kind for t in plan_task_timers(due=due, reminder=reminder, now=FRIDAY_4PM)] == [
        "due_soon",
        "overdue",
    ]
    # A reminder already past (the request was applied late) or absent is not planned.
    late = plan_task_timers(due=due, reminder=reminder, now=reminder + timedelta(seconds=1))
    assert [t.kind for t in late] == ["overdue"]
    assert [t.kind for t in plan_task_timers(due=due, reminder=None, now=FRIDAY_4PM)] == ["overdue"]


def test_who_may_hold_a_task() -> None:
    free = frozenset[str]()
    assert assignee_problem(PRIYA, "A-1001", conflicted=free, inactive=free) is None
    unknown = assignee_problem(None, "Z-1", conflicted=free, inactive=free)
    assert unknown is not None and "not HR staff" in unknown
    chain = assignee_problem(PRIYA, "A-1001", conflicted=frozenset({"A-1001"}), inactive=free)
    assert chain is not None and "conflict of interest" in chain
    gone = assignee_problem(PRIYA, "A-1001", conflicted=free, inactive=frozenset({"A-1001"}))
    assert gone is not None and "inactive" in gone
    hidden = assignee_problem(
        PRIYA, "A-1001", conflicted=free, inactive=free, restricted_readers=frozenset({"M-9002"})
    )
    assert hidden is not None and "restricted" in hidden
    assert (
        assignee_problem(
            PRIYA,
            "A-1001",
            conflicted=free,
            inactive=free,
            restricted_readers=frozenset({"A-1001"}),
        )
        is None
    )


TEXT = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")


def test_the_shipped_policy_has_a_tasks_section() -> None:
    assert POLICY.tasks.due_soon_share == 0.75 and POLICY.tasks.escalation_level == 1


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("tasks:\n  due_soon_share: 0.5\n  due_soon_hours_before: 2\n", "exactly one"),
        ("tasks:\n  escalation_level: 1\n", "exactly one"),
        ("tasks:\n  due_soon_share: 1.5\n", "tasks.due_soon_share"),
        ("tasks:\n  due_soon_share: 0.5\n  escalation_level: 9\n", "has only 3 levels"),
        ("tasks:\n  due_soon_share: 0.5\n  colour: red\n", "tasks.colour"),
    ],
)
def test_a_bad_tasks_section_is_refused_naming_the_key(section: str, message: str) -> None:
    start = TEXT.index("tasks:\n")
    end = TEXT.index("categories:\n")
    text = TEXT[:start] + section + "\n" + TEXT[end:]
    with pytest.raises(PolicyError, match=message) as refused:
        parse_policy(text, "policy.yaml")
    assert "policy.yaml:" in str(refused.value) and "tasks" in str(refused.value)
