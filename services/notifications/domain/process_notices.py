"""Who hears about a case's process (investigation, independent case management, written
agreement), the email they get and, for an interview or a facilitated meeting, its
calendar invitation. Pure: no I/O (addresses on file, the case owner's contact and the
clock come in as arguments).

Mails, by event:
- case.process_role_assigned: the person now holding the role (investigator, case manager,
  appeal hearer), with the case page link.
- investigation.interview_scheduled: the interviewee only, with the date, time (in the
  interview's time zone, named), place or video link, duration, the right to bring a
  companion when the policy allows one, a METHOD:REQUEST .ics (UID per interview) and the
  link to their own investigation page.
- case.outcome_approved: the complainant (the case's reporter at the address on file; an
  anonymous report: nobody) and each respondent, each in a mail of their own: the outcome
  is available in the portal and an appeal may be lodged until the window's end (UTC).
- case.appeal_window_closed: the case owner.
- case.stage_due_soon: the case owner; case.stage_overdue: the owner and the escalation
  target routing named.
- mediation.meeting_scheduled: each party (their own mediation page) and the case manager
  (the staff mediation page), each with a METHOD:REQUEST .ics (UID per meeting) listing
  only its own recipient as attendee.
- mediation.ground_rules_proposed, agreement.drafted: each party, separately.
- agreement.obligation_due_soon: the party who owes it and the case manager;
  agreement.obligation_overdue: both and the escalation target.
- case.follow_up_due: the case manager.

Privacy: a mail carries the case reference, the recipient's name, dates and times, the
place or video link of a meeting, a stage's policy label, a version or check-in number
and the portal link where the signed-in recipient reads the rest. Never an allegation, a
statement, evidence, a finding, reasoning, the outcome's summary or actions, an appeal's
grounds, an account, desired outcomes, ground rules, a summary of what was discussed,
privileged notes, an agreement's terms, or who the other party is. Nobody is copied on
another's mail, and no calendar invitation names another recipient.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Final
from uuid import UUID

from icalendar import Calendar, Event, vCalAddress, vText

from services.notifications.domain.conference_notices import (
    _https,
    _line,
    format_local,
    zone,
)
from services.notifications.domain.notices import (
    AUDIENCE_ESCALATION,
    AUDIENCE_OWNER,
    NO_CONTACT,
    Attachment,
    Contact,
    MailConfig,
    Notification,
    Outcome,
    ReporterContact,
    Templates,
    Undeliverable,
    _case_id,
    _notification,
    _reference,
    _to_staff,
    format_due,
    message_id,
    policy_text,
)
from shared.envelope import Envelope
from shared.events import (
    AgreementDrafted,
    AgreementObligationDueSoon,
    AgreementObligationOverdue,
    CaseAppealWindowClosed,
    CaseFollowUpDue,
    CaseOutcomeApproved,
    CaseProcessRoleAssigned,
    CaseStageDueSoon,
    CaseStageOverdue,
    InvestigationInterviewScheduled,
    MediationGroundRulesProposed,
    MediationMeetingScheduled,
    MediationParty,
    Person,
)
from shared.mail import notification_id

TEMPLATE_ROLE_ASSIGNED: Final = "process_role_assigned"
TEMPLATE_INTERVIEW: Final = "investigation_interview"
TEMPLATE_OUTCOME: Final = "investigation_outcome"
TEMPLATE_APPEAL_WINDOW_CLOSED: Final = "appeal_window_closed"
TEMPLATE_STAGE_DUE_SOON: Final = "stage_due_soon"
TEMPLATE_STAGE_OVERDUE: Final = "stage_overdue"
TEMPLATE_STAGE_ESCALATED: Final = "stage_escalated"
TEMPLATE_MEETING_PARTY: Final = "mediation_meeting_party"
TEMPLATE_MEETING_CASE_MANAGER: Final = "mediation_meeting_case_manager"
TEMPLATE_GROUND_RULES: Final = "mediation_ground_rules"
TEMPLATE_AGREEMENT_DRAFTED: Final = "agreement_drafted"
TEMPLATE_OBLIGATION_OWNER: Final = "obligation_owner"
TEMPLATE_OBLIGATION_CASE_MANAGER: Final = "obligation_case_manager"
TEMPLATE_OBLIGATION_ESCALATED: Final = "obligation_escalated"
TEMPLATE_FOLLOW_UP_DUE: Final = "follow_up_due"

# Each (event, audience) is one delivery record and one Message-ID; an audience that can
# hold several people of one event names the person.
AUDIENCE_ROLE_HOLDER: Final = "process_role_holder"
AUDIENCE_INTERVIEWEE: Final = "interviewee"
AUDIENCE_COMPLAINANT: Final = "complainant"
AUDIENCE_RESPONDENT: Final = "respondent"  # + ":<id>"
AUDIENCE_PARTY: Final = "party"  # + ":<employee id>"
AUDIENCE_CASE_MANAGER: Final = "case_manager"
AUDIENCE_OBLIGATION_OWNER: Final = "obligation_owner"

PRODID: Final = "-//hrcase//Investigations and case management//EN"
ICS_FILENAME: Final = "invite.ics"
NAME_MAX_LENGTH: Final = 200
LABEL_MAX_LENGTH: Final = 200
# SEQUENCE of an invitation: whole seconds from this instant to the event's occurrence, so
# a later scheduling of the same interview or meeting (same id) supersedes an earlier one
# in the recipient's calendar without this service keeping a counter (two within one
# second tie, and the later DTSTAMP wins, RFC 5546 2.1.5). Fits RFC 5545's 32-bit
# INTEGER until 2094.
SEQUENCE_EPOCH: Final = datetime(2026, 1, 1, tzinfo=UTC)

ROLE_LABELS: Final[dict[str, str]] = {
    "investigator": "investigator",
    "case_manager": "case manager",
    "appeal_hearer": "appeal hearer",
}
PROCESS_LABELS: Final[dict[str, str]] = {
    "investigation": "investigation",
    "case_management": "independent case management",
    "query": "query",
}


@dataclass(frozen=True)
class Recipient:
    """Who a mail goes to: `id` is what the notification events carry (a staff id or an
    employee id), `email` the address it goes to (for an employee, the one on file)."""

    id: str
    name: str
    email: str


def investigation_url(config: MailConfig, case_id: UUID) -> str:
    """The signed-in person's own part of the investigation (intake's portal)."""
    return config.url(f"/portal/cases/{case_id}/investigation/mine")


def mediation_party_url(config: MailConfig, case_id: UUID) -> str:
    """A party's own part of the independent case management (intake's portal)."""
    return config.url(f"/portal/cases/{case_id}/mediation/mine")


def mediation_staff_url(config: MailConfig, case_id: UUID) -> str:
    """The case manager's page of the independent case management (intake's portal)."""
    return config.url(f"/portal/cases/{case_id}/mediation")


def ics_uid(kind: str, item_id: UUID) -> str:
    """The calendar UID of an interview or a meeting: one per item, for its whole life."""
    return f"{kind}-{item_id}@hrcase"


def sequence_of(envelope: Envelope) -> int:
    """The invitation's SEQUENCE (see SEQUENCE_EPOCH): never negative."""
    return max(0, int((envelope.occurred_at - SEQUENCE_EPOCH).total_seconds()))


