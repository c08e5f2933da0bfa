"""Who hears about a case conference, the email they get and its calendar invitation.

Pure: no I/O (the clock and the link key come in as arguments).

Planning (conference.planned) first tells the worker that a conference is intended on
their claim and why (the notice), then sends the written agenda to every invited
participant: everyone in the plan except the practitioners still waiting for the worker's
consent (`awaiting_consent`), who get it on conference.participant_invited. Changes
(conference.rescheduled) and cancellations (conference.cancelled) go to everyone invited;
a participant taken off the list gets a cancellation. Each agenda, change and cancellation
carries an RFC 5545 calendar invitation (.ics, one VEVENT whose UID `<conference_id>@hrcase`
stays the same for the conference's whole life, SEQUENCE from the event). The summary
mail (conference.summary_recorded) says only that the written summary is ready. Action
mails (conference.action_due_soon / _overdue) say that an action agreed at the conference of
<date> falls due or is overdue: never what the action is.

Privacy: a mail carries the purpose, the time, the place or link, the agenda items, the
outcome topics and the recipient's own signed link (shared.participant_links): never the
case description, injury or medical details, proposals, agreed wording, summary text,
objections, action descriptions or a change's or cancellation's reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Final, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, vCalAddress, vText

from services.notifications.domain.notices import (
    AUDIENCE_ESCALATION,
    AUDIENCE_OWNER,
    NO_CONTACT,
    Attachment,
    Contact,
    MailConfig,
    Notification,
    Outcome,
    Templates,
    Undeliverable,
    _case_id,
    _notification,
    _reference,
    format_due,
    message_id,
    policy_text,
    reporter_text,
)
from shared.envelope import Envelope
from shared.events import (
    ConferenceActionDueSoon,
    ConferenceActionOverdue,
    ConferenceCancelled,
    ConferenceParticipant,
    ConferenceParticipantInvited,
    ConferencePlan,
    ConferencePlanned,
    ConferenceRescheduled,
    ConferenceSummaryRecorded,
    _ConferenceDecision,
)
from shared.mail import notification_id
from shared.participant_links import mint_participant_link, participant_link_url

TEMPLATE_NOTICE: Final = "conference_notice"
TEMPLATE_AGENDA: Final = "conference_agenda"
TEMPLATE_CANCELLED: Final = "conference_cancelled"
TEMPLATE_SUMMARY: Final = "conference_summary"
TEMPLATE_ACTION_OWNER: Final = "conference_action_owner"
TEMPLATE_ACTION_CASE_OWNER: Final = "conference_action_case_owner"
TEMPLATE_ACTION_ESCALATED: Final = "conference_action_escalated"
# Each (event, audience) is one delivery record and one Message-ID: a participant's
# audience names them, and the worker's notice is apart from the worker's agenda.
AUDIENCE_NOTICE: Final = "conference_notice"
AUDIENCE_PARTICIPANT: Final = "conference_participant"
AUDIENCE_ACTION_OWNER: Final = "conference_action_owner"
PRODID: Final = "-//hrcase//Case conferences//EN"
ICS_FILENAME: Final = "invite.ics"
PURPOSE_MAX_LENGTH: Final = 2000
LINE_MAX_LENGTH: Final = 300
LINK_MAX_LENGTH: Final = 2000

Method = Literal["REQUEST", "CANCEL"]
MailKind = Literal["notice", "agenda", "summary"]

ROLE_LABELS: Final[dict[str, str]] = {
    "worker": "worker",
    "employer_representative": "employer representative",
    "case_manager": "case manager",
    "treating_doctor": "treating doctor",
    "psychologist": "psychologist",
    "rehabilitation_provider": "rehabilitation provider",
    "union_representative": "union representative",
    "support_person": "support person",
}
# RFC 5545 ROLE of each attendee: the case manager chairs, the worker and the employer
# must attend, everyone else is asked to.
ICS_ROLES: Final[dict[str, str]] = {
    "case_manager": "CHAIR",
    "worker": "REQ-PARTICIPANT",
    "employer_representative": "REQ-PARTICIPANT",
}
CHANGE_LABELS: Final[dict[str, str]] = {
    "scheduled_for": "date and time",
    "duration_minutes": "duration",
    "time_zone": "time zone",
    "mode": "how it is held",
    "venue": "venue",
    "venue_reason": "venue",
    "location": "place",
    "video_link": "video link",
    "agenda": "agenda",
    "desired_outcomes": "outcomes to settle",
    "purpose": "purpose",
    "participants": "participants",
}
MODE_LABELS: Final[dict[str, str]] = {
    "in_person": "in person",
    "telephone": "by telephone",
    "video": "by video",
}
_HTTPS = re.compile(r"^https://[^\s<>\"']+$")


@dataclass(frozen=True)
class ConferenceLinks:
    """How participant links are minted: the key (AUTH_JWT_SECRET) and how long a link
    stays valid from the mail's sending (CONFERENCE_LINK_VALID_DAYS)."""

    secret: str
    valid_days: int = 30

    def mint(
        self,
        config: MailConfig,
        *,
        case_id: UUID,
        conference_id: UUID,
        participant_id: UUID,
        now: datetime,
    ) -> tuple[str, datetime]:
        """The participant's link (absolute URL) and when it expires."""
        # Whole seconds, as the token's `exp` holds it: the mail, the summary_sent event
        # and the link itself name the same instant.
        expires_at = (now + timedelta(days=self.valid_days)).replace(microsecond=0)
        token = mint_participant_link(
            self.secret,
            case_id=case_id,
            conference_id=conference_id,
            participant_id=participant_id,
            expires_at=expires_at,
            issued_at=now,
        )
        return participant_link_url(config.portal_base_url, token), expires_at


