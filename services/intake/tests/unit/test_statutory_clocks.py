"""Statutory clocks as intake shows them: the request body, the refusals intake can tell
from its projection, due times in the team's zone, and the history lines."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from pydantic import ValidationError

from services.intake.domain.history import CaseBefore, consumed_entry, describe
from services.intake.domain.statutory_clocks import (
    ClockCompletion,
    completion_conflict,
    local_time,
)
from shared.envelope import Actor
from shared.events import (
    Person,
    StatutoryClockBreached,
    StatutoryClockMet,
    StatutoryClockStarted,
    make_event,
)

CASE = CaseBefore(category="workplace_injury", owner_id="A-4001", owner_name="Sofia Rossi")
DUE = datetime(2026, 10, 8, 6, 30, tzinfo=UTC)
COMMON = {
    "reference": "HR-1",
    "pack": "nsw",
    "clock": "insurer_contact",
    "label": "Insurer contacts the worker",
    "citation": "WIM Act 1998 (NSW) s 45",
    "due_at": DUE,
    "owner_id": "A-4001",
}


def test_a_completion_takes_an_optional_short_note_and_nothing_else() -> None:
    assert ClockCompletion().note is None
    assert ClockCompletion(note="phoned").note == "phoned"
    for bad in ({"note": "x" * 2001}, {"colour": "red"}, {"note": "a\x00b"}):
        with pytest.raises(ValidationError):
            ClockCompletion.model_validate(bad)


def test_what_intake_refuses_before_routing_decides() -> None:
    assert completion_conflict([]) == "not_found"
    assert completion_conflict(["met"]) == "the statutory clock is already met"
    # A per-conference clock with one instance still running may be completed.
    assert completion_conflict(["met", "breached"]) is None
    assert completion_conflict(["running"]) is None


def test_due_times_read_in_the_teams_zone() -> None:
    # 06:30 UTC on 8 Oct 2026 is 17:30 in Sydney (AEDT, +11, after the October change).
    assert local_time(DUE, "Australia/Sydney") == "Thu 08 Oct 2026 17:30 AEDT"
    assert local_time(DUE, None) == "Thu 08 Oct 2026 06:30 UTC"
    assert local_time(DUE, "Not/AZone") == "Thu 08 Oct 2026 06:30 UTC"
    assert local_time(None, "Australia/Sydney") is None


def _entry(payload: object) -> tuple[str, str]:
    envelope = make_event(
        payload,  # type: ignore[arg-type]
        producer="routing",
        actor=Actor(type="system", id="routing-timers"),
        case_id=uuid4(),
    )
    entry = consumed_entry(envelope, CASE, None)
    return entry.kind, describe(entry.kind, entry.summary, {"M-9001": "Dana Whitfield"})


def test_history_lines_for_the_clock_events() -> None:
    started = StatutoryClockStarted.model_validate(
        {**COMMON, "basis": "working", "started_at": DUE, "trigger": "conference.required"}
    )
    kind, line = _entry(started)
    assert kind == "statutory_clock_started"
    assert line.startswith("Statutory clock started: Insurer contacts the worker, due 2026-10-08")
    assert line.endswith("(WIM Act 1998 (NSW) s 45)")
    breached = StatutoryClockBreached.model_validate(
        {
            **COMMON,
            "escalated_to": Person(id="M-9001", name="Dana Whitfield", email="d@example.com"),
            "escalation_level": 1,
        }
    )
    assert _entry(breached)[1].endswith("escalated to Dana Whitfield")
    met = StatutoryClockMet.model_validate(
        {**COMMON, "met_at": DUE, "on_time": False, "met_by": "staff"}
    )
    assert _entry(met) == (
        "statutory_clock_met",
        "Statutory clock met (late): Insurer contacts the worker, recorded by staff",
    )
    assert describe(
        "statutory_clock_completion_requested", {"pack": "nsw", "clock": "insurer_contact"}, {}
    ) == ("Recorded statutory clock nsw/insurer_contact as done")
