"""Conference mails, decided and rendered without I/O: who gets what, in which order, the
calendar invitation read back with icalendar, the signed links, and nothing private."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from services.notifications.application.handlers import Notifier
from services.notifications.domain import conference_notices as conf
from services.notifications.domain import notices as domain
from services.notifications.entrypoints.subscriptions import SUBSCRIPTIONS
from services.notifications.tests import conference_factories as cf
from services.notifications.tests.factories import reference, staff
from shared.envelope import Envelope
from shared.events import (
    ConferenceActionDueSoon,
    ConferenceActionOverdue,
    ConferenceCancelled,
    ConferenceParticipantInvited,
    ConferencePlanned,
    ConferenceRescheduled,
    ConferenceSummaryRecorded,
    payload_as,
)
from shared.participant_links import PATH_PREFIX, verify_participant_link

SECRET = "unit-test-link-key"
CONFIG = domain.MailConfig(
    portal_base_url="https://hr.example.org", mail_from="HR Case Desk <hr-desk@hr.example.org>"
)
TEMPLATES = domain.load_templates()
LINKS = conf.ConferenceLinks(secret=SECRET, valid_days=30)
NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
COMMON: dict[str, Any] = {"templates": TEMPLATES, "config": CONFIG, "links": LINKS, "now": NOW}
SECRETS = (
    cf.SECRET_PROPOSAL,
    cf.SECRET_AGREED,
    cf.SECRET_ACTION,
    cf.SECRET_OBJECTION,
    cf.SECRET_REASON,
)


def _raw(n: domain.Notification) -> str:
    message = domain.build_email(n, mail_from=CONFIG.mail_from, date=NOW)
    parts = [n.subject, n.body, message.as_string()]
    parts.extend(str(p.get_content()) for p in message.iter_attachments())
    return "\n".join(parts)


def _calendar(n: domain.Notification) -> Calendar:
    [attachment] = n.attachments
    assert attachment.subtype == "calendar"
    return Calendar.from_ical(attachment.text)


def _event(calendar: Calendar) -> Any:
    [event] = calendar.walk("VEVENT")
    return event


def _people() -> dict[str, Any]:
    return {
        "worker": cf.participant("worker", "Wanda Worker"),
        "manager": cf.participant("case_manager", "Casey Manager"),
        "union": cf.participant("union_representative", "Uma Union"),
        "doctor": cf.participant("treating_doctor", "Dr Dana Doctor"),
    }


def _planned(people: dict[str, Any], **kwargs: Any) -> tuple[Envelope, ConferencePlanned]:
    envelope = cf.planned(
        case_id=uuid4(),
        ref=reference(),
        conference_id=uuid4(),
        participants=list(people.values()),
        awaiting_consent=[people["doctor"].participant_id],
        **kwargs,
    )
    return envelope, payload_as(envelope, ConferencePlanned)


def test_the_worker_hears_first_and_the_practitioner_awaiting_consent_not_at_all() -> None:
    people = _people()
    envelope, payload = _planned(people)
    mails = conf.for_conference_planned(envelope, payload, **COMMON)
    assert [(m.kind, m.participant.role) for m in mails] == [
        ("notice", "worker"),
        ("agenda", "worker"),
        ("agenda", "case_manager"),
        ("agenda", "union_representative"),
    ]
    notice = mails[0].notification
    assert notice.template == "conference_notice" and not notice.attachments
    assert "Plan the return to work after the workplace injury" in notice.body
    # Two mails to the worker from one event: two delivery records, two Message-IDs.
    assert len({m.notification.notification_id for m in mails}) == len(mails)
    for mail in mails:
        assert mail.notification.recipient_id == str(mail.participant.participant_id)
        assert mail.notification.recipient_email == str(mail.participant.email)
        for secret in SECRETS:
            assert secret not in _raw(mail.notification)


def test_the_agenda_carries_a_request_invitation_in_the_plans_zone() -> None:
    people = _people()
    envelope, payload = _planned(people)
    mails = conf.for_conference_planned(envelope, payload, **COMMON)
    union = next(m for m in mails if m.participant == people["union"])
    calendar = _calendar(union.notification)
    assert str(calendar["METHOD"]) == "REQUEST" and str(calendar["VERSION"]) == "2.0"
    assert str(calendar["PRODID"]) == conf.PRODID
    [tz] = calendar.walk("VTIMEZONE")
    assert str(tz["TZID"]) == "Australia/Sydney"
    event = _event(calendar)
    assert str(event["UID"]) == f"{payload.conference_id}@hrcase" == union.ics_uid
    assert int(event["SEQUENCE"]) == 0 == union.sequence
    assert event.decoded("DTSTART") == cf.START.astimezone(ZoneInfo("Australia/Sydney"))
    assert event.decoded("DTSTART").utcoffset() == timedelta(hours=11)
    assert event.decoded("DTSTAMP") == NOW
    assert str(event["SUMMARY"]) == f"Case conference {payload.reference}"
    assert str(event["STATUS"]) == "CONFIRMED"
    organizer = event["ORGANIZER"]
    assert str(organizer) == "mailto:hr-desk@hr.example.org"
    assert str(organizer.params["CN"]) == "HR Case Desk"
    roles = {
        str(a).removeprefix("mailto:"): (str(a.params["ROLE"]), str(a.params["CN"]))
        for a in event["ATTENDEE"]
    }
    assert roles == {
        str(people["worker"].email): ("REQ-PARTICIPANT", "Wanda Worker"),
        str(people["manager"].email): ("CHAIR", "Casey Manager"),
        str(people["union"].email): ("OPT-PARTICIPANT", "Uma Union"),
    }
    # The participant's own link, in the body and in the invitation's description.
    token = union.notification.body.split(PATH_PREFIX, 1)[1].split()[0]
    grant = verify_participant_link(SECRET, token)
    assert grant.participant_id == people["union"].participant_id
    assert grant.conference_id == payload.conference_id and grant.case_id == envelope.case_id
    assert grant.expires_at == NOW + timedelta(days=30) == union.link_expires_at
    assert token in str(event["DESCRIPTION"])


def test_a_plan_in_utc_or_an_unknown_zone_is_sent_in_utc_without_vtimezone() -> None:
    people = _people()
    for zone_name in ("UTC", "Mars/Olympus_Mons"):
        envelope, payload = _planned(people)
        payload = payload.model_copy(
            update={"plan": payload.plan.model_copy(update={"time_zone": zone_name})}
        )
        [_, agenda, *_] = conf.for_conference_planned(envelope, payload, **COMMON)
        calendar = _calendar(agenda.notification)
        assert calendar.walk("VTIMEZONE") == []
        event = _event(calendar)
        assert event.decoded("DTSTART") == cf.START
        assert "Tue 08 Dec 2026, 23:00 UTC (UTC)" in agenda.notification.body


def test_a_video_link_is_mailed_only_when_it_is_a_plain_https_url() -> None:
    people = _people()
    for link, mailed in (
        ("https://meet.example.org/room/42", True),
        ("javascript:alert(1)", False),
        ("https://meet.example.org/a b", False),
    ):
        envelope, payload = _planned(people)
        plan = payload.plan.model_copy(update={"mode": "video", "video_link": link})
        payload = payload.model_copy(update={"plan": plan})
        agenda = conf.for_conference_planned(envelope, payload, **COMMON)[1]
        event = _event(_calendar(agenda.notification))
        assert (link in agenda.notification.body) is mailed
        assert (str(event.get("URL", "")) == link) is mailed


def test_the_invited_practitioner_gets_the_same_uid_and_nobody_else_is_written_to() -> None:
    people = _people()
    planned, payload = _planned(people)
    envelope = cf.participant_invited(
        case_id=planned.case_id,  # type: ignore[arg-type]
        ref=payload.reference,
        conference_id=payload.conference_id,
        participants=list(people.values()),
        invited_id=people["doctor"].participant_id,
    )
    invited = payload_as(envelope, ConferenceParticipantInvited)
    [mail] = conf.for_participant_invited(envelope, invited, **COMMON)
    assert mail.participant == people["doctor"] and mail.method == "REQUEST"
    assert mail.ics_uid == f"{payload.conference_id}@hrcase"
    stranger = invited.model_copy(update={"participant_id": uuid4()})
    assert conf.for_participant_invited(envelope, stranger, **COMMON) == []
    still_waiting = invited.model_copy(update={"awaiting_consent": [invited.participant_id]})
    assert conf.for_participant_invited(envelope, still_waiting, **COMMON) == []


def test_a_change_goes_to_everyone_invited_and_a_cancellation_to_whoever_was_removed() -> None:
    people = _people()
    planned, payload = _planned(people)
    kept = [people["worker"], people["manager"], people["doctor"]]
    envelope = cf.rescheduled(
        case_id=planned.case_id,  # type: ignore[arg-type]
        ref=payload.reference,
        conference_id=payload.conference_id,
        participants=kept,
        removed=[people["union"]],
        start=cf.START + timedelta(days=1),
        sequence=3,
    )
    rescheduled = payload_as(envelope, ConferenceRescheduled)
    rescheduled = rescheduled.model_copy(
        update={"changed": ["scheduled_for", "participants", "secret_field<script>"]}
    )
    mails = conf.for_conference_rescheduled(envelope, rescheduled, **COMMON)
    assert [(m.participant.role, m.method) for m in mails] == [
        ("worker", "REQUEST"),
        ("case_manager", "REQUEST"),
        ("treating_doctor", "REQUEST"),
        ("union_representative", "CANCEL"),
    ]
    update = mails[0].notification
    assert "has changed (date and time, participants)" in update.body
    assert "secret_field" not in update.body
    assert cf.SECRET_REASON not in _raw(update)
    event = _event(_calendar(update))
    assert int(event["SEQUENCE"]) == 3
    removal = mails[-1]
    calendar = _calendar(removal.notification)
    assert str(calendar["METHOD"]) == "CANCEL"
    event = _event(calendar)
    assert str(event["STATUS"]) == "CANCELLED" and int(event["SEQUENCE"]) == 3
    assert [str(a) for a in [event["ATTENDEE"]]] == [f"mailto:{people['union'].email}"]
    assert PATH_PREFIX not in removal.notification.body  # no link for someone taken off
    assert removal.notification.attachments[0].params == (("method", "CANCEL"),)


def test_a_cancellation_goes_to_everyone_invited_without_its_reason() -> None:
    people = _people()
    planned, payload = _planned(people)
    envelope = cf.cancelled(
        case_id=planned.case_id,  # type: ignore[arg-type]
        ref=payload.reference,
        conference_id=payload.conference_id,
        participants=list(people.values()),
        start=cf.START,
        sequence=1,
    )
    cancelled = payload_as(envelope, ConferenceCancelled).model_copy(
        update={"awaiting_consent": [people["doctor"].participant_id]}
    )
    mails = conf.for_conference_cancelled(envelope, cancelled, **COMMON)
    assert {m.participant.role for m in mails} == {"worker", "case_manager", "union_representative"}
    for mail in mails:
        assert mail.method == "CANCEL" and mail.notification.template == "conference_cancelled"
        assert cf.SECRET_REASON not in _raw(mail.notification)


def test_the_summary_mail_is_only_a_link() -> None:
    people = _people()
    planned, payload = _planned(people)
    agreed = cf.action(people["union"], due=NOW + timedelta(days=5))
    envelope = cf.summary_recorded(
        case_id=planned.case_id,  # type: ignore[arg-type]
        ref=payload.reference,
        conference_id=payload.conference_id,
        participants=list(people.values()),
        actions=[agreed],
    )
    summary = payload_as(envelope, ConferenceSummaryRecorded)
    mails = conf.for_summary_recorded(envelope, summary, **COMMON)
    assert len(mails) == 4  # nobody awaits consent any more
    for mail in mails:
        assert mail.kind == "summary" and not mail.notification.attachments
        raw = _raw(mail.notification)
        for secret in SECRETS:
            assert secret not in raw
        token = mail.notification.body.split(PATH_PREFIX, 1)[1].split()[0]
        assert verify_participant_link(SECRET, token).participant_id == (
            mail.participant.participant_id
        )
    [facts] = conf.action_facts(summary)
    assert facts.owner_participant_id == people["union"].participant_id
    assert facts.conference_at == cf.START


def _action_event(overdue: bool, **kwargs: Any) -> tuple[Envelope, Any]:
    people = _people()
    agreed = cf.action(people["union"], due=NOW + timedelta(days=1))
    envelope = cf.action_event(
        case_id=uuid4(),
        ref=reference(),
        conference_id=uuid4(),
        agreed=agreed,
        overdue=overdue,
        **kwargs,
    )
    kind = ConferenceActionOverdue if overdue else ConferenceActionDueSoon
    return envelope, payload_as(envelope, kind)


def test_an_overdue_action_tells_its_owner_the_case_owner_and_the_escalation_target() -> None:
    owner, target = staff("Olga Owner"), staff("Morgan Manager")
    envelope, payload = _action_event(True, owner_id=owner.id, escalated_to=target)
    facts = conf.ActionFacts(
        action_id=payload.action_id,
        conference_id=payload.conference_id,
        owner_participant_id=uuid4(),
        conference_at=cf.START,
        time_zone=cf.ZONE,
    )
    outcomes = conf.for_action_event(
        envelope,
        payload,
        action=facts,
        case_owner_id=owner.id,
        case_owner=domain.Contact(owner.id, str(owner.email)),
        **COMMON,
    )
    assert [o.template for o in outcomes] == [
        "conference_action_owner",
        "conference_action_case_owner",
        "conference_action_escalated",
    ]
    assert all(isinstance(o, domain.Notification) for o in outcomes)
    mails = [o for o in outcomes if isinstance(o, domain.Notification)]
    assert [m.recipient_email for m in mails] == [
        str(payload.owner_email),
        str(owner.email),
        str(target.email),
    ]
    assert "conference of 09 Dec 2026" in " ".join(mails[0].body.split())
    assert PATH_PREFIX in mails[0].body
    for mail in mails:
        assert cf.SECRET_ACTION not in _raw(mail)
        assert "overdue" in mail.subject.lower()


def test_an_action_owner_unknown_as_participant_gets_a_plain_notice() -> None:
    envelope, payload = _action_event(False, owner_id="S-1")
    outcomes = conf.for_action_event(
        envelope, payload, action=None, case_owner_id="S-1", case_owner=None, **COMMON
    )
    owner_mail, case_owner = outcomes
    assert isinstance(owner_mail, domain.Notification)
    assert PATH_PREFIX not in owner_mail.body and "https://" not in owner_mail.body
    assert "at a case conference" in " ".join(owner_mail.body.split())
    # No contact for the case owner: a failed delivery on record, never a silent drop.
    assert isinstance(case_owner, domain.Undeliverable)
    assert case_owner.reason == domain.NO_CONTACT and case_owner.recipient_id == "S-1"


def test_a_case_owner_who_owns_the_action_gets_one_mail() -> None:
    envelope, payload = _action_event(False, owner_id="S-2")
    contact = domain.Contact("S-2", str(payload.owner_email).upper())
    outcomes = conf.for_action_event(
        envelope, payload, action=None, case_owner_id="S-2", case_owner=contact, **COMMON
    )
    assert [o.template for o in outcomes] == ["conference_action_case_owner"]


@pytest.mark.parametrize("days", [1, 30, 90])
def test_links_expire_after_the_configured_days(days: int) -> None:
    links = conf.ConferenceLinks(secret=SECRET, valid_days=days)
    url, expires_at = links.mint(
        CONFIG, case_id=uuid4(), conference_id=uuid4(), participant_id=uuid4(), now=NOW
    )
    assert url.startswith("https://hr.example.org" + PATH_PREFIX)
    assert expires_at == NOW + timedelta(days=days)


def test_notifications_handles_exactly_the_conference_events_it_subscribes_to() -> None:
    handled = set(
        Notifier(templates=TEMPLATES, config=CONFIG, mailer=None).handlers()  # type: ignore[arg-type]
    )
    assert {
        "conference.planned",
        "conference.participant_invited",
        "conference.rescheduled",
        "conference.cancelled",
        "conference.summary_recorded",
        "conference.action_due_soon",
        "conference.action_overdue",
    } <= handled
    assert handled == set(SUBSCRIPTIONS.binding_keys)