@dataclass(frozen=True)
class ParticipantMail:
    """One conference mail to one participant and what its conference.*_sent event says."""

    notification: Notification
    conference_id: UUID
    participant: ConferenceParticipant
    kind: MailKind
    method: Method | None = None
    sequence: int | None = None
    ics_uid: str | None = None
    link_expires_at: datetime | None = None


@dataclass(frozen=True)
class ActionFacts:
    """What notifications kept of an agreed action from conference.summary_recorded: its
    owner when a participant, and when the conference was planned for (its time zone)."""

    action_id: UUID
    conference_id: UUID
    owner_participant_id: UUID | None
    conference_at: datetime
    time_zone: str


def ics_uid(conference_id: UUID) -> str:
    """The calendar UID of a conference: one per conference, for its whole life."""
    return f"{conference_id}@hrcase"


def invited(payload: _ConferenceDecision) -> list[ConferenceParticipant]:
    """The participants the agenda goes to: all but those waiting for consent."""
    waiting = set(payload.awaiting_consent)
    return [p for p in payload.participants if p.participant_id not in waiting]


def zone(name: str) -> ZoneInfo:
    """The plan's IANA zone; UTC when it is not one this host knows (never refused: the
    mail still goes, with the time in UTC)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def format_local(value: datetime, time_zone: str) -> str:
    """E.g. "Tue 08 Dec 2026, 10:00 AEDT (Australia/Sydney)"."""
    tz = zone(time_zone)
    local = value.astimezone(tz)
    return f"{local:%a %d %b %Y, %H:%M} {local.tzname()} ({tz.key})"


def format_day(value: datetime, time_zone: str) -> str:
    return f"{value.astimezone(zone(time_zone)):%d %b %Y}"


def _line(value: str | None, max_length: int = LINE_MAX_LENGTH) -> str | None:
    return policy_text(value, max_length) if value is not None else None


def _https(value: str | None) -> str | None:
    """A video link as given, only when it is a plain https URL (nothing else is mailed)."""
    if value is None:
        return None
    text = value.strip()
    return text if len(text) <= LINK_MAX_LENGTH and _HTTPS.match(text) else None


def _agenda_items(plan: ConferencePlan) -> list[str]:
    return [item for item in (_line(a) for a in plan.agenda) if item]


def _plan_context(plan: ConferencePlan) -> dict[str, object]:
    """The plan as the templates may show it (see the module's privacy rule)."""
    end = plan.scheduled_for + timedelta(minutes=plan.duration_minutes)
    return {
        "purpose": reporter_text(plan.purpose, PURPOSE_MAX_LENGTH) or "(not given)",
        "when": format_local(plan.scheduled_for, plan.time_zone),
        "ends": format_local(end, plan.time_zone),
        "duration_minutes": plan.duration_minutes,
        "mode": MODE_LABELS[plan.mode],
        "location": _line(plan.location),
        "video_link": _https(plan.video_link),
        "agenda": _agenda_items(plan),
        "outcome_topics": [t for t in (_line(o.topic, 200) for o in plan.desired_outcomes) if t],
    }


def _participant_notification(
    envelope: Envelope,
    participant: ConferenceParticipant,
    *,
    audience_prefix: str,
    template: str,
    context: dict[str, object],
    templates: Templates,
    config: MailConfig,
    attachments: tuple[Attachment, ...] = (),
) -> Notification:
    n = _notification(
        envelope,
        case_id=_case_id(envelope),
        audience=f"{audience_prefix}:{participant.participant_id}",
        template=template,
        recipient_id=str(participant.participant_id),
        recipient_email=str(participant.email),
        context={"name": _line(participant.name, 200) or "", **context},
        templates=templates,
        config=config,
    )
    if not attachments:
        return n
    return replace(n, attachments=attachments)


def calendar_invitation(
    payload: _ConferenceDecision,
    *,
    method: Method,
    attendees: list[ConferenceParticipant],
    organizer: str,
    description: str,
    now: datetime,
) -> str:
    """The .ics text: VCALENDAR (PRODID, VERSION 2.0, METHOD) with one VEVENT (UID,
    SEQUENCE, DTSTAMP, DTSTART/DTEND in the plan's zone with its VTIMEZONE, SUMMARY without
    case details, LOCATION, URL, DESCRIPTION, ORGANIZER, one ATTENDEE per invited
    participant with ROLE and CN; STATUS:CANCELLED for a cancellation)."""
    plan = payload.plan
    tz = zone(plan.time_zone)
    start = plan.scheduled_for.astimezone(tz)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", ics_uid(payload.conference_id))
    event.add("sequence", payload.sequence)
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(minutes=plan.duration_minutes))
    event.add("summary", f"Case conference {_reference(payload.reference)}")
    video = _https(plan.video_link)
    where = _line(plan.location) or video
    if where:
        event.add("location", where)
    if video:
        event.add("url", video)
    event.add("description", description)
    name, address = parseaddr(organizer)
    organizer_address = vCalAddress(f"mailto:{address}")
    if name:
        organizer_address.params["cn"] = vText(name)
    event.add("organizer", organizer_address)
    for person in attendees:
        attendee = vCalAddress(f"mailto:{person.email}")
        attendee.params["cn"] = vText(_line(person.name, 200) or str(person.email))
        attendee.params["role"] = vText(ICS_ROLES.get(person.role, "OPT-PARTICIPANT"))
        attendee.params["partstat"] = vText("NEEDS-ACTION")
        attendee.params["rsvp"] = vText("FALSE")
        event.add("attendee", attendee, encode=False)
    if method == "CANCEL":
        event.add("status", "CANCELLED")
    else:
        event.add("status", "CONFIRMED")
    calendar.add_component(event)
    if tz.key != "UTC":
        # The zone's rules around the conference only: a short VTIMEZONE, enough for the
        # event and any change within a year either side.
        day = start.date()
        calendar.add_missing_timezones(
            first_date=day - timedelta(days=366), last_date=day + timedelta(days=366)
        )
    text: bytes = calendar.to_ical()
    return text.decode("utf-8")