def _name(value: str) -> str:
    return _line(value, NAME_MAX_LENGTH) or ""


def _to(
    envelope: Envelope,
    recipient: Recipient,
    *,
    audience: str,
    template: str,
    context: dict[str, object],
    templates: Templates,
    config: MailConfig,
    attachments: tuple[Attachment, ...] = (),
) -> Notification:
    n = _notification(
        envelope,
        case_id=_case_id(envelope),
        audience=audience,
        template=template,
        recipient_id=recipient.id,
        recipient_email=recipient.email,
        context={"name": _name(recipient.name), **context},
        templates=templates,
        config=config,
    )
    return replace(n, attachments=attachments) if attachments else n


def _nobody(
    envelope: Envelope,
    *,
    audience: str,
    template: str,
    recipient_id: str | None,
    config: MailConfig,
) -> Undeliverable:
    """A mail that is due but has no address: recorded as a failed delivery."""
    nid = notification_id(envelope.event_id, audience)
    return Undeliverable(
        notification_id=nid,
        source_event_id=envelope.event_id,
        case_id=_case_id(envelope),
        audience=audience,
        template=template,
        recipient_id=recipient_id,
        message_id=message_id(nid, config),
        reason=NO_CONTACT,
    )


def staff_recipient(person: Person) -> Recipient:
    return Recipient(id=person.id, name=person.name, email=str(person.email))


def employee_recipient(
    employee_id: str, name: str, email: str, address_on_file: str | None
) -> Recipient:
    """An employee at the HR directory's address for them when it knows one."""
    return Recipient(id=employee_id, name=name, email=address_on_file or email)


# --- Roles, stages, the appeal window ------------------------------------------------------


