"""Process mails, decided without I/O: who gets which mail, one delivery record per
(event, recipient), the .ics of an interview or meeting, and no sensitive text anywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from icalendar import Calendar

from services.notifications.application.handlers import Notifier
from services.notifications.domain import notices as domain
from services.notifications.domain import process_notices as proc
from services.notifications.entrypoints.subscriptions import SUBSCRIPTIONS
from services.notifications.tests import process_factories as pf
from services.notifications.tests.factories import reference, staff
from shared.envelope import Envelope
from shared.events import EVENT_TYPES, payload_as

CONFIG = domain.MailConfig(
    portal_base_url="https://hr.example.org/", mail_from="HR Case Desk <hr-desk@hr.example.org>"
)
TEMPLATES = domain.load_templates()
NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
COMMON: dict[str, Any] = {"templates": TEMPLATES, "config": CONFIG}


def payload(envelope: Envelope) -> Any:
    return payload_as(envelope, EVENT_TYPES[envelope.event_type])


def everything(n: domain.Notification) -> str:
    raw = domain.build_email(n, mail_from=CONFIG.mail_from, date=NOW).as_string()
    return "\n".join([raw, n.subject, n.body, *(a.text for a in n.attachments)])


def assert_private(outcomes: list[domain.Outcome]) -> None:
    for n in outcomes:
        if isinstance(n, domain.Notification):
            text = everything(n)
            unfolded = text.replace("\r\n ", "").replace("\n ", "")
            for secret in pf.SECRETS:
                assert secret not in text and secret not in unfolded, (n.template, secret)


def test_every_process_event_is_consumed_and_handled() -> None:
    handled = set(
        Notifier(templates=TEMPLATES, config=CONFIG, mailer=None).handlers()  # type: ignore[arg-type]
    )
    process = {
        "case.process_role_assigned",
        "investigation.interview_scheduled",
        "case.outcome_approved",
        "case.appeal_window_closed",
        "case.stage_due_soon",
        "case.stage_overdue",
        "mediation.meeting_scheduled",
        "mediation.ground_rules_proposed",
        "agreement.drafted",
        "agreement.obligation_due_soon",
        "agreement.obligation_overdue",
        "case.follow_up_due",
    }
    assert process <= handled
    assert handled == set(SUBSCRIPTIONS.binding_keys)
    # Never the events that carry what was alleged, said, found or noted.
    for sensitive in (
        "investigation.allegation_recorded",
        "investigation.statement_recorded",
        "investigation.finding_recorded",
        "case.outcome_decided",
        "case.appeal_lodged",
        "case.appeal_decided",
        "mediation.assessment_recorded",
        "mediation.meeting_held",
    ):
        assert sensitive not in handled


def test_role_holder_hears_the_role_never_the_reason() -> None:
    case_id, ref = uuid4(), reference()
    hearer = staff("Ari Hearer")
    e = pf.role_assigned(case_id=case_id, ref=ref, person=hearer, role="appeal_hearer")
    [mail] = proc.for_process_role_assigned(e, payload(e), **COMMON)
    assert isinstance(mail, domain.Notification)
    assert (mail.recipient_id, mail.recipient_email) == (hearer.id, str(hearer.email))
    assert mail.subject == f"[{ref}] You are the appeal hearer on this case"
    assert f"https://hr.example.org/portal/cases/{case_id}\n" in mail.body
    assert_private([mail])


def test_interview_invitation_goes_to_the_address_on_file_with_its_ics() -> None:
    case_id, ref, interview_id = uuid4(), reference(), uuid4()
    person = pf.interviewee("complainant", "Cara Complainant", employee_id="E-1001")
    e = pf.interview_scheduled(
        case_id=case_id, ref=ref, interviewee=person, interview_id=interview_id
    )
    [mail] = proc.for_interview_scheduled(
        e, payload(e), address_on_file="cara@corp.example.org", now=NOW, **COMMON
    )
    assert isinstance(mail, domain.Notification)
    assert (mail.recipient_id, mail.recipient_email) == ("E-1001", "cara@corp.example.org")
    assert mail.audience == "interviewee"
    [ics] = mail.attachments
    assert ics.params == (("method", "REQUEST"),)
    event = Calendar.from_ical(ics.text).walk("VEVENT")[0]
    assert str(event["UID"]) == f"interview-{interview_id}@hrcase"
    assert str(event["ATTENDEE"]) == "mailto:cara@corp.example.org"
    assert "companion" in mail.body
    # Not allowed by the policy: not offered.
    e2 = pf.interview_scheduled(
        case_id=case_id, ref=ref, interviewee=person, companion_allowed=False
    )
    [mail2] = proc.for_interview_scheduled(e2, payload(e2), address_on_file=None, now=NOW, **COMMON)
    assert isinstance(mail2, domain.Notification)
    assert "companion" not in mail2.body and "companion" not in mail2.attachments[0].text
    assert mail2.recipient_email == str(person.email)


def test_an_unsafe_video_link_is_never_mailed() -> None:
    person = pf.interviewee("witness", "Wendy Witness")
    e = pf.interview_scheduled(
        case_id=uuid4(),
        ref=reference(),
        interviewee=person,
        location=None,
        video_link="javascript:alert(1)",
    )
    [mail] = proc.for_interview_scheduled(e, payload(e), address_on_file=None, now=NOW, **COMMON)
    assert isinstance(mail, domain.Notification)
    assert "javascript" not in everything(mail)


def test_outcome_to_complainant_and_each_respondent_apart_and_anonymous_is_nobody() -> None:
    case_id, ref = uuid4(), reference()
    first, second = pf.employee("Rory Respondent"), pf.employee("Sid Second")
    e = pf.outcome_approved(case_id=case_id, ref=ref, respondents=[first, second, first])
    complainant = domain.ReporterContact("E-1001", "maria@corp.example.org", "restricted")
    mails = proc.for_outcome_approved(
        e,
        payload(e),
        complainant=complainant,
        complainant_name="Maria",
        respondents_on_file={second.id: "sid@corp.example.org"},
        **COMMON,
    )
    assert [
        (m.audience, m.recipient_email) for m in mails if isinstance(m, domain.Notification)
    ] == [
        ("complainant", "maria@corp.example.org"),
        (f"respondent:{first.id}", str(first.email)),
        (f"respondent:{second.id}", "sid@corp.example.org"),
    ]
    assert len({m.notification_id for m in mails}) == 3
    assert_private(mails)
    anonymous = proc.for_outcome_approved(
        e, payload(e), complainant=None, complainant_name=None, respondents_on_file={}, **COMMON
    )
    assert [m.audience for m in anonymous] == [f"respondent:{first.id}", f"respondent:{second.id}"]


def test_stage_clock_without_a_known_owner_is_a_recorded_failure() -> None:
    case_id, ref = uuid4(), reference()
    lead = staff("Lee Lead")
    e = pf.stage_clock(case_id=case_id, ref=ref, owner=None, overdue=True, escalated_to=lead)
    owner_mail, escalated = proc.for_stage_clock(
        e, payload(e), owner_id="A-1", owner=None, **COMMON
    )
    assert isinstance(owner_mail, domain.Undeliverable)
    assert (owner_mail.recipient_id, owner_mail.reason) == ("A-1", domain.NO_CONTACT)
    assert isinstance(escalated, domain.Notification)
    assert escalated.recipient_email == str(lead.email)
    assert escalated.template == "stage_escalated"


def test_meeting_one_mail_and_one_attendee_each() -> None:
    case_id, ref, meeting_id = uuid4(), reference(), uuid4()
    a, b = pf.party("employee", "Eve Employee"), pf.party("employer_representative", "Rob Rep")
    manager = staff("Grace Okafor")
    e = pf.meeting_scheduled(
        case_id=case_id, ref=ref, parties=[a, b], case_manager=manager, meeting_id=meeting_id
    )
    mails = proc.for_meeting_scheduled(e, payload(e), on_file={}, now=NOW, **COMMON)
    assert [m.template for m in mails] == [
        "mediation_meeting_party",
        "mediation_meeting_party",
        "mediation_meeting_case_manager",
    ]
    for mail in mails:
        assert isinstance(mail, domain.Notification)
        event = Calendar.from_ical(mail.attachments[0].text).walk("VEVENT")[0]
        assert str(event["ATTENDEE"]) == f"mailto:{mail.recipient_email}"
        assert str(event["UID"]) == f"meeting-{meeting_id}@hrcase"
        others = {str(a.email), str(b.email), str(manager.email)} - {mail.recipient_email}
        for other in others:
            assert other not in everything(mail)
    assert isinstance(mails[2], domain.Notification)
    assert mails[2].body.count(f"/portal/cases/{case_id}/mediation\n") == 1
    assert_private(mails)


def test_ground_rules_and_agreement_never_carry_their_text() -> None:
    case_id, ref = uuid4(), reference()
    parties = [pf.party("employee", "Eve"), pf.party("employer_representative", "Rob")]
    rules = pf.ground_rules_proposed(case_id=case_id, ref=ref, parties=parties)
    drafted = pf.agreement_drafted(case_id=case_id, ref=ref, parties=parties, version=3)
    mails = [
        *proc.for_ground_rules_proposed(rules, payload(rules), on_file={}, **COMMON),
        *proc.for_agreement_drafted(drafted, payload(drafted), on_file={}, **COMMON),
    ]
    assert len(mails) == 4
    assert_private(mails)
    assert all("version 3" in m.subject for m in mails[2:] if isinstance(m, domain.Notification))


def test_obligation_and_follow_up_without_a_named_person_are_recorded_failures() -> None:
    case_id, ref = uuid4(), reference()
    lead = staff("Lee Lead")
    e = pf.obligation_event(
        case_id=case_id, ref=ref, owner=None, case_manager=None, overdue=True, escalated_to=lead
    )
    owner, manager, escalated = proc.for_obligation_event(
        e, payload(e), owner_on_file=None, **COMMON
    )
    assert isinstance(owner, domain.Undeliverable) and owner.audience == "obligation_owner"
    assert isinstance(manager, domain.Undeliverable) and manager.audience == "case_manager"
    assert isinstance(escalated, domain.Notification)
    f = pf.follow_up_due(case_id=case_id, ref=ref, case_manager=None)
    [nobody] = proc.for_follow_up_due(f, payload(f), **COMMON)
    assert isinstance(nobody, domain.Undeliverable) and nobody.template == "follow_up_due"


def test_sequence_grows_with_the_event_time() -> None:
    person = pf.interviewee("witness", "Wendy Witness")
    e = pf.interview_scheduled(case_id=uuid4(), ref=reference(), interviewee=person)
    later = e.model_copy(update={"occurred_at": e.occurred_at + timedelta(seconds=1)})
    assert proc.sequence_of(later) == proc.sequence_of(e) + 1
    assert 0 < proc.sequence_of(e) < 2**31