def _ics(text: str, method: Method) -> Attachment:
    return Attachment(
        filename=ICS_FILENAME, subtype="calendar", text=text, params=(("method", method),)
    )


def _description(reference: str, agenda: list[str], link: str | None, *, cancelled: bool) -> str:
    """The invitation's DESCRIPTION: the agenda and the participant's link (plain text)."""
    lines = [f"Case conference {reference}"]
    if cancelled:
        lines.append("This case conference has been cancelled.")
    else:
        lines.append("Agenda:")
        lines.extend(f"- {item}" for item in agenda)
    if link:
        lines.append(f"Your link: {link}")
    return "\n".join(lines)


def _agenda_mail(
    envelope: Envelope,
    payload: _ConferenceDecision,
    participant: ConferenceParticipant,
    *,
    method: Method,
    kind: str,
    extra: dict[str, object],
    attendees: list[ConferenceParticipant],
    templates: Templates,
    config: MailConfig,
    links: ConferenceLinks,
    now: datetime,
) -> ParticipantMail:
    """The agenda (or its change, or its cancellation) for one participant, with the .ics."""
    case_id = _case_id(envelope)
    cancelled = method == "CANCEL"
    link: str | None = None
    expires_at: datetime | None = None
    if not cancelled:
        link, expires_at = links.mint(
            config,
            case_id=case_id,
            conference_id=payload.conference_id,
            participant_id=participant.participant_id,
            now=now,
        )
    context: dict[str, object] = {
        "reference": _reference(payload.reference),
        **_plan_context(payload.plan),
        "kind": kind,
        "role": ROLE_LABELS[participant.role],
        "link": link,
        "link_expires": format_due(expires_at) if expires_at else None,
        **extra,
    }
    ics = calendar_invitation(
        payload,
        method=method,
        attendees=attendees,
        organizer=config.mail_from,
        description=_description(
            _reference(payload.reference), _agenda_items(payload.plan), link, cancelled=cancelled
        ),
        now=now,
    )
    notification = _participant_notification(
        envelope,
        participant,
        audience_prefix=AUDIENCE_PARTICIPANT,
        template=TEMPLATE_CANCELLED if cancelled else TEMPLATE_AGENDA,
        context=context,
        templates=templates,
        config=config,
        attachments=(_ics(ics, method),),
    )
    return ParticipantMail(
        notification=notification,
        conference_id=payload.conference_id,
        participant=participant,
        kind="agenda",
        method=method,
        sequence=payload.sequence,
        ics_uid=ics_uid(payload.conference_id),
        link_expires_at=expires_at,
    )