def for_process_role_assigned(
    envelope: Envelope,
    payload: CaseProcessRoleAssigned,
    *,
    templates: Templates,
    config: MailConfig,
) -> list[Outcome]:
    """The new holder of the role hears it is theirs (never the reason given)."""
    case_id = _case_id(envelope)
    context: dict[str, object] = {
        "reference": _reference(payload.reference),
        "role": ROLE_LABELS[payload.role],
        "process": PROCESS_LABELS.get(payload.process, "process"),
        "case_url": config.case_url(case_id),
    }
    return [
        _to(
            envelope,
            staff_recipient(payload.person),
            audience=AUDIENCE_ROLE_HOLDER,
            template=TEMPLATE_ROLE_ASSIGNED,
            context=context,
            templates=templates,
            config=config,
        )
    ]


def for_stage_clock(
    envelope: Envelope,
    payload: CaseStageDueSoon | CaseStageOverdue,
    *,
    owner_id: str | None,
    owner: Contact | None,
    templates: Templates,
    config: MailConfig,
) -> list[Outcome]:
    """The case owner (named by the event, else the last owner seen; unknown: a recorded
    failure) and, when overdue and escalated, the escalation target."""
    case_id = _case_id(envelope)
    overdue = isinstance(payload, CaseStageOverdue)
    escalated_to = payload.escalated_to if isinstance(payload, CaseStageOverdue) else None
    context: dict[str, object] = {
        "reference": _reference(payload.reference),
        "stage": policy_text(payload.label, LABEL_MAX_LENGTH) or payload.stage,
        "process": PROCESS_LABELS.get(payload.process, "process"),
        "target_at": format_due(payload.target_at),
        "case_url": config.case_url(case_id),
        "escalated": escalated_to is not None,
    }
    outcomes: list[Outcome] = [
        _to_staff(
            envelope,
            case_id=case_id,
            audience=AUDIENCE_OWNER,
            template=TEMPLATE_STAGE_OVERDUE if overdue else TEMPLATE_STAGE_DUE_SOON,
            recipient_id=owner_id,
            recipient=owner,
            context=context,
            templates=templates,
            config=config,
        )
    ]
    if escalated_to is not None:
        outcomes.append(
            _to(
                envelope,
                staff_recipient(escalated_to),
                audience=AUDIENCE_ESCALATION,
                template=TEMPLATE_STAGE_ESCALATED,
                context=context,
                templates=templates,
                config=config,
            )
        )
    return outcomes


def for_appeal_window_closed(
    envelope: Envelope,
    payload: CaseAppealWindowClosed,
    *,
    owner_id: str | None,
    owner: Contact | None,
    templates: Templates,
    config: MailConfig,
) -> list[Outcome]:
    """The case owner: the appeal window closed, and whether an appeal was lodged."""
    case_id = _case_id(envelope)
    context: dict[str, object] = {
        "reference": _reference(payload.reference),
        "appealed": payload.appealed,
        "case_url": config.case_url(case_id),
    }
    return [
        _to_staff(
            envelope,
            case_id=case_id,
            audience=AUDIENCE_OWNER,
            template=TEMPLATE_APPEAL_WINDOW_CLOSED,
            recipient_id=owner_id,
            recipient=owner,
            context=context,
            templates=templates,
            config=config,
        )
    ]


# --- Investigation ----------------------------------------------------------------------------


def calendar_invitation(
    *,
    uid: str,
    sequence: int,
    summary: str,
    start: datetime,
    duration_minutes: int,
    time_zone: str,
    location: str | None,
    video_link: str | None,
    description: str,
    organizer: str,
    attendee: Recipient,
    now: datetime,
) -> str:
    """The .ics text: VCALENDAR (PRODID, VERSION 2.0, METHOD:REQUEST) with one VEVENT (UID,
    SEQUENCE, DTSTAMP, DTSTART/DTEND in the given zone with its VTIMEZONE, SUMMARY with the
    reference only, LOCATION, URL, DESCRIPTION, ORGANIZER, CLASS:CONFIDENTIAL and one
    ATTENDEE: the recipient)."""
    tz = zone(time_zone)
    local_start = start.astimezone(tz)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")
    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", local_start)
    event.add("dtend", local_start + timedelta(minutes=duration_minutes))
    event.add("summary", summary)
    where = location or video_link
    if where:
        event.add("location", where)
    if video_link:
        event.add("url", video_link)
    event.add("description", description)
    event.add("class", "CONFIDENTIAL")
    name, address = parseaddr(organizer)
    organizer_address = vCalAddress(f"mailto:{address}")
    if name:
        organizer_address.params["cn"] = vText(name)
    event.add("organizer", organizer_address)
    person = vCalAddress(f"mailto:{attendee.email}")
    person.params["cn"] = vText(_name(attendee.name) or attendee.email)
    person.params["role"] = vText("REQ-PARTICIPANT")
    person.params["partstat"] = vText("NEEDS-ACTION")
    person.params["rsvp"] = vText("FALSE")
    event.add("attendee", person, encode=False)
    event.add("status", "CONFIRMED")
    calendar.add_component(event)
    if tz.key != "UTC":
        day = local_start.date()
        calendar.add_missing_timezones(
            first_date=day - timedelta(days=366), last_date=day + timedelta(days=366)
        )
    text: bytes = calendar.to_ical()
    return text.decode("utf-8")


