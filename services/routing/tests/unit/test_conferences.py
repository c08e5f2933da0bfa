"""Case conference rules: participants, place, notice in working days, hold, summary, actions."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing.domain.conferences import (
    ConferenceRefused,
    ConsentRecord,
    Consents,
    action_due_at,
    awaiting_consent,
    changed_fields,
    check_hold,
    check_plan,
    conference_complete,
    earliest_conference_date,
    plan_actions,
    removed_participants,
    summary_due_at,
    working_day_after,
)
from services.routing.domain.policy import (
    DEFAULT_POLICY_FILE,
    CalendarSpec,
    ConferenceRules,
    PolicyError,
    StaffMember,
    load_policy,
    parse_policy,
)
from shared.events import (
    ConferenceActionRequest,
    ConferenceAttendance,
    ConferenceParticipant,
    ConferencePlan,
    DesiredOutcome,
)

OFFICE = {d: ("09:00-17:30",) for d in ("mon", "tue", "wed", "thu")} | {"fri": ("09:00-17:00",)}
SYDNEY_ZONE = ZoneInfo("Australia/Sydney")
# Sydney office: Christmas Day and Monday 28 December 2026 are holidays.
SYDNEY = CalendarSpec(
    time_zone="Australia/Sydney", hours=OFFICE, holidays=(date(2026, 12, 25), date(2026, 12, 28))
).to_calendar()
RULES = ConferenceRules()
NO_CONSENT = Consents({})
WORKER_CONSENTED = Consents({("practitioner_involvement", "worker"): True})


def sydney(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SYDNEY_ZONE)


def person(role: str, name: str, **extra: object) -> ConferenceParticipant:
    email = f"{name.lower().replace(' ', '.')}@example.com"
    return ConferenceParticipant(
        participant_id=uuid.uuid4(), role=role, name=name, email=email, **extra
    )


WORKER = person("worker", "Rae Kim", employee_id="E-500")
EMPLOYER = person("employer_representative", "Sam Ortiz")
MANAGER = person("case_manager", "Sofia Rossi")
DOCTOR = person("treating_doctor", "Dr Lee", organisation="City Clinic")
PEOPLE = [WORKER, EMPLOYER, MANAGER]


def plan(**changes: object) -> ConferencePlan:
    fields: dict[str, object] = {
        "purpose": "Return to work after the shoulder injury",
        "scheduled_for": sydney(2026, 12, 7, 10),
        "duration_minutes": 60,
        "time_zone": "Australia/Sydney",
        "mode": "in_person",
        "location": "Warehouse 3, 12 Dock Rd",
        "agenda": ["Suitable duties", "Treatment plan"],
        "desired_outcomes": [DesiredOutcome(topic="Future employment")],
    }
    fields.update(changes)
    return ConferencePlan.model_validate(fields)


def accept(p: ConferencePlan, people=PEOPLE, *, at=None, consents=NO_CONSENT, rules=RULES):
    return check_plan(
        p,
        people,
        rules,
        calendar=SYDNEY,
        requested_at=at or sydney(2026, 11, 30, 9),  # a Monday
        consents=consents,
    )


def refusal(*args: object, **kwargs: object) -> str:
    with pytest.raises(ConferenceRefused) as refused:
        accept(*args, **kwargs)  # type: ignore[arg-type]
    return str(refused.value)


# --- the policy --------------------------------------------------------------------------


def test_the_shipped_policy_has_the_conference_defaults_and_victoria_invites_rehabilitation():
    rules = load_policy().conferences
    assert rules.notice_working_days == 5 and rules.summary_within_working_days == 5
    assert rules.minimum_participants == 3
    assert rules.rules_for("nsw").must_invite == (
        "worker",
        "employer_representative",
        "case_manager",
    )
    assert "rehabilitation_provider" in rules.rules_for("vic").must_invite
    assert rules.rules_for(None) == rules.rules_for("nsw")
    assert rules.hold_early_minutes == 60


def test_the_policy_refuses_a_negative_hold_tolerance_naming_it():
    text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    bad = text.replace("  hold_early_minutes: 60", "  hold_early_minutes: -5")
    assert bad != text
    with pytest.raises(PolicyError, match=r"conferences\.hold_early_minutes"):
        parse_policy(bad, "p.yaml")


def test_the_policy_refuses_a_gated_worker_and_an_unknown_role_naming_the_line():
    text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    bad = text.replace(
        "  consent_gated_roles: [treating_doctor, psychologist]",
        "  consent_gated_roles: [worker, plumber]",
    )
    with pytest.raises(PolicyError) as error:
        parse_policy(bad, "p.yaml")
    line = next(i for i, t in enumerate(bad.splitlines(), 1) if "[worker, plumber]" in t)
    assert f"p.yaml:{line}: conferences.consent_gated_roles" in str(error.value)


def test_the_policy_refuses_an_escalation_level_beyond_the_ladders():
    text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    bad = text.replace("  action_escalation_level: 1", "  action_escalation_level: 9")
    with pytest.raises(PolicyError, match=r"conferences\.action_escalation_level"):
        parse_policy(bad, "p.yaml")


# --- working days ------------------------------------------------------------------------


def test_five_working_days_from_monday_is_the_next_monday_and_holidays_do_not_count():
    assert earliest_conference_date(SYDNEY, sydney(2026, 11, 30, 9), 5) == date(2026, 12, 7)
    # Planned Friday 18 Dec: Mon 21 .. Thu 24, (Fri 25, Mon 28 holidays), Tue 29.
    assert earliest_conference_date(SYDNEY, sydney(2026, 12, 18, 16), 5) == date(2026, 12, 29)
    # The team's zone decides the day: 22:00 UTC Sunday is already Monday in Sydney.
    assert earliest_conference_date(SYDNEY, datetime(2026, 11, 29, 22, tzinfo=UTC), 1) == date(
        2026, 12, 1
    )


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 1, 1)),
    count=st.integers(min_value=0, max_value=30),
)
def test_the_nth_working_day_after_has_exactly_n_working_days_up_to_it(start, count):
    day = start.date()
    found = working_day_after(SYDNEY, day, count)
    between = [day + timedelta(days=i) for i in range(1, (found - day).days + 1)]
    assert sum(1 for d in between if SYDNEY.day_intervals(d)) == count
    assert count == 0 or SYDNEY.day_intervals(found)


def test_summary_and_actions_are_due_at_the_end_of_a_working_day():
    # Held Thursday 10 Dec, 5 working days: Fri 11, Mon 14 .. Thu 17 -> Thursday 17:30.
    assert summary_due_at(SYDNEY, sydney(2026, 12, 10, 15), 5) == sydney(2026, 12, 17, 17, 30)
    assert action_due_at(SYDNEY, date(2026, 12, 11)) == sydney(2026, 12, 11, 17)  # a Friday
    # A day off: the midnight ending it.
    assert action_due_at(SYDNEY, date(2026, 12, 25)) == sydney(2026, 12, 26, 0, 0)


# --- planning ----------------------------------------------------------------------------


def test_a_valid_plan_is_accepted_at_the_workplace_by_default():
    accepted = accept(plan())
    assert accepted.venue == "workplace"


def test_a_date_inside_the_notice_period_is_refused_naming_the_earliest_date():
    reason = refusal(plan(scheduled_for=sydney(2026, 12, 4, 10)))
    assert "at least 5 working days" in reason and "2026-12-07" in reason


def test_a_plan_in_the_past_is_refused():
    assert "future" in refusal(plan(scheduled_for=sydney(2026, 11, 29)))


def test_participant_rules():
    assert "exactly one worker" in refusal(plan(), [EMPLOYER, MANAGER, DOCTOR])
    second = person("worker", "Ali Second")
    assert "exactly one worker" in refusal(plan(), [*PEOPLE, second])
    assert "case manager" in refusal(plan(), [WORKER, EMPLOYER, DOCTOR])
    vic = ConferenceRules(must_invite=("worker", "rehabilitation_provider"))
    assert "rehabilitation provider" in refusal(plan(), rules=vic)
    assert "at least 4 participants" in refusal(
        plan(), rules=ConferenceRules(minimum_participants=4)
    )
    twin = EMPLOYER.model_copy(update={"participant_id": uuid.uuid4(), "role": "support_person"})
    assert "own email address" in refusal(plan(), [*PEOPLE, twin])


def test_place_rules():
    assert "location" in refusal(plan(location=None))
    assert "venue_reason" in refusal(plan(venue="other_venue"))
    accept(plan(venue="other_venue", venue_reason="conflict with the supervisor"))
    assert "dial-in" in refusal(plan(mode="telephone", location=None))
    assert "https" in refusal(plan(mode="video", location=None))
    assert "https" in refusal(plan(mode="video", video_link="http://meet.example.com/x"))
    accept(plan(mode="video", location=None, video_link="https://meet.example.com/x"))
    assert "in-person" in refusal(plan(mode="video", venue="workplace", video_link="https://a.b/c"))


def test_a_conference_in_the_medical_consultation_needs_both_consents():
    medical = plan(venue="medical_consultation")
    reason = refusal(medical)
    assert "worker" in reason and "treating doctor" in reason
    only_worker = Consents({("medical_consultation", "worker"): True})
    assert "treating doctor" in refusal(medical, consents=only_worker)
    both = Consents(
        {
            ("medical_consultation", "worker"): True,
            ("medical_consultation", "treating_doctor"): True,
        }
    )
    accept(medical, consents=both)


def test_practitioners_await_the_workers_consent_and_a_withdrawal_holds_them_back_again():
    people = [*PEOPLE, DOCTOR]
    assert awaiting_consent(people, RULES, NO_CONSENT) == [DOCTOR.participant_id]
    assert awaiting_consent(people, RULES, WORKER_CONSENTED) == []
    first = datetime(2026, 12, 1, tzinfo=UTC)
    records = [
        ConsentRecord("practitioner_involvement", "worker", True, first),
        ConsentRecord("practitioner_involvement", "worker", False, first + timedelta(hours=1)),
    ]
    assert not Consents.from_records(records).practitioners_may_join
    # Delivered out of order: the later record still decides.
    assert not Consents.from_records(reversed(records)).practitioners_may_join


def test_a_change_names_the_fields_that_differ_and_who_was_removed():
    before = plan()
    after = plan(scheduled_for=sydney(2026, 12, 8, 10), location="Head office")
    assert changed_fields(before, PEOPLE, after, PEOPLE) == ["scheduled_for", "location"]
    fewer = [WORKER, MANAGER]
    assert changed_fields(before, PEOPLE, before, fewer) == ["participants"]
    assert removed_participants(PEOPLE, fewer) == [EMPLOYER]
    renamed = [WORKER, EMPLOYER.model_copy(update={"name": "Sam O."}), MANAGER]
    assert changed_fields(before, PEOPLE, before, renamed) == ["participants"]
    assert changed_fields(before, PEOPLE, before, list(PEOPLE)) == []


# --- hold, summary, actions --------------------------------------------------------------


def test_holding_needs_a_planned_conference_a_past_time_and_known_participants():
    planned_at, now = sydney(2026, 11, 30, 9), sydney(2026, 12, 7, 12)
    ok = [ConferenceAttendance(participant_id=WORKER.participant_id, attended=True)]
    eleven = sydney(2026, 12, 7, 11)

    def hold(status="planned", attendance=ok, held_at=eleven) -> None:
        check_hold(
            status,
            PEOPLE,
            attendance,
            held_at=held_at,
            requested_at=now,
            planned_at=planned_at,
            scheduled_for=eleven,
            time_zone="Australia/Sydney",
            early_minutes=60,
        )

    hold()
    with pytest.raises(ConferenceRefused, match="future"):
        hold(held_at=sydney(2026, 12, 7, 13))
    with pytest.raises(ConferenceRefused, match="cancelled"):
        hold(status="cancelled")
    stranger = [ConferenceAttendance(participant_id=uuid.uuid4(), attended=True)]
    with pytest.raises(ConferenceRefused, match="not a participant"):
        hold(attendance=stranger)


def test_a_conference_is_not_held_before_its_scheduled_time_beyond_the_tolerance():
    # Planned on 30 November for 10 December 09:00 Sydney: recording it as held on
    # 30 November would skip the notice rule and date the summary mail wrongly.
    planned_at, now = sydney(2026, 11, 30, 9), sydney(2026, 12, 11, 12)
    scheduled = sydney(2026, 12, 10, 9)
    ok = [ConferenceAttendance(participant_id=WORKER.participant_id, attended=True)]

    def hold(held_at: datetime, early_minutes: int = 60) -> None:
        check_hold(
            "planned",
            PEOPLE,
            ok,
            held_at=held_at,
            requested_at=now,
            planned_at=planned_at,
            scheduled_for=scheduled,
            time_zone="Australia/Sydney",
            early_minutes=early_minutes,
        )

    with pytest.raises(ConferenceRefused) as refused:
        hold(sydney(2026, 11, 30, 10))
    reason = str(refused.value)
    assert "2026-12-10 09:00 (Australia/Sydney)" in reason  # the plan's zone, not UTC
    assert "reschedule" in reason
    with pytest.raises(ConferenceRefused, match="scheduled time"):
        hold(scheduled - timedelta(minutes=61))
    hold(scheduled - timedelta(minutes=60))  # meetings start a little early
    hold(scheduled)
    hold(sydney(2026, 12, 10, 14))
    hold(sydney(2026, 12, 11, 11))  # recorded the next day
    with pytest.raises(ConferenceRefused, match="scheduled time"):
        hold(scheduled - timedelta(minutes=1), early_minutes=0)


STAFF = {"M-9001": StaffMember(id="M-9001", name="Dana Whitfield", email="dana@example.com")}


def actions(*requests: ConferenceActionRequest, now=None):
    return plan_actions(
        requests,
        PEOPLE,
        STAFF.get,
        calendar=SYDNEY,
        due_soon_share=0.75,
        now=now or sydney(2026, 12, 7, 13),  # a Monday
    )


def test_actions_take_their_owner_from_the_participants_or_the_staff():
    by_worker = ConferenceActionRequest(
        action_id=uuid.uuid4(),
        description="Book the physiotherapy",
        owner_participant_id=WORKER.participant_id,
        due_on=date(2026, 12, 9),
    )
    by_staff = ConferenceActionRequest(
        action_id=uuid.uuid4(),
        description="Send duties",
        owner_staff_id="M-9001",
        due_on=date(2026, 12, 8),
    )
    first, second = actions(by_worker, by_staff)
    assert (first.owner_name, str(first.owner_email)) == ("Rae Kim", "rae.kim@example.com")
    assert first.due_at == sydney(2026, 12, 9, 17, 30)
    # 3 of 4 working hours left on Monday (13:00-17:30 is 4.5h) plus Tuesday and Wednesday.
    assert (
        first.due_soon_at is not None and sydney(2026, 12, 7, 13) < first.due_soon_at < first.due_at
    )
    assert second.owner_name == "Dana Whitfield"


def test_an_action_with_an_unknown_owner_or_a_past_date_is_refused():
    base = {"action_id": uuid.uuid4(), "description": "x", "due_on": date(2026, 12, 9)}
    with pytest.raises(ConferenceRefused, match="not a participant"):
        actions(ConferenceActionRequest(**base, owner_participant_id=uuid.uuid4()))
    with pytest.raises(ConferenceRefused, match="not HR staff"):
        actions(ConferenceActionRequest(**base, owner_staff_id="X-1"))
    with pytest.raises(ConferenceRefused, match="exactly one owner"):
        actions(ConferenceActionRequest(**base))
    past = {**base, "due_on": date(2026, 12, 4)}
    with pytest.raises(ConferenceRefused, match="already ended"):
        actions(ConferenceActionRequest(**past, owner_staff_id="M-9001"))


def test_a_conference_is_complete_when_every_action_is_done_or_ended():
    assert conference_complete([])
    assert conference_complete(["done", "ended"])
    assert not conference_complete(["done", "replanned"])
    assert not conference_complete(["open"])


def test_a_jurisdictions_override_is_checked_like_the_general_rules():
    text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    bad = text.replace(
        "      must_invite: [worker, employer_representative, case_manager,"
        " rehabilitation_provider]",
        "      consent_gated_roles: [worker]",
    )
    assert bad != text
    with pytest.raises(PolicyError) as error:
        parse_policy(bad, "p.yaml")
    assert "conferences.by_jurisdiction.vic" in str(error.value)
    assert "cannot wait for their own consent" in str(error.value)


def test_a_call_records_whether_each_party_who_attended_stated_their_view():
    planned_at, now = sydney(2026, 11, 30, 9), sydney(2026, 12, 7, 12)
    eleven = sydney(2026, 12, 7, 11)

    def hold(mode: str, *attendance: ConferenceAttendance) -> None:
        check_hold(
            "planned",
            PEOPLE,
            attendance,
            held_at=eleven,
            requested_at=now,
            planned_at=planned_at,
            scheduled_for=eleven,
            time_zone="Australia/Sydney",
            early_minutes=60,
            mode=mode,
        )

    unrecorded = ConferenceAttendance(participant_id=WORKER.participant_id, attended=True)
    stated = ConferenceAttendance(
        participant_id=WORKER.participant_id, attended=True, view_stated=True
    )
    absent = ConferenceAttendance(participant_id=WORKER.participant_id, attended=False)
    hold("in_person", unrecorded)  # in the room, everyone saw who spoke
    for mode in ("telephone", "video"):
        with pytest.raises(ConferenceRefused, match="view_stated"):
            hold(mode, unrecorded)
        hold(mode, stated)
        hold(mode, absent)  # who was not there had no turn to record