def for_conference_planned(
    envelope: Envelope,
    payload: ConferencePlanned,
    *,
    templates: Templates,
    config: MailConfig,
    links: ConferenceLinks,
    now: datetime,
) -> list[ParticipantMail]:
    """The worker's notice first, then the agenda to every invited participant (the worker
    included). No worker in the plan: agendas only (routing's rules require one)."""
    mails: list[ParticipantMail] = []
    everyone = invited(payload)
    worker = next((p for p in everyone if p.role == "worker"), None)
    if worker is not None:
        link, expires_at = links.mint(
            config,
            case_id=_case_id(envelope),
            conference_id=payload.conference_id,
            participant_id=worker.participant_id,
            now=now,
        )
        context: dict[str, object] = {
            "reference": _reference(payload.reference),
            **_plan_context(payload.plan),
            "link": link,
            "link_expires": format_due(expires_at),
        }
        mails.append(
            ParticipantMail(
                conference_id=payload.conference_id,
                notification=_participant_notification(
                    envelope,
                    worker,
                    audience_prefix=AUDIENCE_NOTICE,
                    template=TEMPLATE_NOTICE,
                    context=context,
                    templates=templates,
                    config=config,
                ),
                participant=worker,
                kind="notice",
                link_expires_at=expires_at,
            )
        )
    for participant in everyone:
        mails.append(
            _agenda_mail(
                envelope,
                payload,
                participant,
                method="REQUEST",
                kind="planned",
                extra={"changed": []},
                attendees=everyone,
                templates=templates,
                config=config,
                links=links,
                now=now,
            )
        )
    return mails