def _ics(text: str) -> Attachment:
    return Attachment(
        filename=ICS_FILENAME, subtype="calendar", text=text, params=(("method", "REQUEST"),)
    )


def _meeting_context(
    *,
    start: datetime,
    duration_minutes: int,
    time_zone: str,
    location: str | None,
    video_link: str | None,
) -> dict[str, object]:
    end = start + timedelta(minutes=duration_minutes)
    return {
        "when": format_local(start, time_zone),
        "ends": format_local(end, time_zone),
        "time_zone": zone(time_zone).key,
        "duration_minutes": duration_minutes,
        "location": _line(location),
        "video_link": _https(video_link),
    }


def for_interview_scheduled(
    envelope: Envelope,
    payload: InvestigationInterviewScheduled,
    *,
    address_on_file: str | None,
    templates: Templates,
    config: MailConfig,
    now: datetime,
) -> list[Outcome]:
    """The interviewee's invitation (nobody else is copied): when (the interview's zone),
    where or the video link, how long, the right to a companion when allowed, a REQUEST
    .ics and their own investigation page. Never the interview's subject or who else is
    interviewed."""
    case_id = _case_id(envelope)
    person = payload.interviewee
    recipient = employee_recipient(
        person.employee_id or str(person.email), person.name, str(person.email), address_on_file
    )
    reference = _reference(payload.reference)
    link = investigation_url(config, case_id)
    meeting = _meeting_context(
        start=payload.scheduled_for,
        duration_minutes=payload.duration_minutes,
        time_zone=payload.time_zone,
        location=payload.location,
        video_link=payload.video_link,
    )
    video = meeting["video_link"]
    lines = [f"HR interview, case {reference}", f"Your page: {link}"]
    if payload.companion_allowed:
        lines.append("You may bring a companion: a colleague or a trade-union representative.")
    ics = calendar_invitation(
        uid=ics_uid("interview", payload.interview_id),
        sequence=sequence_of(envelope),
        summary=f"HR interview {reference}",
        start=payload.scheduled_for,
        duration_minutes=payload.duration_minutes,
        time_zone=payload.time_zone,
        location=_line(payload.location),
        video_link=video if isinstance(video, str) else None,
        description="\n".join(lines),
        organizer=config.mail_from,
        attendee=recipient,
        now=now,
    )
    context: dict[str, object] = {
        "reference": reference,
        **meeting,
        "companion_allowed": payload.companion_allowed,
        "link": link,
    }
    return [
        _to(
            envelope,
            recipient,
            audience=AUDIENCE_INTERVIEWEE,
            template=TEMPLATE_INTERVIEW,
            context=context,
            templates=templates,
            config=config,
            attachments=(_ics(ics),),
        )
    ]


def for_outcome_approved(
    envelope: Envelope,
    payload: CaseOutcomeApproved,
    *,
    complainant: ReporterContact | None,
    complainant_name: str | None,
    respondents_on_file: dict[str, str],
    templates: Templates,
    config: MailConfig,
) -> list[Outcome]:
    """The complainant (the case's reporter at the address on file; None, an anonymous
    report: no mail) and each respondent (at the address on file for their id, else the
    event's), each in a mail of their own: the outcome is in the portal, an appeal may be
    lodged until the window's end (UTC). Never a finding, the summary or an action."""
    case_id = _case_id(envelope)
    context: dict[str, object] = {
        "reference": _reference(payload.reference),
        "appeal_until": format_due(payload.appeal_window_ends_at),
        "link": investigation_url(config, case_id),
    }
    outcomes: list[Outcome] = []
    if complainant is not None:
        outcomes.append(
            _to(
                envelope,
                Recipient(complainant.employee_id, complainant_name or "", complainant.email),
                audience=AUDIENCE_COMPLAINANT,
                template=TEMPLATE_OUTCOME,
                context=context,
                templates=templates,
                config=config,
            )
        )
    seen = {complainant.employee_id} if complainant is not None else set()
    for person in payload.respondents:
        if person.id in seen:
            continue
        seen.add(person.id)
        outcomes.append(
            _to(
                envelope,
                employee_recipient(
                    person.id, person.name, str(person.email), respondents_on_file.get(person.id)
                ),
                audience=f"{AUDIENCE_RESPONDENT}:{person.id}",
                template=TEMPLATE_OUTCOME,
                context=context,
                templates=templates,
                config=config,
            )
        )
    return outcomes


