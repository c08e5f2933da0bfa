"""Who may raise and read what, the anonymous key, and phone-call input: pure rules."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.intake.domain import anonymous_keys
from services.intake.domain.case import (
    CaseFacts,
    PhoneCall,
    case_access,
    idempotency_scope,
    may_submit_for,
    submitter_actor,
)
from shared.auth import Principal, Role
from shared.events import Reporter


def person(subject: str, *roles: Role, employee_id: str | None = None) -> Principal:
    return Principal(subject=subject, roles=frozenset(roles), employee_id=employee_id)


SAM = person("u-sam", "employee", employee_id="E-1")
ALEX = person("u-alex", "employee", employee_id="E-2")
AGENT = person("A-1001", "hr_agent", employee_id="A-1001")
INVESTIGATOR = person("A-3001", "investigator")
MANAGER = person("M-9002", "hr_manager")
AUDITOR = person("au-1", "auditor")


def case(**overrides: object) -> CaseFacts:
    facts = {
        "reporter_employee_id": "E-1",
        "anonymous": False,
        "sensitivity": "normal",
        "owner_id": None,
        "logged_by": None,
        "submitted_by": "u-sam",
    }
    return CaseFacts.model_validate({**facts, **overrides})


def test_employees_read_only_their_own_cases():
    assert case_access(SAM, case()).allowed
    assert not case_access(ALEX, case()).allowed
    assert not case_access(AUDITOR, case()).allowed
    # An anonymous case is nobody's, even if its text happens to name an employee id.
    assert not case_access(SAM, case(anonymous=True, reporter_employee_id=None)).allowed


def test_staff_read_normal_cases_without_an_audit_record():
    for staff in (AGENT, INVESTIGATOR, MANAGER):
        access = case_access(staff, case(sensitivity="normal"))
        assert access.allowed and not access.audited


def test_every_staff_read_of_a_confidential_case_is_audited():
    for staff in (AGENT, INVESTIGATOR, MANAGER):
        access = case_access(staff, case(sensitivity="confidential"))
        assert access.allowed and access.audited
    # The reporter reading their own confidential case is not a staff access.
    mine = case_access(SAM, case(sensitivity="confidential"))
    assert mine.allowed and not mine.audited


@pytest.mark.parametrize("sensitivity", ["restricted", None])
def test_restricted_and_unrouted_cases_are_for_managers_and_the_assigned(sensitivity):
    restricted = case(sensitivity=sensitivity)
    assert not case_access(AGENT, restricted).allowed
    # Investigators read only the restricted cases assigned to them.
    assert not case_access(INVESTIGATOR, restricted).allowed
    assert not case_access(INVESTIGATOR, case(sensitivity=sensitivity, owner_id="A-3003")).allowed
    assigned = case_access(INVESTIGATOR, case(sensitivity=sensitivity, owner_id="A-3001"))
    assert assigned.allowed and assigned.audited
    access = case_access(MANAGER, restricted)
    assert access.allowed and access.audited
    owned = case_access(AGENT, case(sensitivity=sensitivity, owner_id="A-1001"))
    assert owned.allowed and owned.audited
    logged = case_access(AGENT, case(sensitivity=sensitivity, logged_by="A-1001"))
    assert logged.allowed and logged.audited
    # The reporter reading their own restricted case is not a staff access.
    mine = case_access(SAM, restricted)
    assert mine.allowed and not mine.audited


def test_employees_raise_cases_only_for_themselves():
    sam = Reporter(employee_id="E-1", name="Sam", email="sam@example.com")
    alex = Reporter(employee_id="E-2", name="Alex", email="alex@example.com")
    assert may_submit_for(SAM, sam) is None
    assert "only raise cases for themselves" in (may_submit_for(SAM, alex) or "")
    assert may_submit_for(AGENT, alex) is None and may_submit_for(MANAGER, alex) is None
    assert may_submit_for(AUDITOR, sam) is not None
    assert may_submit_for(person("u-x", "employee"), sam) == "the token carries no employee_id"
    assert submitter_actor(SAM).model_dump() == {"type": "employee", "id": "E-1"}
    assert submitter_actor(AGENT).model_dump() == {"type": "agent", "id": "A-1001"}


def test_idempotency_keys_are_scoped_to_the_caller():
    assert idempotency_scope(SAM, "k") != idempotency_scope(ALEX, "k")
    assert idempotency_scope(SAM, "k") == idempotency_scope(SAM, "k")


def test_anonymous_keys_verify_only_themselves_and_are_never_stored():
    key = anonymous_keys.new_key()
    assert len(key) == 39 and key.count("-") == 7
    stored = anonymous_keys.hash_key(key)
    assert stored.startswith("scrypt$") and key not in stored
    assert anonymous_keys.verify(key, stored)
    assert anonymous_keys.verify(key.lower().replace("-", " "), stored)
    assert not anonymous_keys.verify(anonymous_keys.new_key(), stored)
    assert not anonymous_keys.verify(key, "garbage")
    assert not anonymous_keys.verify_or_dummy(key, None)
    assert anonymous_keys.hash_key(key) != stored  # salted


CALL = {
    "caller": {"details": "agency worker"},
    "called_at": datetime.now(UTC) - timedelta(minutes=5),
    "duration_seconds": 120,
    "summary": "Broken ladder in the loading bay.\nNobody fixed it.",
}


def test_a_phone_call_needs_a_caller_and_a_past_time():
    call = PhoneCall.model_validate(CALL)
    assert call.caller.reporter() is None
    assert call.case_subject() == "Phone call: Broken ladder in the loading bay."
    with pytest.raises(ValidationError, match="employee_id, name and email"):
        PhoneCall.model_validate({**CALL, "caller": {"employee_id": "E-1"}})
    with pytest.raises(ValidationError, match="or details"):
        PhoneCall.model_validate({**CALL, "caller": {}})
    with pytest.raises(ValidationError, match="future"):
        PhoneCall.model_validate({**CALL, "called_at": datetime.now(UTC) + timedelta(hours=1)})
    with pytest.raises(ValidationError):
        PhoneCall.model_validate({**CALL, "callback_number": "call me maybe"})
    identified = PhoneCall.model_validate(
        {**CALL, "caller": {"employee_id": "E-1", "name": "Sam", "email": "sam@example.com"}}
    )
    assert identified.caller.reporter() == Reporter(
        employee_id="E-1", name="Sam", email="sam@example.com"
    )


@pytest.mark.parametrize("sensitivity", ["restricted", None])
def test_a_process_role_holder_reads_the_restricted_case_they_work(sensitivity):
    # A restricted harassment case owned by someone else: the investigator reads it only
    # once routing has made them its investigator, and every such read is audited.
    harassment = case(sensitivity=sensitivity, owner_id="A-1001")
    assert not case_access(INVESTIGATOR, harassment).allowed
    holding = case(sensitivity=sensitivity, owner_id="A-1001", process_role_holders=["A-3001"])
    access = case_access(INVESTIGATOR, holding)
    assert access.allowed and access.audited
    # Someone else's role gives them nothing; an employee id counts as "me" too.
    other = case(sensitivity=sensitivity, process_role_holders=["A-3003"])
    assert not case_access(INVESTIGATOR, other).allowed
    by_employee_id = person("u-tok", "hr_agent", employee_id="A-2001")
    assert case_access(
        by_employee_id, case(sensitivity=sensitivity, process_role_holders=["A-2001"])
    ).allowed
    # A role on the case never lets an employee (not staff) in.
    employee = person("u-x", "employee", employee_id="A-3001")
    assert not case_access(employee, holding).allowed