def for_participant_invited(
    envelope: Envelope,
    payload: ConferenceParticipantInvited,
    *,
    templates: Templates,
    config: MailConfig,
    links: ConferenceLinks,
    now: datetime,
) -> list[ParticipantMail]:
    """The agenda to the participant now invited (same UID, the event's SEQUENCE)."""
    everyone = invited(payload)
    newcomer = next((p for p in everyone if p.participant_id == payload.participant_id), None)
    if newcomer is None:
        return []  # still waiting, or not in the plan: nobody to write to
    return [
        _agenda_mail(
            envelope,
            payload,
            newcomer,
            method="REQUEST",
            kind="invited",
            extra={"changed": []},
            attendees=everyone,
            templates=templates,
            config=config,
            links=links,
            now=now,
        )
    ]


def change_labels(changed: list[str]) -> list[str]:
    """What changed, in words (unknown field names are left out, never mailed raw)."""
    labels: list[str] = []
    for field in changed:
        label = CHANGE_LABELS.get(field)
        if label and label not in labels:
            labels.append(label)
    return labels


def for_conference_rescheduled(
    envelope: Envelope,
    payload: ConferenceRescheduled,
    *,
    templates: Templates,
    config: MailConfig,
    links: ConferenceLinks,
    now: datetime,
) -> list[ParticipantMail]:
    """The updated agenda (REQUEST, the new SEQUENCE) to everyone invited, saying what
    changed; a cancellation to each participant taken off the list."""
    everyone = invited(payload)
    extra: dict[str, object] = {"changed": change_labels(payload.changed)}
    mails = [
        _agenda_mail(
            envelope,
            payload,
            participant,
            method="REQUEST",
            kind="rescheduled",
            extra=extra,
            attendees=everyone,
            templates=templates,
            config=config,
            links=links,
            now=now,
        )
        for participant in everyone
    ]
    current = {p.participant_id for p in payload.participants}
    for removed in payload.removed_participants:
        if removed.participant_id in current:
            continue
        mails.append(
            _agenda_mail(
                envelope,
                payload,
                removed,
                method="CANCEL",
                kind="removed",
                extra={"changed": []},
                attendees=[removed],
                templates=templates,
                config=config,
                links=links,
                now=now,
            )
        )
    return mails


def for_conference_cancelled(
    envelope: Envelope,
    payload: ConferenceCancelled,
    *,
    templates: Templates,
    config: MailConfig,
    links: ConferenceLinks,
    now: datetime,
) -> list[ParticipantMail]:
    """A cancellation (METHOD:CANCEL, STATUS:CANCELLED) to everyone invited. The reason
    stays out of the mail."""
    everyone = invited(payload)
    return [
        _agenda_mail(
            envelope,
            payload,
            participant,
            method="CANCEL",
            kind="cancelled",
            extra={"changed": []},
            attendees=everyone,
            templates=templates,
            config=config,
            links=links,
            now=now,
        )
        for participant in everyone
    ]


def for_summary_recorded(
    envelope: Envelope,
    payload: ConferenceSummaryRecorded,
    *,
    templates: Templates,
    config: MailConfig,
    links: ConferenceLinks,
    now: datetime,
) -> list[ParticipantMail]:
    """To everyone invited: the written summary is ready, behind their own link. Nothing of
    the summary itself (agreed points, actions, objections) is in the mail."""
    case_id = _case_id(envelope)
    mails: list[ParticipantMail] = []
    for participant in invited(payload):
        link, expires_at = links.mint(
            config,
            case_id=case_id,
            conference_id=payload.conference_id,
            participant_id=participant.participant_id,
            now=now,
        )
        context: dict[str, object] = {
            "reference": _reference(payload.reference),
            "conference_day": format_day(payload.plan.scheduled_for, payload.plan.time_zone),
            "link": link,
            "link_expires": format_due(expires_at),
        }
        mails.append(
            ParticipantMail(
                conference_id=payload.conference_id,
                notification=_participant_notification(
                    envelope,
                    participant,
                    audience_prefix=AUDIENCE_PARTICIPANT,
                    template=TEMPLATE_SUMMARY,
                    context=context,
                    templates=templates,
                    config=config,
                ),
                participant=participant,
                kind="summary",
                link_expires_at=expires_at,
            )
        )
    return mails