# --- Independent case management and the written agreement ----------------------------------


def party_recipient(party: MediationParty, on_file: dict[str, str]) -> Recipient:
    return employee_recipient(
        party.employee_id, party.name, str(party.email), on_file.get(party.employee_id)
    )


def _parties(parties: list[MediationParty]) -> list[MediationParty]:
    """Each party once (by employee id), in the event's order."""
    return list({p.employee_id: p for p in reversed(parties)}.values())[::-1]


def for_meeting_scheduled(
    envelope: Envelope,
    payload: MediationMeetingScheduled,
    *,
    on_file: dict[str, str],
    templates: Templates,
    config: MailConfig,
    now: datetime,
) -> list[Outcome]:
    """Each party (their own mediation page) and the case manager (the staff mediation
    page), each in a mail of their own with a REQUEST .ics naming only them."""
    case_id = _case_id(envelope)
    reference = _reference(payload.reference)
    meeting = _meeting_context(
        start=payload.scheduled_for,
        duration_minutes=payload.duration_minutes,
        time_zone=payload.time_zone,
        location=payload.location,
        video_link=payload.video_link,
    )
    video = meeting["video_link"]
    uid = ics_uid("meeting", payload.meeting_id)

    def mail(recipient: Recipient, *, audience: str, template: str, link: str) -> Notification:
        ics = calendar_invitation(
            uid=uid,
            sequence=sequence_of(envelope),
            summary=f"HR meeting {reference}",
            start=payload.scheduled_for,
            duration_minutes=payload.duration_minutes,
            time_zone=payload.time_zone,
            location=_line(payload.location),
            video_link=video if isinstance(video, str) else None,
            description=f"HR meeting, case {reference}\nYour page: {link}",
            organizer=config.mail_from,
            attendee=recipient,
            now=now,
        )
        return _to(
            envelope,
            recipient,
            audience=audience,
            template=template,
            context={"reference": reference, **meeting, "link": link},
            templates=templates,
            config=config,
            attachments=(_ics(ics),),
        )

    outcomes: list[Outcome] = [
        mail(
            party_recipient(party, on_file),
            audience=f"{AUDIENCE_PARTY}:{party.employee_id}",
            template=TEMPLATE_MEETING_PARTY,
            link=mediation_party_url(config, case_id),
        )
        for party in _parties(payload.parties)
    ]
    outcomes.append(
        mail(
            staff_recipient(payload.case_manager),
            audience=AUDIENCE_CASE_MANAGER,
            template=TEMPLATE_MEETING_CASE_MANAGER,
            link=mediation_staff_url(config, case_id),
        )
    )
    return outcomes


def _to_parties(
    envelope: Envelope,
    parties: list[MediationParty],
    *,
    template: str,
    context: dict[str, object],
    on_file: dict[str, str],
    templates: Templates,
    config: MailConfig,
) -> list[Outcome]:
    return [
        _to(
            envelope,
            party_recipient(party, on_file),
            audience=f"{AUDIENCE_PARTY}:{party.employee_id}",
            template=template,
            context=context,
            templates=templates,
            config=config,
        )
        for party in _parties(parties)
    ]


def for_ground_rules_proposed(
    envelope: Envelope,
    payload: MediationGroundRulesProposed,
    *,
    on_file: dict[str, str],
    templates: Templates,
    config: MailConfig,
) -> list[Outcome]:
    """Each party: ground rules are ready to review and accept (never the rules)."""
    context: dict[str, object] = {
        "reference": _reference(payload.reference),
        "link": mediation_party_url(config, _case_id(envelope)),
    }
    return _to_parties(
        envelope,
        payload.parties,
        template=TEMPLATE_GROUND_RULES,
        context=context,
        on_file=on_file,
        templates=templates,
        config=config,
    )


def for_agreement_drafted(
    envelope: Envelope,
    payload: AgreementDrafted,
    *,
    on_file: dict[str, str],
    templates: Templates,
    config: MailConfig,
) -> list[Outcome]:
    """Each party: version N of the written agreement is ready (never its terms)."""
    context: dict[str, object] = {
        "reference": _reference(payload.reference),
        "version": payload.version,
        "link": mediation_party_url(config, _case_id(envelope)),
    }
    return _to_parties(
        envelope,
        payload.parties,
        template=TEMPLATE_AGREEMENT_DRAFTED,
        context=context,
        on_file=on_file,
        templates=templates,
        config=config,
    )


def for_obligation_event(
    envelope: Envelope,
    payload: AgreementObligationDueSoon | AgreementObligationOverdue,
    *,
    owner_on_file: str | None,
    templates: Templates,
    config: MailConfig,
) -> list[Outcome]:
    """The party who owes the obligation (their mediation page), the case manager (the
    staff mediation page) and, when overdue and escalated, the escalation target (the case
    page). A party or case manager the event does not name: a recorded failure. Never the
    term's text."""
    case_id = _case_id(envelope)
    overdue = isinstance(payload, AgreementObligationOverdue)
    escalated_to = payload.escalated_to if isinstance(payload, AgreementObligationOverdue) else None
    context: dict[str, object] = {
        "reference": _reference(payload.reference),
        "overdue": overdue,
        "escalated": escalated_to is not None,
        "due_at": format_due(payload.due_at),
        "owner_name": _name(payload.owner.name) if payload.owner else "",
        "owner_role": "employee" if payload.owner_role == "employee" else "employer",
    }
    outcomes: list[Outcome] = []
    if payload.owner is None:
        outcomes.append(
            _nobody(
                envelope,
                audience=AUDIENCE_OBLIGATION_OWNER,
                template=TEMPLATE_OBLIGATION_OWNER,
                recipient_id=None,
                config=config,
            )
        )
    else:
        owner = payload.owner
        outcomes.append(
            _to(
                envelope,
                employee_recipient(owner.id, owner.name, str(owner.email), owner_on_file),
                audience=AUDIENCE_OBLIGATION_OWNER,
                template=TEMPLATE_OBLIGATION_OWNER,
                context={**context, "link": mediation_party_url(config, case_id)},
                templates=templates,
                config=config,
            )
        )
    if payload.case_manager is None:
        outcomes.append(
            _nobody(
                envelope,
                audience=AUDIENCE_CASE_MANAGER,
                template=TEMPLATE_OBLIGATION_CASE_MANAGER,
                recipient_id=None,
                config=config,
            )
        )
    else:
        outcomes.append(
            _to(
                envelope,
                staff_recipient(payload.case_manager),
                audience=AUDIENCE_CASE_MANAGER,
                template=TEMPLATE_OBLIGATION_CASE_MANAGER,
                context={**context, "link": mediation_staff_url(config, case_id)},
                templates=templates,
                config=config,
            )
        )
    if escalated_to is not None:
        outcomes.append(
            _to(
                envelope,
                staff_recipient(escalated_to),
                audience=AUDIENCE_ESCALATION,
                template=TEMPLATE_OBLIGATION_ESCALATED,
                context={**context, "link": config.case_url(case_id)},
                templates=templates,
                config=config,
            )
        )
    return outcomes


def for_follow_up_due(
    envelope: Envelope,
    payload: CaseFollowUpDue,
    *,
    templates: Templates,
    config: MailConfig,
) -> list[Outcome]:
    """The case manager: check-in N with the parties falls due (no case manager named: a
    recorded failure)."""
    case_id = _case_id(envelope)
    if payload.case_manager is None:
        return [
            _nobody(
                envelope,
                audience=AUDIENCE_CASE_MANAGER,
                template=TEMPLATE_FOLLOW_UP_DUE,
                recipient_id=None,
                config=config,
            )
        ]
    context: dict[str, object] = {
        "reference": _reference(payload.reference),
        "check_in": payload.check_in,
        "due_at": format_due(payload.due_at),
        "link": mediation_staff_url(config, case_id),
    }
    return [
        _to(
            envelope,
            staff_recipient(payload.case_manager),
            audience=AUDIENCE_CASE_MANAGER,
            template=TEMPLATE_FOLLOW_UP_DUE,
            context=context,
            templates=templates,
            config=config,
        )
    ]