def action_facts(payload: ConferenceSummaryRecorded) -> list[ActionFacts]:
    """What to keep of each agreed action for its later due-soon and overdue mails."""
    return [
        ActionFacts(
            action_id=action.action_id,
            conference_id=payload.conference_id,
            owner_participant_id=action.owner_participant_id,
            conference_at=payload.plan.scheduled_for,
            time_zone=payload.plan.time_zone,
        )
        for action in payload.actions
    ]


def for_action_event(
    envelope: Envelope,
    payload: ConferenceActionDueSoon | ConferenceActionOverdue,
    *,
    action: ActionFacts | None,
    case_owner_id: str | None,
    case_owner: Contact | None,
    templates: Templates,
    config: MailConfig,
    links: ConferenceLinks,
    now: datetime,
) -> list[Outcome]:
    """An agreed action falls due soon or is overdue: its owner (with their own link when
    they are a participant, else a plain notice), the case owner (case page link) and, when
    overdue and escalated, the escalation target. Never the action's description.

    `action` is what summary_recorded left (None: not seen; the mail then names no date and
    gives the owner no link). A case owner who is also the action's owner gets one mail."""
    case_id = _case_id(envelope)
    overdue = isinstance(payload, ConferenceActionOverdue)
    context: dict[str, object] = {
        "reference": _reference(payload.reference),
        "overdue": overdue,
        "due_at": format_due(payload.due_at),
        "conference_day": (
            format_day(action.conference_at, action.time_zone) if action is not None else None
        ),
        "owner_name": _line(payload.owner_name, 200) or "",
    }
    context["agreed_at"] = (
        f"at the case conference of {context['conference_day']}"
        if context["conference_day"]
        else "at a case conference"
    )
    outcomes: list[Outcome] = []
    owner_is_case_owner = (
        case_owner is not None and case_owner.email.lower() == str(payload.owner_email).lower()
    )
    if not owner_is_case_owner:
        link: str | None = None
        if action is not None and action.owner_participant_id is not None:
            link, _expires = links.mint(
                config,
                case_id=case_id,
                conference_id=payload.conference_id,
                participant_id=action.owner_participant_id,
                now=now,
            )
        outcomes.append(
            _notification(
                envelope,
                case_id=case_id,
                audience=AUDIENCE_ACTION_OWNER,
                template=TEMPLATE_ACTION_OWNER,
                recipient_id=(
                    str(action.owner_participant_id)
                    if action is not None and action.owner_participant_id is not None
                    else str(payload.owner_email)
                ),
                recipient_email=str(payload.owner_email),
                context={**context, "name": context["owner_name"], "link": link},
                templates=templates,
                config=config,
            )
        )
    staff_context = {**context, "case_url": config.case_url(case_id)}
    if case_owner is None or case_owner.staff_id != case_owner_id:
        nid = notification_id(envelope.event_id, AUDIENCE_OWNER)
        outcomes.append(
            Undeliverable(
                notification_id=nid,
                source_event_id=envelope.event_id,
                case_id=case_id,
                audience=AUDIENCE_OWNER,
                template=TEMPLATE_ACTION_CASE_OWNER,
                recipient_id=case_owner_id,
                message_id=message_id(nid, config),
                reason=NO_CONTACT,
            )
        )
    else:
        outcomes.append(
            _notification(
                envelope,
                case_id=case_id,
                audience=AUDIENCE_OWNER,
                template=TEMPLATE_ACTION_CASE_OWNER,
                recipient_id=case_owner.staff_id,
                recipient_email=case_owner.email,
                context=staff_context,
                templates=templates,
                config=config,
            )
        )
    if isinstance(payload, ConferenceActionOverdue) and payload.escalated_to is not None:
        target = payload.escalated_to
        outcomes.append(
            _notification(
                envelope,
                case_id=case_id,
                audience=AUDIENCE_ESCALATION,
                template=TEMPLATE_ACTION_ESCALATED,
                recipient_id=target.id,
                recipient_email=str(target.email),
                context=staff_context,
                templates=templates,
                config=config,
            )
        )
    return outcomes
